"""Data and prediction drift from histogram counts: statistics, per-feature and dataset decisions.

Defaults (overridable in the spec's ``[monitoring]`` table) and why:

- PSI bands 0.1 / 0.25: the credit-scoring convention; below 0.1 a population is "stable",
  0.1-0.25 "warning", above 0.25 "drift". PSI is computed on the reference's quantile
  bins grouped to ``PSI_BINS`` (deciles), so every bin holds ~10% of the reference and
  the statistic does not blow up on empty tails. Under no drift its expected value is
  about ``(bins - 1) * (1/n + 1/m)``: 0.0075 for 2,000 vs 3,000 rows, far below 0.1.
- Significance ``p_value`` 0.05 after Holm's correction across the tested features:
  with 15-20 features, uncorrected tests would flag one feature in most healthy windows.
- Effect size as well as significance: with 10^5-10^6 rows any difference is
  "significant", so a feature is drifted only when the test rejects *and* the shift is
  material (PSI >= psi_warning, normalised Wasserstein >= 0.1 standard deviations, or
  Jensen-Shannon distance >= 0.1), or its missing rate moved by 0.1 or more.
- ``min_feature_count`` (100): a feature with fewer rows is "not tested", never "stable"; with
  enough rows but fewer non-missing values only its missing rate is tested (an all-missing
  feature is the pipeline fault the missing-rate rule is for).
- Dataset drift when the share of drifted features reaches ``drift_share`` (0.3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from mlops.model.spec import Monitoring
from mlops.monitoring.profile import PSI_BINS, CategoricalCounts, DatasetProfile, NumericHistogram

# Proportions of empty bins are floored at this value so PSI stays finite (a new
# category at 5% then adds ~0.31: drift, as it should be).
PSI_EPSILON = 1e-4
WASSERSTEIN_DRIFT = 0.1
JENSEN_SHANNON_DRIFT = 0.1
MISSING_RATE_DRIFT = 0.1
UNSEEN_LABEL = "(unseen)"


class Band(StrEnum):
    STABLE = "stable"
    WARNING = "warning"
    DRIFT = "drift"
    NOT_TESTED = "not tested"


@dataclass(frozen=True)
class DriftPolicy:
    psi_warning: float = 0.1
    psi_drift: float = 0.25
    p_value: float = 0.05
    min_count: int = 100
    drift_share: float = 0.3
    wasserstein: float = WASSERSTEIN_DRIFT
    jensen_shannon: float = JENSEN_SHANNON_DRIFT
    missing_rate_change: float = MISSING_RATE_DRIFT

    @classmethod
    def from_spec(cls, monitoring: Monitoring) -> DriftPolicy:
        return cls(
            psi_warning=monitoring.psi_warning,
            psi_drift=monitoring.psi_drift,
            p_value=monitoring.p_value,
            min_count=monitoring.min_feature_count,
            drift_share=monitoring.drift_share,
        )


# -- statistics on aligned count vectors ------------------------------------------------


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, dtype=np.float64)


def population_stability_index(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI = sum (c - r) ln(c / r) over aligned bins, shares floored at PSI_EPSILON."""
    r = np.maximum(_shares(np.asarray(reference, dtype=np.float64)), PSI_EPSILON)
    c = np.maximum(_shares(np.asarray(current, dtype=np.float64)), PSI_EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_groups(reference_counts: Sequence[int] | np.ndarray, bins: int = PSI_BINS) -> list[int]:
    """Fine-bin indices that end each coarse PSI bin, so each holds ~1/bins of the reference.

    Fine bins are the reference's quantile bins; grouping at the cumulative shares
    k/bins gives decile bins (fewer when a feature has few distinct values).
    """
    counts = np.asarray(reference_counts, dtype=np.float64)
    total = counts.sum()
    last = len(counts) - 1
    if total == 0 or last <= 0:
        return [last]
    cum = np.cumsum(counts) / total
    ends = {int(np.argmin(np.abs(cum[:last] - k / bins))) for k in range(1, bins)}
    return [*sorted(ends), last]


def group_counts(counts: Sequence[int] | np.ndarray, ends: Sequence[int]) -> np.ndarray:
    cum = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))])
    idx = np.asarray(ends, dtype=np.int64) + 1
    return np.diff(np.concatenate([[0], cum[idx]]))


