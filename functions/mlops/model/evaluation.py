"""Classification metrics: test-set metrics at registration and production metrics in monitoring.

One implementation for both, so the gap between them compares like with like. The figures are
scikit-learn's (a test holds them equal), computed from one sort of the scores and counts: a
monitor window can hold millions of labelled predictions, and sklearn's metric functions each
validate, find the classes and sort again, which took 16 s of a run at 4.5 million labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

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
    p = np.asarray(proba, dtype=np.float64)
    if p.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    # Per bin, |sum(y) - sum(p)| is its size times |rate - mean probability|.
    observed = np.bincount(idx, weights=np.asarray(y_true, dtype=np.float64), minlength=bins)
    predicted = np.bincount(idx, weights=p, minlength=bins)
    return float(np.abs(observed - predicted).sum() / p.size)


def ranked_counts(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives among the scores at or above each distinct score, highest first.

    The points of sklearn's ROC and precision-recall curves (`_binary_clf_curve`), as exact
    integers, from one sort.
    """
    order = np.argsort(p)[::-1]
    scores = p[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tps = np.cumsum(y[order], dtype=np.int64)[last]
    return tps, last + 1 - tps


def _auc(tps: np.ndarray, fps: np.ndarray) -> float:
    # Trapezoids under the ROC points, in integers until the one division.
    heights = tps + np.r_[0, tps[:-1]]
    return float(int((np.diff(fps, prepend=0) * heights).sum()) / (2 * int(tps[-1]) * int(fps[-1])))


def _average_precision(tps: np.ndarray, fps: np.ndarray) -> float:
    # Each distinct score's share of the positives, weighed by the precision at that score.
    return float((np.diff(tps, prepend=0) * (tps / (tps + fps))).sum() / int(tps[-1]))


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC, ties counting one half; needs both classes."""
    return _auc(*ranked_counts(y, p))


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision (sklearn's, not interpolated); needs both classes."""
    return _average_precision(*ranked_counts(y, p))


def classification_metrics(
    y_true: Sequence[int] | np.ndarray, proba: Sequence[float] | np.ndarray
) -> dict[str, float | None]:
    """Every metric in METRIC_NAMES; rank metrics are None when only one class is present.

    Labels are 0 and 1. Log loss clips probabilities to [eps, 1 - eps] as sklearn does.
    """
    y = np.asarray(y_true, dtype=int)
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    n = int(y.size)
    if n == 0:
        return dict.fromkeys(METRIC_NAMES)
    positives = int(np.count_nonzero(y))
    pred = p >= DECISION_THRESHOLD
    hit = y == 1
    tp = int(np.count_nonzero(pred & hit))
    predicted = int(np.count_nonzero(pred))
    fp, fn = predicted - tp, positives - tp
    auc = average_precision = None
    if 0 < positives < n:
        tps, fps = ranked_counts(y, p)
        auc, average_precision = _auc(tps, fps), _average_precision(tps, fps)
    eps = float(np.finfo(np.float64).eps)
    given_to_truth = np.clip(np.where(hit, p, 1.0 - p), eps, 1.0 - eps)
    return {
        "roc_auc": auc,
        "average_precision": average_precision,
        "accuracy": (n - fp - fn) / n,
        "precision": tp / predicted if predicted else 0.0,
        "recall": tp / positives if positives else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "log_loss": float(-np.log(given_to_truth).mean()),
        "brier": float(np.square(p - y).mean()),
        "calibration_error": expected_calibration_error(y, p),
    }


def _group_name(value: Any) -> str:
    return "(missing)" if value is None or value == "" or value != value else str(value)


def group_codes(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each value's group number and the groups' names, sorted (None, "" and NaN are "(missing)").

    Distinct values are named once, not every row: a window holds millions of rows and a few groups.
    """
    codes, distinct = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    names = sorted({_group_name(v) for v in distinct})
    number = {name: i for i, name in enumerate(names)}
    return np.array([number[_group_name(v)] for v in distinct], dtype=np.int64)[codes], names


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
    hit = y == 1
    out: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for attribute, values in groups.items():
        codes, names = group_codes(values)
        k = len(names)
        sizes = np.bincount(codes, minlength=k)
        positives = np.bincount(codes[hit], minlength=k)
        selected = np.bincount(codes[pred], minlength=k)
        true_positives = np.bincount(codes[pred & hit], minlength=k)
        right = np.bincount(codes[pred == hit], minlength=k)
        per: dict[str, dict[str, float | int | None]] = {}
        for g, group in enumerate(names):
            n, pos = int(sizes[g]), int(positives[g])
            if n < min_group_size:
                continue
            mask = codes == g
            per[group] = {
                "n": n,
                "positives": pos,
                "selection_rate": int(selected[g]) / n,
                "true_positive_rate": int(true_positives[g]) / pos if pos else None,
                "accuracy": int(right[g]) / n,
                "roc_auc": roc_auc(y[mask], p[mask]) if 0 < pos < n else None,
            }
        out[attribute] = per
    return out


def fairness_gap(per_group: Mapping[str, Mapping[str, float | int | None]], key: str) -> float | None:
    """Largest difference of `key` between any two groups of one attribute."""
    values = [float(v) for g in per_group.values() if (v := g.get(key)) is not None]
    return max(values) - min(values) if len(values) >= 2 else None
