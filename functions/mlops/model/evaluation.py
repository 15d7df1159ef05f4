"""Classification metrics: test-set metrics at registration and production metrics in monitoring.

One implementation for both, so the gap between them compares like with like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

METRIC_NAMES = (
    "roc_auc",
    "average_precision",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "log_loss",
    "brier",
    "calibration_error",
)
# Metrics where lower is better; the rest are higher-is-better.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "calibration_error"})
DECISION_THRESHOLD = 0.5
CALIBRATION_BINS = 10


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean |observed rate - mean predicted probability| over equal-width bins, weighted by size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(proba, edges[1:-1], right=True), 0, bins - 1)
    total = len(proba)
    ece = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            ece += mask.sum() / total * abs(y_true[mask].mean() - proba[mask].mean())
    return float(ece)


def classification_metrics(
    y_true: Sequence[int] | np.ndarray, proba: Sequence[float] | np.ndarray
) -> dict[str, float | None]:
    """Every metric in METRIC_NAMES; rank metrics are None when only one class is present."""
    y = np.asarray(y_true, dtype=int)
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    if y.size == 0:
        return dict.fromkeys(METRIC_NAMES)
    pred = (p >= DECISION_THRESHOLD).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else None,
        "average_precision": float(skm.average_precision_score(y, p)) if both else None,
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, p)),
        "calibration_error": expected_calibration_error(y, p),
    }


def group_metrics(
    groups: Mapping[str, Sequence[Any] | np.ndarray],
    y_true: np.ndarray,
    proba: np.ndarray,
    min_group_size: int = 1,
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Per sensitive attribute and group: size, selection rate, true-positive rate, accuracy, AUC."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(proba, dtype=np.float64)
    pred = p >= DECISION_THRESHOLD
    out: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for attribute, values in groups.items():
        arr = np.array(
            ["(missing)" if v is None or v == "" or v != v else str(v) for v in values],
            dtype=object,
        )
        per: dict[str, dict[str, float | int | None]] = {}
        for group in sorted(set(arr.tolist())):
            mask = arr == group
            n = int(mask.sum())
            if n < min_group_size:
                continue
            yg, pg = y[mask], pred[mask]
            positives = int(yg.sum())
            per[group] = {
                "n": n,
                "positives": positives,
                "selection_rate": float(pg.mean()),
                "true_positive_rate": float(pg[yg == 1].mean()) if positives else None,
                "accuracy": float((pg == yg).mean()),
                "roc_auc": float(skm.roc_auc_score(yg, p[mask])) if 0 < positives < n else None,
            }
        out[attribute] = per
    return out


def fairness_gap(per_group: Mapping[str, Mapping[str, float | int | None]], key: str) -> float | None:
    """Largest difference of `key` between any two groups of one attribute."""
    values = [float(v) for g in per_group.values() if (v := g.get(key)) is not None]
    return max(values) - min(values) if len(values) >= 2 else None