# Above this effective sample size the KS p-value comes from the Kolmogorov limit (see ks_from_counts).
KS_EXACT_MAX_N = 10_000


def ks_from_counts(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value from counts on shared bins.

    The CDFs are compared at the bin edges, so the statistic is within one bin's mass of
    the exact one; the p-value uses the Smirnov distribution with n*m/(n+m) as ks_2samp
    does for large samples.
    """
    n, m = float(np.sum(reference)), float(np.sum(current))
    if n == 0 or m == 0:
        return 0.0, 1.0
    f_ref = np.cumsum(reference) / n
    f_cur = np.cumsum(current) / m
    d = float(np.max(np.abs(f_ref - f_cur)))
    en = n * m / (n + m)
    if en > KS_EXACT_MAX_N:
        # scipy's exact Smirnov tail takes 0.1 to 2.5 s at such sizes (a 20-feature window of a week's
        # traffic spent more time here than in everything else); the Kolmogorov limit with Stephens'
        # correction is within 4% of it (relative) from n = 10,000 on.
        root = math.sqrt(en)
        return d, float(stats.kstwobign.sf(d * (root + 0.12 + 0.11 / root)))
    return d, float(stats.kstwo.sf(d, max(1, round(en))))


def _tail_means(h: NumericHistogram, edges: np.ndarray) -> tuple[float, float]:
    """Mean of the values below-or-at the first edge and above the last, from the tail sums.

    An empty tail gets its edge (it then adds nothing to the distance).
    """
    counts = h.counts
    low = h.below_sum / counts[0] if counts[0] else float(edges[0])
    high = h.above_sum / counts[-1] if counts[-1] else float(edges[-1])
    return float(low), float(high)


def wasserstein_from_histograms(reference: NumericHistogram, current: NumericHistogram) -> float:
    """Earth mover's distance (W1) between two histograms on the same edges.

    Between the edges, mass is taken as spread evenly over each bin and the integral of
    |F_ref - F_cur| is exact for those piecewise-linear CDFs. Over each open outer bin the
    integral of F (of 1 - F above) is the bin's mass times the distance of its mean from
    the edge, and the means are exact (the histograms carry each tail's sum); the term
    is exact whenever one CDF lies above the other throughout the tail, as under a shift
    or a change of scale, and a lower bound otherwise.
    """
    n, m = reference.count, current.count
    if n == 0 or m == 0:
        return 0.0
    edges = np.asarray(reference.edges, dtype=np.float64)
    if edges.size == 0:
        return abs(float(current.sum / m - reference.sum / n))
    f_ref = np.cumsum(reference.counts)[:-1] / n
    f_cur = np.cumsum(current.counts)[:-1] / m
    diff = f_ref - f_cur
    a, b, width = diff[:-1], diff[1:], np.diff(edges)
    same_sign = a * b >= 0
    area = np.where(
        same_sign,
        (np.abs(a) + np.abs(b)) / 2,
        (a * a + b * b) / (2 * np.maximum(np.abs(a) + np.abs(b), 1e-300)),
    )
    r_low, r_high = _tail_means(reference, edges)
    c_low, c_high = _tail_means(current, edges)
    r_counts, c_counts = reference.counts, current.counts
    # Integral of F over the lower tail is mass * (edge - tail mean); of 1 - F over the upper likewise.
    low = abs(r_counts[0] / n * (edges[0] - r_low) - c_counts[0] / m * (edges[0] - c_low))
    high = abs(r_counts[-1] / n * (r_high - edges[-1]) - c_counts[-1] / m * (c_high - edges[-1]))
    return float(np.sum(area * width) + low + high)


def chi_square_homogeneity(reference: np.ndarray, current: np.ndarray) -> tuple[float, float, int]:
    """Pearson chi-square test that two count vectors share one distribution (no continuity correction)."""
    table = np.vstack([reference, current]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return stat, float(stats.chi2.sf(stat, dof)), dof


def jensen_shannon_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Square root of the Jensen-Shannon divergence, base 2 (so within [0, 1])."""
    p, q = _shares(np.asarray(reference, float)), _shares(np.asarray(current, float))
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    mid = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / mid[mask])))

    return float(np.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values: reject where adjusted p < alpha (controls the FWER)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = adjusted
    return [float(v) for v in out]


# -- per-feature results ------------------------------------------------------------------


class DistributionPlot(BaseModel):
    """Reference and current shares per display bin, for the report's plots."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str]
    reference: list[float]
    current: list[float]


class FeatureDrift(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feature: str
    kind: str
    count: int
    reference_count: int
    missing_rate_reference: float
    missing_rate_current: float
    missing_rate_change: float
    missing_count: int = 0
    psi: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    ks_statistic: float | None = None
    wasserstein_normalized: float | None = None
    chi_square: float | None = None
    jensen_shannon: float | None = None
    unseen_share: float | None = None
    unseen_categories: list[str] = Field(default_factory=list)
    tested: bool = False
    drifted: bool = False
    band: Band = Band.NOT_TESTED
    reason: str = ""
    plot: DistributionPlot | None = None


def _edge_label(lo: float | None, hi: float | None) -> str:
    if lo is None:
        return f"<= {hi:.4g}"
    if hi is None:
        return f"> {lo:.4g}"
    return f"{lo:.4g}-{hi:.4g}"


def numeric_feature_drift(name: str, reference: NumericHistogram, current: NumericHistogram) -> FeatureDrift:
    """Statistics of one numeric feature (no decision yet: that needs every feature's p-value)."""
    ends = psi_groups(reference.counts)
    ref_g = group_counts(reference.counts, ends)
    cur_g = group_counts(current.counts, ends)
    edges = reference.edges
    bounds: list[float | None] = [None, *[edges[i] for i in ends[:-1]], None]
    labels = [_edge_label(bounds[i], bounds[i + 1]) for i in range(len(ends))]
    ks, p = ks_from_counts(np.asarray(reference.counts), np.asarray(current.counts))
    std = reference.std
    w = wasserstein_from_histograms(reference, current)
    # Normalised by the reference spread, so one threshold suits every unit of measure.
    w_norm = w / std if std else (0.0 if w == 0 else float("inf"))
    return FeatureDrift(
        feature=name,
        kind="numeric",
        count=current.count,
        reference_count=reference.count,
        missing_rate_reference=reference.missing_rate,
        missing_rate_current=current.missing_rate,
        missing_rate_change=current.missing_rate - reference.missing_rate,
        missing_count=current.missing,
        psi=population_stability_index(ref_g, cur_g),
        p_value=p,
        ks_statistic=ks,
        wasserstein_normalized=w_norm,
        plot=DistributionPlot(
            labels=labels,
            reference=[float(v) for v in _shares(ref_g.astype(float))],
            current=[float(v) for v in _shares(cur_g.astype(float))],
        ),
    )


def categorical_feature_drift(
    name: str, reference: CategoricalCounts, current: CategoricalCounts, seen: Sequence[str] | None = None
) -> FeatureDrift:
    known = set(seen if seen is not None else reference.counts)
    categories = sorted(set(reference.counts) | set(current.counts))
    ref = np.array([reference.counts.get(c, 0) for c in categories], dtype=np.float64)
    cur = np.array([current.counts.get(c, 0) for c in categories], dtype=np.float64)
    chi, p, _ = chi_square_homogeneity(ref, cur)
    unseen = sorted(c for c in current.counts if c not in known)
    unseen_n = sum(current.counts[c] for c in unseen)
    # The plot shows the reference's categories and folds new ones into one bar.
    shown = sorted(c for c in categories if c in known or reference.counts.get(c, 0))
    ref_plot = [reference.counts.get(c, 0) for c in shown]
    cur_plot = [current.counts.get(c, 0) for c in shown]
    if unseen:
        shown, ref_plot, cur_plot = [*shown, UNSEEN_LABEL], [*ref_plot, 0], [*cur_plot, unseen_n]
    return FeatureDrift(
        feature=name,
        kind="categorical",
        count=current.count,
        reference_count=reference.count,
        missing_rate_reference=reference.missing_rate,
        missing_rate_current=current.missing_rate,
        missing_rate_change=current.missing_rate - reference.missing_rate,
        missing_count=current.missing,
        psi=population_stability_index(ref, cur),
        p_value=p,
        chi_square=chi,
        jensen_shannon=jensen_shannon_distance(ref, cur),
        unseen_share=unseen_n / current.count if current.count else 0.0,
        unseen_categories=unseen[:20],
        plot=DistributionPlot(
            labels=shown,
            reference=[float(v) for v in _shares(np.asarray(ref_plot, float))],
            current=[float(v) for v in _shares(np.asarray(cur_plot, float))],
        ),
    )


def _band(psi: float | None, policy: DriftPolicy) -> Band:
    if psi is None:
        return Band.NOT_TESTED
    if psi >= policy.psi_drift:
        return Band.DRIFT
    if psi >= policy.psi_warning:
        return Band.WARNING
    return Band.STABLE


def decide(features: Sequence[FeatureDrift], policy: DriftPolicy) -> list[FeatureDrift]:
    """Per-feature drift decisions, with Holm's correction across the features whose distribution was tested.

    The missing-rate rule comes first and needs only rows, not values: a feature that went
    (almost) entirely missing has too few values for a distribution test, but it is exactly
    the pipeline fault the rule exists for, so it is tested, flagged and counted.
    """
    with_values = [f for f in features if f.count >= policy.min_count and f.p_value is not None]
    adjusted = dict(
        zip(
            [f.feature for f in with_values],
            holm_adjust([1.0 if f.p_value is None else f.p_value for f in with_values]),
            strict=True,
        )
    )
    out = []
    for f in features:
        missing_moved = abs(f.missing_rate_change) >= policy.missing_rate_change
        missing_reason = f"missing rate moved by {f.missing_rate_change:+.3f}"
        if f.feature not in adjusted:
            rows = f.count + f.missing_count
            values_note = f"fewer than {policy.min_count} values ({f.count})"
            if rows < policy.min_count:
                update = {"tested": False, "drifted": False, "band": Band.NOT_TESTED, "reason": values_note}
            else:
                # Too few values for a distribution test: its statistics would describe noise.
                update = {
                    "tested": True,
                    "drifted": missing_moved,
                    "band": Band.DRIFT if missing_moved else Band.STABLE,
                    "reason": (missing_reason if missing_moved else "missing rate unchanged")
                    + f"; {values_note}: distribution not tested",
                    "psi": None,
                    "p_value": None,
                    "ks_statistic": None,
                    "wasserstein_normalized": None,
                    "chi_square": None,
                    "jensen_shannon": None,
                    "plot": None,
                }
            out.append(f.model_copy(update=update))
            continue
        p_adj = adjusted[f.feature]
        effects = []
        if (f.psi or 0.0) >= policy.psi_warning:
            effects.append(f"PSI {f.psi:.3f}")
        if (f.wasserstein_normalized or 0.0) >= policy.wasserstein:
            effects.append(f"Wasserstein {f.wasserstein_normalized:.3f} sd")
        if (f.jensen_shannon or 0.0) >= policy.jensen_shannon:
            effects.append(f"JS {f.jensen_shannon:.3f}")
        significant = p_adj < policy.p_value
        drifted = (significant and bool(effects)) or missing_moved
        if missing_moved:
            reason = missing_reason
        elif drifted:
            reason = f"adjusted p {p_adj:.2g} < {policy.p_value} and " + ", ".join(effects)
        elif significant:
            reason = "significant but the shift is small"
        elif effects:
            reason = "large shift but not significant at this sample size"
        else:
            reason = "no material change"
        band = _band(f.psi, policy)
        if drifted and band is Band.STABLE:
            band = Band.WARNING
        out.append(
            f.model_copy(
                update={
                    "tested": True,
                    "drifted": drifted,
                    "p_value_adjusted": p_adj,
                    "band": band,
                    "reason": reason,
                }
            )
        )
    return out


class DatasetDrift(BaseModel):
    model_config = ConfigDict(extra="forbid")

    features: list[FeatureDrift]
    tested: int
    drifted: int
    drift_share: float | None
    dataset_drift: bool | None
    threshold: float
    # The per-feature rule: the largest weighted PSI among features judged drifted (0 when none).
    largest_drift: float | None = None
    largest_drift_feature: str | None = None


def largest_feature_drift(
    features: Sequence[FeatureDrift], weights: Mapping[str, float] | None = None
) -> tuple[float | None, str | None]:
    """The largest PSI x weight among drifted features: 0 when none drifted, None when none was tested.

    Only features whose drift is both significant (after Holm) and material count, so one
    feature that moved far is seen even when the drifted share stays under `drift_share`.
    """
    if not any(f.tested for f in features):
        return None, None
    best, name = 0.0, None
    for f in features:
        if f.drifted and f.psi is not None:
            score = f.psi * (weights or {}).get(f.feature, 1.0)
            if score > best:
                best, name = score, f.feature
    return best, name


def dataset_drift(
    reference: DatasetProfile,
    current: DatasetProfile,
    policy: DriftPolicy,
    seen_categories: Mapping[str, Sequence[str]] | None = None,
    feature_weights: Mapping[str, float] | None = None,
) -> DatasetDrift:
    """Every feature's drift and the dataset decision: drifted share >= policy.drift_share."""
    seen = seen_categories or {}
    features = [numeric_feature_drift(k, v, current.numeric[k]) for k, v in reference.numeric.items()]
    features += [
        categorical_feature_drift(k, v, current.categorical[k], seen.get(k))
        for k, v in reference.categorical.items()
    ]
    decided = decide(features, policy)
    tested = sum(f.tested for f in decided)
    drifted = sum(f.drifted for f in decided)
    share = drifted / tested if tested else None
    largest, largest_feature = largest_feature_drift(decided, feature_weights)
    return DatasetDrift(
        features=decided,
        tested=tested,
        drifted=drifted,
        drift_share=share,
        dataset_drift=None if share is None else share >= policy.drift_share,
        threshold=policy.drift_share,
        largest_drift=largest,
        largest_drift_feature=largest_feature,
    )


class PredictionDrift(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int
    psi: float | None
    ks_statistic: float | None
    p_value: float | None
    band: Band
    plot: DistributionPlot | None = None


def prediction_drift(
    reference: NumericHistogram, current: NumericHistogram, policy: DriftPolicy
) -> PredictionDrift:
    """PSI (and KS) of the predicted-score distribution against the test-set scores."""
    if current.count < policy.min_count:
        return PredictionDrift(
            count=current.count, psi=None, ks_statistic=None, p_value=None, band=Band.NOT_TESTED
        )
    f = numeric_feature_drift("score", reference, current)
    return PredictionDrift(
        count=current.count,
        psi=f.psi,
        ks_statistic=f.ks_statistic,
        p_value=f.p_value,
        band=_band(f.psi, policy),
        plot=f.plot,
    )
