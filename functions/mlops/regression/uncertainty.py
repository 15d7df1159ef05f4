"""How sure the label-free estimate is, the r2 it implies, and whether labels contradict it.

The loss model (`mlops.regression.estimation`) gives each row an expected absolute error f and
an expected squared error g. A window's estimated MAE is the mean of f (MSE the mean of g, RMSE
its root); the realized MAE differs from it by the mean of the rows' deviations |r| - f, which
has two parts:

- the window's own rows: independent deviations, variance over n. Their variance per row is the
  loss model's out-of-bag mean squared deviation on its reference rows, carried to each row in
  proportion to its squared expected loss (a loss's spread grows with its size: for a normal
  residual, sd(|r|) = 0.76 E|r| and sd(r^2) = 1.41 E[r^2]), so windows of larger errors get wider
  intervals;
- the loss model's own level error: it learned the losses from N reference rows, and its level
  is their mean loss, as uncertain as any mean of N losses (the loss's variance over N). It does
  not shrink with the window, so large windows' intervals stop narrowing at it.

The two add up (they come from independent rows); the interval is normal on the mean loss, and
for RMSE the root of the MSE interval's ends.

r2 = 1 - SSE / SST needs SST, the window's target variance. Without labels, var(y) = var(p) +
var(r) + 2 cov(p, r): var(p) is known exactly, var(r) is the estimated MSE (the mean residual is
second order), and cov(p, r) is var(p) times the residual's slope on the prediction from the
reference rows (a model that shrinks its predictions leaves residuals rising with them: the pricing
model's slope is about 0.02, and ignoring it put the estimate 0.0016 below the realized r2 on
average, over a third of its standard error at 500 rows, against 0.0001 with it). Its interval
propagates the MSE's error and the covariance's (the window's own, from g, and the reference
slope's) by the delta method.

Concept shift: on labelled rows the realized loss and the estimate are compared row by row; their
mean deviation over its standard error (the labelled rows' own spread plus the loss model's level
error) beyond the two-sided `CONCEPT_SHIFT_ALPHA` quantile means the relation between inputs and
target changed. RMSE and r2 compare the squared error, MAE the absolute. The estimate's blind spot
is the check's too: rows shifted where the reference rows hardly reach carry errors the loss model
cannot follow, and a large covariate shift alone can then be flagged (see the monitoring notes
(docs/monitoring.md)).

Every figure comes from sums over rows (`LossSums`, `LabelledLossSums`), which add across hours,
so partial windows merge exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlops.regression.estimation import LossModel, expected_losses

CONFIDENCE = 0.95
# Two-sided false-alarm rate of the concept-shift check on a window where the concept holds.
CONCEPT_SHIFT_ALPHA = 0.01
_NORMAL = NormalDist()


def _z(confidence: float) -> float:
    return _NORMAL.inv_cdf(0.5 + confidence / 2)


class LossSums(BaseModel):
    """Sums over a window's predictions of what the estimate needs; windows merge by adding."""

    model_config = ConfigDict(extra="forbid")

    rows: int = 0
    absolute: float = 0.0  # sum of f, the expected absolute error
    absolute_square: float = 0.0  # sum of f^2
    squared: float = 0.0  # sum of g, the expected squared error
    squared_square: float = 0.0  # sum of g^2
    prediction: float = 0.0  # sum of p
    prediction_square: float = 0.0  # sum of p^2
    prediction_squared: float = 0.0  # sum of p g
    prediction_square_squared: float = 0.0  # sum of p^2 g

    @classmethod
    def of(
        cls, model: LossModel, columns: Mapping[str, Sequence[Any] | np.ndarray], predicted: np.ndarray
    ) -> LossSums:
        p = np.asarray(predicted, dtype=np.float64)
        if p.size == 0:
            return cls()
        return cls.from_losses(*expected_losses(model, columns, p), p)

    @classmethod
    def from_losses(cls, absolute: np.ndarray, squared: np.ndarray, predicted: np.ndarray) -> LossSums:
        """The sums of expected losses already computed (f, g) for the predictions p."""
        f, g, p = (np.asarray(a, dtype=np.float64) for a in (absolute, squared, predicted))
        if p.size == 0:
            return cls()
        return cls(
            rows=int(p.size),
            absolute=float(f.sum()),
            absolute_square=float((f * f).sum()),
            squared=float(g.sum()),
            squared_square=float((g * g).sum()),
            prediction=float(p.sum()),
            prediction_square=float((p * p).sum()),
            prediction_squared=float((p * g).sum()),
            prediction_square_squared=float((p * p * g).sum()),
        )

    def __add__(self, other: LossSums) -> LossSums:
        return LossSums(**{k: getattr(self, k) + getattr(other, k) for k in LossSums.model_fields})


