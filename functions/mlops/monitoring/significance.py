"""How sure a performance figure is: DeLong variances of ROC AUC, paired comparisons, the gap's z.

- DeLong's variance of the AUC (structural components from mid-ranks) is exact in the sense
  of the U-statistic theory and costs one sort, so it suits 10^5-row windows where a
  bootstrap would cost 200 sorts. Other metrics fall back to a seeded bootstrap.
- Two models scored on the same rows are compared *paired*: the covariance of their
  structural components removes the rows' common difficulty, which is what makes a
  few hundred recent rows enough to tell a better candidate from the champion.
- A version's reference metric carries its sample size and standard error, so a gap
  between production and reference is judged against both sampling errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlops.model.evaluation import classification_metrics
from mlops.monitoring.profile import ReferenceMetric

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 200
# A bootstrap resample holds at most this many rows. A window of millions of labels would
# otherwise cost 200 passes over millions of rows for an interval far narrower than any gap
# that matters; the spread of the smaller resamples is scaled to the window's size
# (`resample_size`).
BOOTSTRAP_MAX_ROWS = 50_000
_NORMAL = NormalDist()


def midranks(ordered: np.ndarray) -> np.ndarray:
    """Ranks (from 1, ties sharing their mean rank) of an array already in ascending order."""
    n = ordered.size
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]
    ends = np.r_[starts[1:], n]
    return np.repeat((starts + ends + 1) / 2.0, ends - starts)


def structural_components(y: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's components: V10 per positive, V01 per negative (ties count one half), each
    in row order, from one sort (the ranks within each class follow from the ranks of all)."""
    order = np.argsort(p)
    ordered, positive = p[order], y[order] == 1
    m = int(np.count_nonzero(positive))
    n = positive.size - m
    ranks = midranks(ordered)
    components = np.empty(positive.size)
    components[order[positive]] = (ranks[positive] - midranks(ordered[positive])) / n
    components[order[~positive]] = 1.0 - (ranks[~positive] - midranks(ordered[~positive])) / m
    v10, v01 = components[y == 1], components[y != 1]
    return float(v10.mean()), v10, v01


def resample_size(rows: int, cap: int | None = None) -> tuple[int, float]:
    """Rows per bootstrap resample, and what scales the resamples' spread to `rows` rows.

    Up to `cap` rows (BOOTSTRAP_MAX_ROWS unless given), every resample has `rows` rows and the
    factor is 1: the usual bootstrap. Beyond, resamples of `cap` rows (the m-out-of-n bootstrap):
    the metrics bootstrapped here are smooth functions of means, whose spread shrinks as one over
    the square root of the rows, so the deviations from the window's value are scaled by
    sqrt(cap / rows).
    """
    cap = BOOTSTRAP_MAX_ROWS if cap is None else cap
    if rows <= cap:
        return rows, 1.0
    return cap, float(np.sqrt(cap / rows))


def _both_classes(y: np.ndarray) -> bool:
    return y.size > 2 and 0 < int(y.sum()) < y.size


def auc_standard_error(y_true: np.ndarray, proba: np.ndarray) -> float | None:
    """DeLong standard error of the ROC AUC; None without at least two of each class."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(proba, dtype=np.float64)
    if not _both_classes(y) or min(int(y.sum()), int(y.size - y.sum())) < 2:
        return None
    _, v10, v01 = structural_components(y, p)
    return float(np.sqrt(v10.var(ddof=1) / v10.size + v01.var(ddof=1) / v01.size))


def bootstrap_standard_error(
    y_true: np.ndarray, proba: np.ndarray, metric: str, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> float | None:
    """Standard deviation of `metric` over bootstrap resamples (seeded)."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(proba, dtype=np.float64)
    if y.size < 10:
        return None
    rng = np.random.default_rng(seed)
    size, scale = resample_size(y.size)
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, y.size, size)
        value = classification_metrics(y[idx], p[idx]).get(metric)
        if value is not None:
            values.append(value)
    return float(np.std(values, ddof=1)) * scale if len(values) >= resamples // 2 else None


def metric_standard_error(y_true: np.ndarray, proba: np.ndarray, metric: str) -> float | None:
    if metric == "roc_auc":
        return auc_standard_error(y_true, proba)
    return bootstrap_standard_error(y_true, proba, metric)


def reference_metric(
    y_true: np.ndarray, proba: np.ndarray, metric: str, source: str, confidence: float = CONFIDENCE
) -> ReferenceMetric:
    """A version's reference figure with what it rests on: rows, positives, standard error, interval."""
    y = np.asarray(y_true, dtype=int)
    value = classification_metrics(y, proba).get(metric)
    se = metric_standard_error(y, proba, metric) if value is not None else None
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    return ReferenceMetric(
        metric=metric,
        value=value,
        rows=int(y.size),
        positives=int(y.sum()),
        standard_error=se,
        ci_low=None if value is None or se is None else value - z * se,
        ci_high=None if value is None or se is None else value + z * se,
        confidence=confidence,
        source=source,
    )


