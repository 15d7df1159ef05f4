"""Production performance on labelled predictions, its label-free estimate, and fairness by group.

- The metric gap is test-set value minus production value of the primary metric, and is
  published only from ``min_labels`` labels on (spec; default 200): with fewer, the
  alarm must see missing data rather than a noisy number or a false zero.
- The interval (95%) is chosen per metric for its coverage at the label counts a window has:
  ROC AUC on the logit scale, its standard error the two-sample jackknife's (from DeLong's
  structural components) and a t quantile (Welch-Satterthwaite degrees of freedom allowing for
  the components' kurtosis), which keeps 94-96% coverage down to about 20 positives, also near
  an AUC of 1, where a percentile bootstrap covers ~90%;
  accuracy, precision and recall are proportions, so
  Wilson's score interval; F1 and average precision a percentile bootstrap (seeded; its resamples
  stop growing at `significance.BOOTSTRAP_MAX_ROWS`, their spread scaled to the window's size).
- The label-free estimate calibrates the scores with the map fitted on the test set
  (`mlops.monitoring.estimation`), so it needs no calibrated model. Its gap to the test
  value alarms beyond a threshold from the test set's chunk-to-chunk variability.
- Estimation cannot see concept shift; labels can. When the realized value on labelled
  predictions and the estimate on the same predictions part ways beyond what the labels' noise
  and the test set's error allow, concept shift is suspected (`concept_shift_check`).
- Fairness: selection rate per group on every prediction, true-positive rate on
  labelled ones; groups smaller than 100 predictions (or 30 labelled positives for TPR)
  are left out of the gap because their rates are mostly noise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import stats
from sklearn import metrics as skm

from mlops.model.evaluation import (
    DECISION_THRESHOLD,
    average_precision,
    classification_metrics,
    fairness_gap,
    group_metrics,
    roc_auc,
)
from mlops.monitoring.estimation import (
    agreement_limits,
    estimate_interval,
    estimate_metrics,
    estimated_gap_threshold,
)
from mlops.monitoring.profile import PerformanceReference
from mlops.monitoring.significance import resample_size, structural_components
from mlops.monitoring.window import ScoreGrid

BOOTSTRAP_RESAMPLES = 200
CONFIDENCE = 0.95
FAIRNESS_MIN_GROUP = 100
# A true-positive rate from fewer positives moves by more than 0.05 by chance alone (sd ~ 0.5/sqrt(n)),
# and the gap between the extremes of several groups would raise false FairnessGap alarms.
FAIRNESS_MIN_POSITIVES = 100
REPORTED_METRICS = ("accuracy", "f1", "log_loss", "brier")


def _threshold_metric(fn: Callable[..., Any]) -> Callable[[np.ndarray, np.ndarray], float]:
    def metric(y: np.ndarray, p: np.ndarray) -> float:
        return float(fn(y, (p >= DECISION_THRESHOLD).astype(int), zero_division=0))

    return metric


_METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "roc_auc": roc_auc,
    "average_precision": average_precision,
    "accuracy": lambda y, p: float(skm.accuracy_score(y, (p >= DECISION_THRESHOLD).astype(int))),
    "f1": _threshold_metric(skm.f1_score),
    "precision": _threshold_metric(skm.precision_score),
    "recall": _threshold_metric(skm.recall_score),
}
_NEEDS_BOTH_CLASSES = frozenset({"roc_auc", "average_precision"})


def bootstrap_interval(
    y: np.ndarray,
    p: np.ndarray,
    metric: str,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of `metric`; None when too few resamples are defined."""
    fn = _METRIC_FUNCTIONS[metric]
    n = y.size
    if n < 2 or resamples < 10:
        return None
    rng = np.random.default_rng(seed)
    size, scale = resample_size(n)
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, n, size)
        yb = y[idx]
        if metric in _NEEDS_BOTH_CLASSES and (yb.min() == yb.max()):
            continue
        values.append(fn(yb, p[idx]))
    if len(values) < resamples // 2:
        return None
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    if scale < 1.0:
        # Smaller resamples than the window (`resample_size`): their deviations from the
        # window's value, scaled to its size.
        centre = fn(y, p)
        lo, hi = centre + scale * (lo - centre), centre + scale * (hi - centre)
    return float(lo), float(hi)


