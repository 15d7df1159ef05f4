"""Regression metrics and how sure they are: one implementation for the test set and production.

Errors (rmse, mae) are in the target's units and lower is better; r2 is higher-is-better.
Intervals: the delta method for rmse and mae (a mean of per-row losses, so the central limit
theorem applies directly) and a seeded percentile bootstrap for r2 (a ratio of two sums).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

REGRESSION_METRIC_NAMES = ("rmse", "mae", "r2", "mean_error", "median_absolute_error")
ERROR_METRICS = frozenset({"rmse", "mae", "median_absolute_error"})
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 400
_NORMAL = NormalDist()


def lower_is_better(metric: str) -> bool:
    return metric in ERROR_METRICS


def regression_metrics(
    y_true: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray
) -> dict[str, float | None]:
    """Every metric in REGRESSION_METRIC_NAMES; r2 is None when the target does not vary."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if y.size == 0:
        return dict.fromkeys(REGRESSION_METRIC_NAMES)
    residual = y - p
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "mae": float(np.mean(np.abs(residual))),
        "r2": 1.0 - float(np.sum(residual**2)) / total if total > 0 else None,
        # Mean of (true - predicted): positive when the model predicts too low.
        "mean_error": float(residual.mean()),
        "median_absolute_error": float(np.median(np.abs(residual))),
    }


class MetricInterval(BaseModel):
    """A metric on some rows with its standard error and two-sided interval."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    value: float | None
    rows: int
    standard_error: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    method: str
    source: str = ""


def metric_interval(
    y_true: np.ndarray,
    predicted: np.ndarray,
    metric: str,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    source: str = "",
) -> MetricInterval:
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    value = regression_metrics(y, p).get(metric)
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    n = y.size
    if value is None or n < 10:
        return MetricInterval(
            metric=metric,
            value=value,
            rows=n,
            standard_error=None,
            ci_low=None,
            ci_high=None,
            confidence=confidence,
            method="none",
            source=source,
        )
    residual = y - p
    if metric == "mae":
        se = float(np.std(np.abs(residual), ddof=1) / np.sqrt(n))
        low, high, method = value - z * se, value + z * se, "normal"
    elif metric == "rmse":
        # Delta method: se(sqrt(m)) = se(m) / (2 sqrt(m)), m the mean squared error.
        se_mse = float(np.std(residual**2, ddof=1) / np.sqrt(n))
        se = se_mse / (2.0 * value) if value > 0 else 0.0
        mse = value**2
        low = float(np.sqrt(max(mse - z * se_mse, 0.0)))
        high = float(np.sqrt(mse + z * se_mse))
        method = "delta"
    else:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(BOOTSTRAP_RESAMPLES):
            idx = rng.integers(0, n, n)
            v = regression_metrics(y[idx], p[idx]).get(metric)
            if v is not None:
                draws.append(v)
        se = float(np.std(draws, ddof=1))
        alpha = (1 - confidence) / 2
        low, high = (float(q) for q in np.quantile(draws, [alpha, 1 - alpha]))
        method = "bootstrap"
    return MetricInterval(
        metric=metric,
        value=value,
        rows=n,
        standard_error=se,
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        method=method,
        source=source,
    )


def _group_text(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    return np.array(["(missing)" if v is None or v == "" or v != v else str(v) for v in values], dtype=object)


def group_error_metrics(
    groups: Mapping[str, Sequence[Any] | np.ndarray],
    y_true: np.ndarray,
    predicted: np.ndarray,
    min_group_size: int = 1,
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Per sensitive attribute and group: size, mae, rmse and mean error (bias)."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    out: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for attribute, values in groups.items():
        arr = _group_text(values)
        per: dict[str, dict[str, float | int | None]] = {}
        for group in sorted(set(arr.tolist())):
            mask = arr == group
            n = int(mask.sum())
            if n < min_group_size:
                continue
            m = regression_metrics(y[mask], p[mask])
            per[group] = {"n": n, "mae": m["mae"], "rmse": m["rmse"], "mean_error": m["mean_error"]}
        out[attribute] = per
    return out


def group_error_gap(
    per_group: Mapping[str, Mapping[str, float | int | None]], key: str = "mae"
) -> float | None:
    """Largest difference in `key` (an error) between two groups of one attribute."""
    values = [float(v) for g in per_group.values() if (v := g.get(key)) is not None]
    return max(values) - min(values) if len(values) >= 2 else None
