"""Performance without labels for regression, in the manner of Direct Loss Estimation.

A second model learns the first one's loss from the held-out reference rows: given a row's
features and its prediction, how large is the error? Its average over a production window
estimates the window's MAE (and, from the squared loss, RMSE) before any label arrives.
It catches the errors that covariate shift brings (rows moving where the model is weak);
a change of the relation between inputs and target (concept shift) stays for labels to show.

The loss model is a small random forest over an encoding that needs no sklearn to apply:
numeric features with their median for missing values, one indicator per seen category, and
the prediction. Trees are stored as plain arrays in the reference profile and run with numpy.
With them goes the loss model's own error on the rows it was fitted on, measured out of bag
(each row by the trees that did not see it), from which `mlops.regression.uncertainty` sizes
the estimate's interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlops.monitoring.profile import MISSING_CATEGORY

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


class LossModelError(BaseModel):
    """How far the loss model's predictions are from the losses they predict, on its reference rows.

    For each loss (absolute, squared): the mean squared out-of-bag deviation (loss - predicted
    loss); that sum over the sum of the squared predicted losses (the deviation's variance per
    unit of squared expected loss, which carries it to rows with larger or smaller errors); and
    the variance of the loss itself. The forest's level is the reference rows' mean loss (out of
    30 refits on fresh reference rows their level errors correlated 0.97), so the level is as
    uncertain as that mean: the loss's variance over the reference rows.
    `slope` is the reference rows' least-squares slope of the residual on the prediction, with
    its standard error: a model that shrinks its predictions leaves residuals that grow with
    them, which the target's variance (for r2) must count.
    """

    model_config = ConfigDict(extra="forbid")

    absolute_deviation: float
    absolute_relative: float
    absolute_variance: float
    squared_deviation: float
    squared_relative: float
    squared_variance: float
    slope: float
    slope_error: float


class LossModel(BaseModel):
    """Two forests, one for the absolute and one for the squared error, over a fixed encoding."""

    model_config = ConfigDict(extra="forbid")

    numeric: list[str]
    medians: list[float]
    categories: dict[str, list[str]]
    absolute: list[LossTree]
    squared: list[LossTree]
    reference_rows: int
    # None in profiles written before the error was recorded: their estimates carry no interval.
    error: LossModelError | None = None


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
    deviations: list[tuple[float, float]] = []
    for target in (np.abs(residual), residual**2):
        forest = RandomForestRegressor(
            n_estimators=LOSS_TREES,
            max_depth=LOSS_MAX_DEPTH,
            min_samples_leaf=LOSS_MIN_LEAF,
            random_state=seed,
            # Out-of-bag predictions leave the trees as they are (the bootstrap draws do not change).
            oob_score=True,
        )
        # The trees compare float32 features (as sklearn's do); applying them below does the same.
        forest.fit(x.astype(np.float32), target)
        forests.append(_trees(forest))
        deviations.append(_out_of_bag_deviation(forest, target))
    return LossModel(
        numeric=list(numeric),
        medians=medians,
        categories=categories,
        absolute=forests[0],
        squared=forests[1],
        reference_rows=int(residual.size),
        error=LossModelError(
            absolute_deviation=deviations[0][0],
            absolute_relative=deviations[0][1],
            absolute_variance=float(np.var(np.abs(residual), ddof=1)) if residual.size > 1 else 0.0,
            squared_deviation=deviations[1][0],
            squared_relative=deviations[1][1],
            squared_variance=float(np.var(residual**2, ddof=1)) if residual.size > 1 else 0.0,
            **dict(zip(("slope", "slope_error"), residual_slope(predicted, residual), strict=True)),
        ),
    )


def _out_of_bag_deviation(forest: Any, target: np.ndarray) -> tuple[float, float]:
    """Mean squared out-of-bag deviation, and its ratio to the mean squared out-of-bag prediction."""
    predicted = np.asarray(forest.oob_prediction_, dtype=np.float64)
    seen = np.isfinite(predicted)
    deviation = target[seen] - predicted[seen]
    squared = float(np.sum(predicted[seen] ** 2))
    mean_square = float(np.mean(deviation**2)) if deviation.size else 0.0
    return mean_square, float(np.sum(deviation**2)) / squared if squared > 0 else 0.0


def residual_slope(predicted: np.ndarray, residual: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of the residual on the prediction and its heteroscedasticity-robust
    (sandwich) standard error."""
    p = np.asarray(predicted, dtype=np.float64)
    r = np.asarray(residual, dtype=np.float64)
    centred = p - p.mean()
    spread = float(np.sum(centred**2))
    if r.size < 3 or spread <= 0:
        return 0.0, 0.0
    slope = float(np.sum(centred * (r - r.mean())) / spread)
    fitted = r - r.mean() - slope * centred
    return slope, float(np.sqrt(np.sum(centred**2 * fitted**2)) / spread)


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