@dataclass(frozen=True)
class PairedComparison:
    """Candidate minus champion on the same labelled rows (higher is better for the candidate)."""

    metric: str
    rows: int
    candidate: float
    champion: float
    delta: float
    standard_error: float
    ci_low: float
    ci_high: float
    p_value: float  # one-sided: the candidate is no better than the champion
    confidence: float
    method: str

    @property
    def significantly_better(self) -> bool:
        return self.ci_low > 0.0

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "metric": self.metric,
            "rows": self.rows,
            "candidate": self.candidate,
            "champion": self.champion,
            "delta": self.delta,
            "standard_error": self.standard_error,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "confidence": self.confidence,
            "method": self.method,
        }


def paired_comparison(
    y_true: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray,
    metric: str,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> PairedComparison | None:
    """Paired DeLong test of the AUC difference (paired bootstrap for other metrics);
    None without both classes. For lower-is-better metrics the sign is flipped so that
    a positive delta always favours the candidate."""
    y = np.asarray(y_true, dtype=int)
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(champion, dtype=np.float64)
    if not _both_classes(y) or min(int(y.sum()), int(y.size - y.sum())) < 2:
        return None
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    if metric == "roc_auc":
        auc_a, v10a, v01a = structural_components(y, a)
        auc_b, v10b, v01b = structural_components(y, b)
        s10 = np.cov(np.vstack([v10a, v10b]))
        s01 = np.cov(np.vstack([v01a, v01b]))
        cov = s10 / v10a.size + s01 / v01a.size
        var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
        se = float(np.sqrt(max(var, 0.0)))
        delta, method, cand, champ = auc_a - auc_b, "paired DeLong", auc_a, auc_b
    else:
        from mlops.model.evaluation import LOWER_IS_BETTER

        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        cand = classification_metrics(y, a)[metric] or 0.0
        champ = classification_metrics(y, b)[metric] or 0.0
        rng = np.random.default_rng(seed)
        size, scale = resample_size(y.size)
        deltas = []
        for _ in range(resamples):
            idx = rng.integers(0, y.size, size)
            ma = classification_metrics(y[idx], a[idx])[metric]
            mb = classification_metrics(y[idx], b[idx])[metric]
            if ma is not None and mb is not None:
                deltas.append(sign * (ma - mb))
        se = float(np.std(deltas, ddof=1)) * scale if len(deltas) > 1 else 0.0
        delta, method = sign * (cand - champ), "paired bootstrap"
    p_value = 1.0 - _NORMAL.cdf(delta / se) if se > 0 else (0.0 if delta > 0 else 1.0)
    return PairedComparison(
        metric=metric,
        rows=int(y.size),
        candidate=float(cand),
        champion=float(champ),
        delta=float(delta),
        standard_error=se,
        ci_low=float(delta - z * se),
        ci_high=float(delta + z * se),
        p_value=float(p_value),
        confidence=confidence,
        method=method,
    )


def gap_z(
    reference: ReferenceMetric | None, value: float | None, standard_error: float | None
) -> float | None:
    """(reference - production) over the standard error of that difference, both samples' errors
    included; None when either side lacks a value or an error."""
    if reference is None or reference.value is None or reference.standard_error is None:
        return None
    if value is None or standard_error is None:
        return None
    se = float(np.hypot(reference.standard_error, standard_error))
    return float((reference.value - value) / se) if se > 0 else None


def z_for_one_sided(alpha: float) -> float:
    """The z above which a one-sided test at level `alpha` rejects."""
    return _NORMAL.inv_cdf(1.0 - alpha)


class GapSignificance(BaseModel):
    """How sure the window's gap to the reference is, with both samples' errors counted."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    reference: ReferenceMetric | None
    label_count: int
    value: float | None
    standard_error: float | None
    z: float | None
    p_value: float | None
    min_labels: int
    published: bool
    note: str


def gap_significance(
    y_true: np.ndarray,
    proba: np.ndarray,
    metric: str,
    reference: ReferenceMetric | None,
    min_labels: int,
) -> GapSignificance:
    """The z of (reference - production) for one window; published from `min_labels` labels on."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(proba, dtype=np.float64)
    value = classification_metrics(y, p).get(metric) if y.size else None
    se = metric_standard_error(y, p, metric) if value is not None else None
    z = gap_z(reference, value, se)
    p_value = None if z is None else 1.0 - _NORMAL.cdf(z)
    if reference is None or reference.standard_error is None:
        note = "the reference has no standard error (written before references carried one)"
    elif y.size < min_labels:
        note = f"{y.size} labels, fewer than the {min_labels} this test needs: not published"
    elif z is None:
        note = f"{metric} is undefined on these labels"
    else:
        note = f"z {z:.2f} from {y.size} labels vs {reference.rows} reference rows"
    return GapSignificance(
        metric=metric,
        reference=reference,
        label_count=int(y.size),
        value=value,
        standard_error=se,
        z=z,
        p_value=p_value,
        min_labels=min_labels,
        published=z is not None and y.size >= min_labels,
        note=note,
    )