def _variance_degrees_of_freedom(v10: np.ndarray, v01: np.ndarray, var10: float, var01: float) -> float:
    """Degrees of freedom of var10 + var01 (Welch-Satterthwaite, allowing for the components' kurtosis)."""

    def relative_variance(values: np.ndarray) -> float:
        # Var(s^2) / sigma^4 for a sample of k values: 2/(k - 1) + excess kurtosis / k.
        k = values.size
        kurtosis = float(stats.kurtosis(values)) if np.ptp(values) > 0 else 0.0
        return 2.0 / (k - 1) + max(kurtosis, 0.0) / k

    spread = var10 * var10 * relative_variance(v10) + var01 * var01 * relative_variance(v01)
    if spread <= 0:
        return float(min(v10.size, v01.size) - 1)
    return float(max(1.0, 2.0 * (var10 + var01) ** 2 / spread))


def delong_logit_interval(
    y: np.ndarray, p: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """ROC AUC interval on the logit scale, with a t quantile.

    The logit keeps the interval inside (0, 1) and follows the skew of AUC near 1. Its standard
    error is the two-sample jackknife's of logit(AUC): leaving out one positive or one negative
    moves the AUC by that row's DeLong component, so every leave-one-out AUC comes from the
    components at no cost. The jackknife measures the logit's own spread, where the delta method
    (DeLong's variance divided by (AUC(1 - AUC))^2) assumes the logit is straight over the
    interval; near an AUC of 1 with few positives it is not, and the delta-method interval covered
    about 93% at a nominal 95%. The t quantile pays for estimating the variance: its degrees of
    freedom are Welch-Satterthwaite's for the two structural-component variances, each weighed by
    how precise a sample variance of such values is (2/(k - 1) + excess kurtosis/k).
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=np.float64)
    m = int(np.count_nonzero(y == 1))
    n = y.size - m
    if m < 2 or n < 2:
        return None
    # Share of negatives below each positive (ties count half), and of positives above each negative.
    auc, v10, v01 = structural_components(y, p)
    var10, var01 = float(np.var(v10, ddof=1) / m), float(np.var(v01, ddof=1) / n)
    edge = 0.5 / (m * n)

    def logit(a: np.ndarray | float) -> np.ndarray:
        a = np.clip(a, edge, 1 - edge)
        return np.asarray(np.log(a / (1 - a)))

    # The AUC without positive i, and without negative j.
    without_positive = logit((m * auc - v10) / (m - 1))
    without_negative = logit((n * auc - v01) / (n - 1))
    var = (m - 1) / m * float(((without_positive - without_positive.mean()) ** 2).sum()) + (
        n - 1
    ) / n * float(((without_negative - without_negative.mean()) ** 2).sum())
    se = np.sqrt(max(var, 0.0))
    q = float(stats.t.ppf(0.5 + confidence / 2, _variance_degrees_of_freedom(v10, v01, var10, var01)))
    centre = float(logit(auc))
    return float(1 / (1 + np.exp(-(centre - q * se)))), float(1 / (1 + np.exp(-(centre + q * se))))


def wilson_interval(
    successes: int, trials: int, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Wilson's score interval of a proportion."""
    if trials <= 0:
        return None
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def metric_interval(
    y: np.ndarray,
    p: np.ndarray,
    metric: str,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Interval of a production metric, by the method that covers best for it (module docstring)."""
    y = np.asarray(y, dtype=int)
    predicted = np.asarray(p, dtype=np.float64) >= DECISION_THRESHOLD
    if metric == "roc_auc":
        return delong_logit_interval(y, p, confidence)
    if metric == "accuracy":
        return wilson_interval(int((predicted == (y == 1)).sum()), int(y.size), confidence)
    if metric == "precision":
        return wilson_interval(int((predicted & (y == 1)).sum()), int(predicted.sum()), confidence)
    if metric == "recall":
        return wilson_interval(int((predicted & (y == 1)).sum()), int((y == 1).sum()), confidence)
    return bootstrap_interval(y, p, metric, resamples, confidence, seed)


class ProductionPerformance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    primary_metric: str
    label_count: int
    min_labels: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    test_value: float | None
    metric_gap: float | None
    metrics: dict[str, float | None]
    note: str


def production_performance(
    y: np.ndarray,
    p: np.ndarray,
    primary: str,
    test_metrics: Mapping[str, float | None],
    min_labels: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> ProductionPerformance:
    """Production metrics on labelled predictions; the gap only from `min_labels` labels on."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=np.float64)
    n = int(y.size)
    test_value = test_metrics.get(primary)
    all_metrics = classification_metrics(y, p)
    value = all_metrics.get(primary)
    interval = metric_interval(y, p, primary, resamples, seed=seed) if value is not None else None
    gap = None
    if n < min_labels:
        note = f"{n} labels, fewer than the {min_labels} needed: no gap published"
    elif value is None or test_value is None:
        note = f"{primary} is undefined on these labels (one class only): no gap published"
    else:
        gap = float(test_value - value)
        note = f"gap from {n} labels"
    return ProductionPerformance(
        primary_metric=primary,
        label_count=n,
        min_labels=min_labels,
        # Below the minimum the production value is not published either: it is too noisy to act on.
        value=value if gap is not None else None,
        ci_low=interval[0] if interval and gap is not None else None,
        ci_high=interval[1] if interval and gap is not None else None,
        confidence=CONFIDENCE,
        test_value=test_value,
        metric_gap=gap,
        metrics={k: all_metrics.get(k) for k in (primary, *REPORTED_METRICS)} if n else {},
        note=note,
    )


# -- label-free estimate --------------------------------------------------------------------


class PerformanceEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    primary_metric: str
    count: int
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = CONFIDENCE
    test_value: float | None
    estimated_gap: float | None
    gap_threshold: float | None = None
    # estimated_gap / gap_threshold: the alarm fires from 1 on, whatever the window's size.
    gap_ratio: float | None = None
    threshold_source: str = ""
    calibration_error: float | None
    metrics: dict[str, float | None]


def estimate_performance(
    grid: ScoreGrid,
    primary: str,
    test_metrics: Mapping[str, float | None],
    min_count: int,
    reference: PerformanceReference,
    fixed_gap_threshold: float | None = None,
    seed: int = 0,
) -> PerformanceEstimate:
    """Calibrated estimate of the primary metric, its interval and its gap to the test set.

    Below `min_count` predictions nothing is estimated. The gap threshold comes from the test
    set's chunk-to-chunk variability at this window's size, unless the spec fixes one.
    """
    calibration = reference.calibration
    expected = estimate_metrics(grid, calibration) if grid.total >= min_count else {}
    value = expected.get(primary)
    interval = estimate_interval(grid, calibration, primary, seed=seed) if value is not None else None
    test_value = test_metrics.get(primary)
    gap = float(test_value - value) if value is not None and test_value is not None else None
    threshold: float | None
    if fixed_gap_threshold is not None:
        threshold, source = fixed_gap_threshold, "fixed in the spec (monitoring.max_estimated_metric_gap)"
    else:
        threshold = estimated_gap_threshold(reference, primary, grid.total) if grid.total else None
        source = (
            f"test-set variability: {reference.chunks} chunks of {reference.chunk_rows} rows, scaled to "
            f"{grid.total} rows"
        )
    return PerformanceEstimate(
        primary_metric=primary,
        count=grid.total,
        value=value,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        test_value=test_value,
        estimated_gap=gap,
        gap_threshold=threshold,
        gap_ratio=gap / threshold if gap is not None and threshold else None,
        threshold_source=source if threshold is not None else "",
        calibration_error=test_metrics.get("calibration_error"),
        metrics=expected,
    )


class ConceptShiftCheck(BaseModel):
    """Realized against estimated performance on the same labelled predictions."""

    model_config = ConfigDict(extra="forbid")

    primary_metric: str
    label_count: int
    realized: float
    realized_low: float | None
    realized_high: float | None
    estimated: float
    estimated_low: float | None
    estimated_high: float | None
    difference: float
    limit: float | None
    suspected: bool
    note: str
    # The limit's two parts on the side the difference falls (see `estimation.AgreementLimits`):
    # the labels' noise in this window, and the test set's error that every window shares.
    window_limit: float | None = None
    reference_limit: float | None = None


def concept_shift_check(
    y: np.ndarray,
    p: np.ndarray,
    performance: ProductionPerformance,
    reference: PerformanceReference,
    seed: int = 0,
) -> ConceptShiftCheck | None:
    """Concept shift is suspected when realized and estimated performance part ways beyond what chance allows.

    Both are computed on the same labelled predictions, so the scores are common to them and a
    covariate shift moves them together: only the labels' noise given these scores and the
    calibration map's error separate them when the relation holds (`estimation.agreement_limits`).
    The map's error comes from the one test set, so it is the same in every window of the
    version; its limit is added to the labels' limit, not combined in quadrature as if each window
    drew a new test set. Needs the production value (``min_labels`` labels).
    """
    realized = performance.value
    if realized is None:
        return None
    primary = performance.primary_metric
    grid = ScoreGrid.of(np.asarray(p, dtype=np.float64))
    estimated = estimate_metrics(grid, reference.calibration).get(primary)
    if estimated is None:
        return None
    interval = estimate_interval(grid, reference.calibration, primary, seed=seed)
    limits = agreement_limits(grid, reference.calibration, primary, seed=seed)
    difference = float(realized - estimated)
    limit = window_limit = reference_limit = None
    if limits is not None:
        side = 0 if difference < 0 else 1
        window_limit, reference_limit = abs(limits.window[side]), abs(limits.reference[side])
        limit = float(abs(limits.low if difference < 0 else limits.high))
    suspected = limits is not None and not limits.low <= difference <= limits.high
    if limit is None:
        note = "no limit for this metric on these predictions: not compared"
    elif suspected:
        note = (
            f"realized {primary} {realized:.3f} and its estimate {estimated:.3f} on the same "
            f"{int(y.size)} labelled predictions differ by {difference:+.3f}, beyond the ±{limit:.3f} "
            f"that the labels' noise ({window_limit:.3f}) and the test set's error ({reference_limit:.3f}) "
            "allow: concept shift suspected. The inputs-to-outcome relation changed, which the "
            "label-free estimate cannot see; trust the labels"
        )
    else:
        note = (
            f"realized and estimated {primary} agree within ±{limit:.3f} (labels' noise "
            f"{window_limit:.3f} + test set's error {reference_limit:.3f})"
        )
    return ConceptShiftCheck(
        primary_metric=primary,
        label_count=int(y.size),
        realized=realized,
        realized_low=performance.ci_low,
        realized_high=performance.ci_high,
        estimated=estimated,
        estimated_low=interval[0] if interval else None,
        estimated_high=interval[1] if interval else None,
        difference=difference,
        limit=limit,
        suspected=suspected,
        note=note,
        window_limit=window_limit,
        reference_limit=reference_limit,
    )


# -- fairness ----------------------------------------------------------------------------------


class GroupFigures(BaseModel):
    model_config = ConfigDict(extra="forbid")

    predictions: int
    selection_rate: float
    labelled: int = 0
    positives: int = 0
    true_positive_rate: float | None = None


class AttributeFairness(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attribute: str
    groups: dict[str, GroupFigures]
    selection_rate_gap: float | None
    true_positive_rate_gap: float | None


class Fairness(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attributes: list[AttributeFairness]
    gap: float | None
    gap_of: str | None


def fairness(
    selection: Mapping[str, Mapping[str, list[int]]],
    labelled_groups: Mapping[str, np.ndarray],
    y: np.ndarray,
    p: np.ndarray,
    min_group: int = FAIRNESS_MIN_GROUP,
    min_positives: int = FAIRNESS_MIN_POSITIVES,
) -> Fairness:
    """Selection rate (all predictions) and TPR (labelled) per group; FairnessGap is the largest gap."""
    attributes = []
    best: tuple[float, str] | None = None
    for attribute, table in selection.items():
        groups = {
            g: GroupFigures(predictions=n, selection_rate=pos / n)
            for g, (n, pos) in sorted(table.items())
            if n
        }
        values = labelled_groups.get(attribute)
        if values is not None and y.size:
            labelled = group_metrics({attribute: values}, y, p)[attribute]
            for g, figures in labelled.items():
                positives = int(figures["positives"] or 0)
                if g in groups:
                    groups[g] = groups[g].model_copy(
                        update={
                            "labelled": int(figures["n"] or 0),
                            "positives": positives,
                            "true_positive_rate": figures["true_positive_rate"]
                            if positives >= min_positives
                            else None,
                        }
                    )
        sized = {g: f.model_dump() for g, f in groups.items() if f.predictions >= min_group}
        sel_gap = fairness_gap(sized, "selection_rate")
        tpr_gap = fairness_gap(sized, "true_positive_rate")
        attributes.append(
            AttributeFairness(
                attribute=attribute, groups=groups, selection_rate_gap=sel_gap, true_positive_rate_gap=tpr_gap
            )
        )
        for gap, what in ((sel_gap, "selection rate"), (tpr_gap, "true-positive rate")):
            if gap is not None and (best is None or gap > best[0]):
                best = (gap, f"{what} by {attribute}")
    return Fairness(attributes=attributes, gap=best[0] if best else None, gap_of=best[1] if best else None)
