"""Training a regression version: the numeric target, the regressors, and the reference profile.

`mlops.model.training.train_model` hands regression specs here, so the CLI, retraining and the demo
keep one entry point; the preprocessing is the same `build_pipeline` as for classification.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import train_test_split

from mlops.model.schema import schema_from_spec
from mlops.model.spec import EstimatorKind, ModelSpec
from mlops.monitoring.profile import FINE_BINS, build_dataset_profile, numeric_histogram, quantile_edges
from mlops.regression.estimation import fit_loss_model
from mlops.regression.metrics import group_error_metrics, metric_interval, regression_metrics
from mlops.regression.profile import RegressionProfile
from mlops.shared.errors import DataError

if TYPE_CHECKING:
    from mlops.model.training import TrainingResult

MIN_DISTINCT_TARGETS = 2


def regressor(kind: EstimatorKind, seed: int) -> Any:
    if kind is EstimatorKind.LINEAR_REGRESSION:
        return LinearRegression()
    if kind is EstimatorKind.RIDGE:
        return Ridge(alpha=1.0)
    if kind is EstimatorKind.GRADIENT_BOOSTING:
        return GradientBoostingRegressor(random_state=seed)
    if kind is EstimatorKind.RANDOM_FOREST:
        return RandomForestRegressor(random_state=seed, n_jobs=1, n_estimators=100)
    raise DataError(f"estimator {kind.value!r} is not a regressor")


def numeric_target(data: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The target as float64, refusing missing, non-numeric, infinite and out-of-range values."""
    if spec.target not in data.columns:
        raise DataError(f"data has no target column {spec.target!r}")
    raw = data[spec.target]
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        raw = raw.astype("object").map(lambda v: v.strip() if isinstance(v, str) else v).replace("", None)
    if raw.isna().any():
        raise DataError(f"target {spec.target!r} has {int(raw.isna().sum())} missing value(s)")
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna()
    if bad.any():
        raise DataError(f"target {spec.target!r} has non-numeric values, e.g. {raw[bad].iloc[0]!r}")
    y = values.to_numpy(dtype=np.float64)
    if not np.isfinite(y).all():
        raise DataError(f"target {spec.target!r} has infinite values")
    settings = spec.regression_settings
    low, high = settings.target_min, settings.target_max
    outside = np.zeros(y.size, dtype=bool)
    if low is not None:
        outside |= y < low
    if high is not None:
        outside |= y > high
    if outside.any():
        raise DataError(
            f"target {spec.target!r} has {int(outside.sum())} value(s) outside the spec's range "
            f"[{low}, {high}], e.g. {float(y[outside][0])!r}"
        )
    if np.unique(y).size < MIN_DISTINCT_TARGETS:
        raise DataError(f"target {spec.target!r} holds one value only: nothing to learn")
    return y


def train_regression(
    data: pd.DataFrame,
    spec: ModelSpec,
    sample_weight: np.ndarray | None = None,
    test_data: pd.DataFrame | None = None,
) -> TrainingResult:
    """Fit, evaluate on held-out rows, and profile (see `mlops.model.training.train_model`)."""
    from mlops.model.training import TrainingResult, build_pipeline, estimator_params, feature_frame

    if len(data) < spec.split.min_rows:
        raise DataError(
            f"data has {len(data)} row(s); at least {spec.split.min_rows} are needed (split.min_rows)"
        )
    y = numeric_target(data, spec)
    features = feature_frame(data, spec)
    weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != y.shape:
        raise DataError("sample_weight must have one weight per row")
    if test_data is None:
        x_train, x_test, y_train, y_test, w_train, _ = train_test_split(
            features, y, weights, test_size=spec.split.test_size, random_state=spec.split.seed
        )
    else:
        x_train, y_train, w_train = features, y, weights
        x_test, y_test = feature_frame(test_data, spec), numeric_target(test_data, spec)
    pipeline = build_pipeline(spec)
    try:
        if sample_weight is None:
            pipeline.fit(x_train, y_train)
        else:
            pipeline.fit(x_train, y_train, estimator__sample_weight=w_train)
    except ValueError as err:
        raise DataError(f"training failed: {err}") from None
    predicted = np.asarray(pipeline.predict(x_test), dtype=np.float64)
    metrics = regression_metrics(y_test, predicted)
    groups = group_error_metrics(
        {a: x_test[a].to_numpy() for a in spec.sensitive_attributes}, y_test, predicted
    )
    columns = {c: x_train[c].to_numpy() for c in spec.feature_names}
    dataset = build_dataset_profile(columns, spec.numeric_features, spec.categorical_features)
    seen = {c: sorted(dataset.categorical[c].counts) for c in spec.categorical_features}
    residuals = y_test - predicted
    source = "held-out split of the training data" if test_data is None else "given test rows"
    profile = RegressionProfile(
        features=dataset,
        predictions=numeric_histogram(predicted, quantile_edges(predicted, FINE_BINS)),
        targets=numeric_histogram(y_test, quantile_edges(y_test, FINE_BINS)),
        residuals=numeric_histogram(residuals, quantile_edges(residuals, FINE_BINS)),
        training_targets=numeric_histogram(y_train, quantile_edges(y_train, FINE_BINS)),
        test_metrics=metrics,
        seen_categories=seen,
        reference_metric=metric_interval(
            y_test, predicted, spec.primary_metric.value, seed=spec.split.seed, source=source
        ),
        loss_model=fit_loss_model(
            {c: x_test[c].to_numpy() for c in spec.feature_names},
            spec.numeric_features,
            spec.categorical_features,
            y_test,
            predicted,
            seed=spec.split.seed,
        ),
    )
    return TrainingResult(
        spec=spec,
        pipeline=pipeline,
        schema=schema_from_spec(spec, seen),
        profile=profile,
        test_metrics=metrics,
        group_metrics=groups,
        train_rows=len(x_train),
        test_rows=len(x_test),
        test_features=x_test,
        test_labels=y_test,
        test_scores=predicted,
        estimator_params=estimator_params(pipeline),
    )