class EstimatedMetric(BaseModel):
    """A label-free estimate with its standard error split by source, and its interval."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    rows: int
    value: float | None
    standard_error: float | None = None
    # The window's own rows, and the loss model's level error from its finite reference rows.
    window_error: float | None = None
    reference_error: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = CONFIDENCE


def _mean_loss(sums: LossSums, model: LossModel, squared: bool) -> tuple[float, float, float]:
    """Estimated mean loss, and the variances of its window and reference parts."""
    error = model.error
    assert error is not None
    n = sums.rows
    if squared:
        mean, square = sums.squared / n, sums.squared_square
        relative, level = error.squared_relative, error.squared_variance
    else:
        mean, square = sums.absolute / n, sums.absolute_square
        relative, level = error.absolute_relative, error.absolute_variance
    return mean, relative * square / (n * n), level / max(model.reference_rows, 1)


def estimate_metric(
    sums: LossSums, model: LossModel, metric: str, confidence: float = CONFIDENCE
) -> EstimatedMetric:
    """The label-free rmse, mae or r2 of a window with its interval (module docstring)."""
    n = sums.rows
    if n == 0:
        return EstimatedMetric(metric=metric, rows=0, value=None, confidence=confidence)
    mse = max(sums.squared / n, 0.0)
    if metric == "mae":
        value: float | None = sums.absolute / n
    elif metric == "rmse":
        value = float(np.sqrt(mse))
    else:
        value = _r2(sums, model)[0]
    if model.error is None or value is None:
        return EstimatedMetric(metric=metric, rows=n, value=value, confidence=confidence)
    z = _z(confidence)
    if metric == "r2":
        _, window_var, reference_var = _r2(sums, model)
        se = float(np.sqrt(window_var + reference_var))
        low, high = value - z * se, min(value + z * se, 1.0)
    else:
        mean, window_var, reference_var = _mean_loss(sums, model, squared=metric == "rmse")
        se = float(np.sqrt(window_var + reference_var))
        low, high = mean - z * se, mean + z * se
        if metric == "rmse":
            # The interval of the MSE, rooted; the standard errors by the delta method.
            low, high = float(np.sqrt(max(low, 0.0))), float(np.sqrt(max(high, 0.0)))
            scale = 1.0 / (2.0 * value) if value > 0 else 0.0
            se, window_var, reference_var = se * scale, window_var * scale**2, reference_var * scale**2
    return EstimatedMetric(
        metric=metric,
        rows=n,
        value=value,
        standard_error=se,
        window_error=float(np.sqrt(window_var)),
        reference_error=float(np.sqrt(reference_var)),
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
    )


def _r2(sums: LossSums, model: LossModel) -> tuple[float | None, float, float]:
    """Estimated r2 and the variances of its window and reference parts (delta method)."""
    n = sums.rows
    mean_p = sums.prediction / n
    var_p = max(sums.prediction_square / n - mean_p * mean_p, 0.0)
    mse = max(sums.squared / n, 0.0)
    error = model.error
    slope = error.slope if error is not None else 0.0
    # var(y) = var(p) + var(r) + 2 cov(p, r), cov(p, r) = slope var(p).
    explained = var_p * (1.0 + 2.0 * slope)
    total = explained + mse
    if total <= 0 or error is None:
        return (1.0 - mse / total if total > 0 else None), 0.0, 0.0
    _, mse_window, mse_reference = _mean_loss(sums, model, squared=True)
    # The window's cov(p, r) is a mean of (p - mean p) r: variance sum((p - mean p)^2 g) / n^2.
    centred = sums.prediction_square_squared - 2 * mean_p * sums.prediction_squared + mean_p**2 * sums.squared
    cov_window = max(centred, 0.0) / (n * n)
    cov_reference = (var_p * error.slope_error) ** 2
    d_mse, d_cov = explained / total**2, 2.0 * mse / total**2
    window = d_mse**2 * mse_window + d_cov**2 * cov_window
    reference = d_mse**2 * mse_reference + d_cov**2 * cov_reference
    return 1.0 - mse / total, window, reference


# -- concept shift ---------------------------------------------------------------------------------


class LabelledLossSums(BaseModel):
    """Sums over a window's labelled predictions: realized losses and their deviations from the
    loss model's expectation (absolute: |r| - f, squared: r^2 - g). Windows merge by adding."""

    model_config = ConfigDict(extra="forbid")

    rows: int = 0
    absolute: float = 0.0
    squared: float = 0.0
    absolute_deviation: float = 0.0
    absolute_deviation_square: float = 0.0
    squared_deviation: float = 0.0
    squared_deviation_square: float = 0.0

    @classmethod
    def of(
        cls,
        model: LossModel,
        columns: Mapping[str, Sequence[Any] | np.ndarray],
        predicted: np.ndarray,
        y_true: np.ndarray,
    ) -> LabelledLossSums:
        p = np.asarray(predicted, dtype=np.float64)
        if p.size == 0:
            return cls()
        return cls.from_losses(*expected_losses(model, columns, p), p, y_true)

    @classmethod
    def from_losses(
        cls, absolute: np.ndarray, squared: np.ndarray, predicted: np.ndarray, y_true: np.ndarray
    ) -> LabelledLossSums:
        """The sums for labelled predictions whose expected losses (f, g) were stored with them."""
        f, g, p = (np.asarray(a, dtype=np.float64) for a in (absolute, squared, predicted))
        if p.size == 0:
            return cls()
        residual = np.asarray(y_true, dtype=np.float64) - p
        da, ds = np.abs(residual) - f, residual**2 - g
        return cls(
            rows=int(p.size),
            absolute=float(np.abs(residual).sum()),
            squared=float((residual**2).sum()),
            absolute_deviation=float(da.sum()),
            absolute_deviation_square=float((da * da).sum()),
            squared_deviation=float(ds.sum()),
            squared_deviation_square=float((ds * ds).sum()),
        )

    def __add__(self, other: LabelledLossSums) -> LabelledLossSums:
        return LabelledLossSums(
            **{k: getattr(self, k) + getattr(other, k) for k in LabelledLossSums.model_fields}
        )


