"""Production performance on labelled predictions, its label-free estimate, and fairness by group.

- The metric gap is test-set value minus production value of the primary metric, and is
  published only from ``min_labels`` labels on (spec; default 200): with fewer, the
  alarm must see missing data rather than a noisy number or a false zero.
- The interval is a percentile bootstrap (95%, 200 resamples, seeded): cheap at the
  label counts a window has, and free of distributional assumptions about AUC.
- The label-free estimate is confidence-based performance estimation (CBPE): if the
  model is calibrated, a prediction with probability p is a positive with probability p,
  so expected confusion matrices and an expected ROC curve follow from the scores
  alone. It is an early warning under covariate shift and blind to concept shift
  (calibration itself breaks then); registration records the calibration error, which
  the report shows next to the estimate.
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

from mlops.evaluation import DECISION_THRESHOLD, classification_metrics, fairness_gap, group_metrics
from mlops.monitoring.window import SCORE_GRID_BINS, ScoreGrid

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


def rank_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank sum (ties averaged): equal to sklearn's, without its
    per-call validation cost, which dominates 200 bootstrap resamples."""
    ranks = stats.rankdata(p)
    positives = int(y.sum())
    negatives = y.size - positives
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


_METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "roc_auc": rank_auc,
    "average_precision": lambda y, p: float(skm.average_precision_score(y, p)),
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
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        yb = y[idx]
        if metric in _NEEDS_BOTH_CLASSES and (yb.min() == yb.max()):
            continue
        values.append(fn(yb, p[idx]))
    if len(values) < resamples // 2:
        return None
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return float(lo), float(hi)


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
    interval = bootstrap_interval(y, p, primary, resamples, seed=seed) if value is not None else None
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


def expected_metrics(grid: ScoreGrid) -> dict[str, float | None]:
    """Expected ROC AUC, average precision and threshold metrics if the scores are calibrated."""
    pos = grid.sums
    neg = grid.counts - grid.sums
    total_pos, total_neg = float(pos.sum()), float(neg.sum())
    if grid.total == 0:
        return {}
    out: dict[str, float | None] = {}
    if total_pos > 0 and total_neg > 0:
        neg_below = np.cumsum(neg) - neg
        # Scores in one grid bin count as ties (half a win), as in the ROC curve's trapezoids.
        out["roc_auc"] = float(np.sum(pos * (neg_below + 0.5 * neg)) / (total_pos * total_neg))
        tp = np.cumsum(pos[::-1])
        fp = np.cumsum(neg[::-1])
        recall = tp / total_pos
        precision = np.divide(tp, tp + fp, out=np.ones_like(tp), where=(tp + fp) > 0)
        out["average_precision"] = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))
    else:
        out["roc_auc"] = out["average_precision"] = None
    cut = int(DECISION_THRESHOLD * SCORE_GRID_BINS)
    etp, efp = float(pos[cut:].sum()), float(neg[cut:].sum())
    efn, etn = float(pos[:cut].sum()), float(neg[:cut].sum())
    n = etp + efp + efn + etn
    out["accuracy"] = (etp + etn) / n
    out["precision"] = etp / (etp + efp) if etp + efp > 0 else 0.0
    out["recall"] = etp / (etp + efn) if etp + efn > 0 else 0.0
    out["f1"] = 2 * etp / (2 * etp + efp + efn) if etp + efp + efn > 0 else 0.0
    return out


class PerformanceEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    primary_metric: str
    count: int
    value: float | None
    test_value: float | None
    estimated_gap: float | None
    calibration_error: float | None
    metrics: dict[str, float | None]


def estimate_performance(
    grid: ScoreGrid, primary: str, test_metrics: Mapping[str, float | None], min_count: int
) -> PerformanceEstimate:
    """CBPE estimate of the primary metric and its gap to the test set (None below `min_count`)."""
    expected = expected_metrics(grid) if grid.total >= min_count else {}
    value = expected.get(primary)
    test_value = test_metrics.get(primary)
    return PerformanceEstimate(
        primary_metric=primary,
        count=grid.total,
        value=value,
        test_value=test_value,
        estimated_gap=float(test_value - value) if value is not None and test_value is not None else None,
        calibration_error=test_metrics.get("calibration_error"),
        metrics=expected,
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
            names = np.array(["(missing)" if v is None or v == "" else str(v) for v in values], dtype=object)
            for g, figures in labelled.items():
                positives = int(y[names == g].sum())
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
