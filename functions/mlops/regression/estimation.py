"""Performance without labels for regression, in the manner of Direct Loss Estimation.

A second model learns the first one's loss from the held-out reference rows: given a row's
features and its prediction, how large is the error? Its average over a production window
estimates the window's MAE (and, from the squared loss, RMSE) before any label arrives.
It catches the errors that covariate shift brings (rows moving where the model is weak);
a change of the relation between inputs and target (concept shift) stays for labels to show.

The loss model is a small random forest over an encoding that needs no sklearn to apply:
numeric features with their median for missing values, one indicator per seen category, and
the prediction. Trees are stored as plain arrays in the reference profile and run with numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlops.profile import MISSING_CATEGORY

LOSS_TREES = 40
LOSS_MAX_DEPTH = 6
LOSS_MIN_LEAF = 20


class LossTree(BaseModel):
    model_config = ConfigDict(extra="forbid")

    left: list[int]
    right: list[int]
    feature: list[int]
    threshold: list[float]
    value: list[float]


class LossModel(BaseModel):
    """Two forests, one for the absolute and one for the squared error, over a fixed encoding."""

    model_config = ConfigDict(extra="forbid")

    numeric: list[str]
    medians: list[float]
    categories: dict[str, list[str]]
    absolute: list[LossTree]
    squared: list[LossTree]
    reference_rows: int


def encode(
    model_numeric: Sequence[str],
    medians: Sequence[float],
    categories: Mapping[str, Sequence[str]],
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    predicted: np.ndarray,
) -> np.ndarray:
    """The loss model's design matrix: imputed numbers, category indicators, the prediction."""
    n = predicted.size
    parts = []
    for name, median in zip(model_numeric, medians, strict=True):
        values = np.array([np.nan if v is None else v for v in columns[name]], dtype=np.float64)
        parts.append(np.where(np.isnan(values), median, values))
    for name, seen in categories.items():
        column = np.array(["" if v is None else str(v) for v in columns[name]], dtype=object)
        parts.extend((column == c).astype(np.float64) for c in seen)
    parts.append(np.asarray(predicted, dtype=np.float64))
    return np.column_stack(parts) if parts else np.zeros((n, 0))


def _trees(forest: Any) -> list[LossTree]:
    out = []
    for est in forest.estimators_:
        t = est.tree_
        out.append(
            LossTree(
                left=t.children_left.tolist(),
                right=t.children_right.tolist(),
                feature=t.feature.tolist(),
                threshold=t.threshold.tolist(),
                value=t.value[:, 0, 0].tolist(),
            )
        )
    return out


def fit_loss_model(
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    numeric: Sequence[str],
    categorical: Sequence[str],
    y_true: np.ndarray,
    predicted: np.ndarray,
    seed: int = 0,
) -> LossModel:
    """Fit the loss model on held-out rows (never the rows the model was trained on)."""
    from sklearn.ensemble import RandomForestRegressor

    medians = []
    for name in numeric:
        values = np.asarray(columns[name], dtype=np.float64)
        finite = values[np.isfinite(values)]
        medians.append(float(np.median(finite)) if finite.size else 0.0)
    categories = {
        name: sorted({str(v) for v in columns[name] if v is not None and v != MISSING_CATEGORY})
        for name in categorical
    }
    x = encode(numeric, medians, categories, columns, predicted)
    residual = np.asarray(y_true, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)
    forests = []
    for target in (np.abs(residual), residual**2):
        forest = RandomForestRegressor(
            n_estimators=LOSS_TREES,
            max_depth=LOSS_MAX_DEPTH,
            min_samples_leaf=LOSS_MIN_LEAF,
            random_state=seed,
        )
        # The trees compare float32 features (as sklearn's do); applying them below does the same.
        forest.fit(x.astype(np.float32), target)
        forests.append(_trees(forest))
    return LossModel(
        numeric=list(numeric),
        medians=medians,
        categories=categories,
        absolute=forests[0],
        squared=forests[1],
        reference_rows=int(residual.size),
    )


def _apply(trees: Sequence[LossTree], x: np.ndarray) -> np.ndarray:
    x32 = x.astype(np.float32)
    rows = np.arange(x.shape[0])
    total = np.zeros(x.shape[0])
    for tree in trees:
        left, right = np.asarray(tree.left), np.asarray(tree.right)
        feature, threshold = np.asarray(tree.feature), np.asarray(tree.threshold)
        node = np.zeros(x.shape[0], dtype=np.int64)
        while True:
            inner = left[node] != -1
            if not inner.any():
                break
            f = np.where(inner, feature[node], 0)
            go_left = x32[rows, f] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        total += np.asarray(tree.value)[node]
    return total / max(len(trees), 1)


def expected_losses(
    model: LossModel, columns: Mapping[str, Sequence[Any] | np.ndarray], predicted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the expected absolute and squared error the loss model sees."""
    x = encode(model.numeric, model.medians, model.categories, columns, np.asarray(predicted))
    return _apply(model.absolute, x), _apply(model.squared, x)


def estimated_metrics(
    model: LossModel, columns: Mapping[str, Sequence[Any] | np.ndarray], predicted: np.ndarray
) -> dict[str, float | None]:
    """Estimated MAE and RMSE of a window (None for an empty one)."""
    if np.asarray(predicted).size == 0:
        return {"mae": None, "rmse": None}
    absolute, squared = expected_losses(model, columns, predicted)
    return {"mae": float(absolute.mean()), "rmse": float(np.sqrt(max(squared.mean(), 0.0)))}