class RegressionConceptShift(BaseModel):
    """Realized against label-free estimated error on the same labelled predictions."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    label_count: int
    realized: float
    estimated: float
    # Realized minus estimated mean loss (MAE for mae, MSE for rmse and r2), its standard error
    # (labelled rows and the loss model's level error), and that difference in standard errors.
    difference: float
    standard_error: float
    z: float
    z_limit: float
    p_value: float
    suspected: bool
    note: str


def concept_shift_check(
    sums: LabelledLossSums,
    model: LossModel,
    primary: str,
    min_labels: int,
    alpha: float = CONCEPT_SHIFT_ALPHA,
) -> RegressionConceptShift | None:
    """Concept shift is suspected when the labelled rows' errors differ from what the loss model
    expects of the same rows by more than chance allows (module docstring). None below
    `min_labels` labels or without the loss model's recorded error."""
    n = sums.rows
    if n < max(min_labels, 2) or model.error is None:
        return None
    squared = primary != "mae"
    if squared:
        total, square = sums.squared_deviation, sums.squared_deviation_square
        reference = model.error.squared_variance
        realized = float(np.sqrt(sums.squared / n))
        estimated = float(np.sqrt(max((sums.squared - total) / n, 0.0)))
        metric = "rmse"
    else:
        total, square = sums.absolute_deviation, sums.absolute_deviation_square
        reference = model.error.absolute_variance
        realized, estimated, metric = sums.absolute / n, (sums.absolute - total) / n, "mae"
    mean = total / n
    window_var = max(square - n * mean * mean, 0.0) / (n - 1) / n
    se = float(np.sqrt(window_var + reference / max(model.reference_rows, 1)))
    z = mean / se if se > 0 else 0.0
    limit = _NORMAL.inv_cdf(1 - alpha / 2)
    p_value = 2 * (1 - _NORMAL.cdf(abs(z)))
    suspected = abs(z) > limit
    what = "squared" if squared else "absolute"
    if suspected:
        note = (
            f"realized {metric} {realized:.4g} and its label-free estimate {estimated:.4g} on the same "
            f"{n} labelled predictions differ by {z:+.1f} standard errors of the mean {what} error "
            f"(limit ±{limit:.2f}): concept shift suspected. The relation between inputs and target "
            "changed, which the estimate cannot see; trust the labels"
        )
    else:
        note = f"realized and estimated {metric} agree ({z:+.1f} standard errors, limit ±{limit:.2f})"
    return RegressionConceptShift(
        metric=metric,
        label_count=n,
        realized=realized,
        estimated=estimated,
        difference=mean,
        standard_error=se,
        z=float(z),
        z_limit=limit,
        p_value=float(p_value),
        suspected=suspected,
        note=note,
    )
