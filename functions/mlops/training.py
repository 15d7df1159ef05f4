"""Train a model from a DataFrame and a spec: the one training path for CLI, retraining and demo.

The fitted object is one sklearn `Pipeline` (preprocessing + estimator), so serving
never re-implements preprocessing: it runs this pipeline's ONNX export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops.errors import DataError, SpecError
from mlops.evaluation import classification_metrics, group_metrics
from mlops.monitoring.significance import reference_metric
from mlops.profile import (
    FINE_BINS,
    MISSING_CATEGORY,
    ReferenceProfile,
    build_dataset_profile,
    numeric_histogram,
    quantile_edges,
)
from mlops.schema import FeatureSchema, schema_from_spec
from mlops.spec import EstimatorKind, ModelSpec

MIN_CLASS_EXAMPLES = 10
MISSING_FILL = "__missing__"


def load_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, with a one-line error for anything unreadable."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: data file not found")
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(p, keep_default_na=True)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
    except Exception as err:
        raise DataError(f"{p}: cannot read {suffix.lstrip('.')} file: {err}") from None
    raise DataError(f"{p}: unsupported data format '{suffix}' (use .csv or .parquet)")


def feature_frame(data: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Features in the canonical encoding the pipeline is fitted on.

    Numeric columns become float64 (NaN = missing); categorical columns become strings
    with "" for missing, matching what `mlops.schema.encode_rows` feeds the ONNX model.
    """
    missing = [c for c in spec.feature_names if c not in data.columns]
    if missing:
        raise DataError(f"data is missing feature column(s): {', '.join(missing)}")
    out = {}
    for name in spec.numeric_features:
        raw = data[name]
        coerced = pd.to_numeric(raw, errors="coerce").astype("float64")
        bad = coerced.isna() & raw.notna()
        if bad.any():
            example = raw[bad].iloc[0]
            raise DataError(f"numeric feature '{name}' has non-numeric values, e.g. {example!r}")
        out[name] = coerced.to_numpy()
    for name in spec.categorical_features:
        values = data[name].astype("object").to_numpy()
        out[name] = np.array(
            [
                MISSING_CATEGORY if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v)
                for v in values
            ],
            dtype=object,
        )
    return pd.DataFrame(out, index=data.index)[spec.feature_names]


def rows_frame(rows: Sequence[Mapping[str, Any]], spec: ModelSpec) -> pd.DataFrame:
    """A DataFrame of JSON-like rows (None = missing), canonically encoded."""
    data = pd.DataFrame.from_records(list(rows), columns=spec.feature_names)
    for name in spec.numeric_features:
        data[name] = pd.to_numeric(data[name], errors="coerce")
    return feature_frame(data, spec)


def frame_rows(features: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-like rows of a feature frame: NaN and "" become None, as a client would send them."""
    records = features.astype(object).where(features.notna(), None).to_dict("records")
    return [{k: (None if v == MISSING_CATEGORY else v) for k, v in r.items()} for r in records]


def labels(data: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    if spec.target not in data.columns:
        raise DataError(f"data has no target column '{spec.target}'")
    target = data[spec.target]
    if target.isna().any():
        raise DataError(f"target '{spec.target}' has {int(target.isna().sum())} missing value(s)")
    values = set(pd.unique(target).tolist())
    allowed = {0, 1}
    if not values <= allowed:
        bad = sorted(map(str, values - allowed))[:5]
        raise DataError(f"target '{spec.target}' must be 0/1, found {', '.join(bad)}")
    y = (target.astype(int) == spec.positive_label).astype(int).to_numpy()
    for cls in (0, 1):
        count = int((y == cls).sum())
        if count == 0:
            raise DataError(f"target '{spec.target}' has no examples of class {cls}")
        if count < MIN_CLASS_EXAMPLES:
            raise DataError(
                f"target '{spec.target}' has only {count} example(s) of class {cls} "
                f"(need {MIN_CLASS_EXAMPLES})"
            )
    return y


def build_pipeline(spec: ModelSpec) -> Pipeline:
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if spec.estimator.kind is EstimatorKind.LOGISTIC_REGRESSION:
        numeric_steps.append(("scale", StandardScaler()))
    # Trees need no scaling, and without it their float32 export splits exactly where sklearn
    # does (sklearn's trees cast inputs to float32 too); a float32 scaler would move thresholds.
    numeric = Pipeline(numeric_steps)
    categorical = Pipeline(
        [
            (
                "impute",
                SimpleImputer(missing_values=MISSING_CATEGORY, strategy="constant", fill_value=MISSING_FILL),
            ),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    transformers: list[tuple[str, Any, list[str]]] = []
    if spec.numeric_features:
        transformers.append(("numeric", numeric, spec.numeric_features))
    if spec.categorical_features:
        transformers.append(("categorical", categorical, spec.categorical_features))
    pre = ColumnTransformer(transformers)
    return Pipeline([("preprocess", pre), ("estimator", build_estimator(spec))])


def build_estimator(spec: ModelSpec) -> Any:
    kind, params, seed = spec.estimator.kind, dict(spec.estimator.params), spec.split.seed
    estimator: Any
    if kind is EstimatorKind.LOGISTIC_REGRESSION:
        estimator = LogisticRegression(max_iter=2000)
    elif kind is EstimatorKind.GRADIENT_BOOSTING:
        estimator = GradientBoostingClassifier(random_state=seed)
    else:
        estimator = RandomForestClassifier(random_state=seed, n_jobs=1)
    valid = estimator.get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise SpecError(f"estimator.params: {kind.value} has no parameter(s) {', '.join(unknown)}")
    try:
        estimator.set_params(**params)
    except (TypeError, ValueError) as err:
        raise SpecError(f"estimator.params: {err}") from None
    return estimator


@dataclass
class TrainingResult:
    spec: ModelSpec
    pipeline: Pipeline
    schema: FeatureSchema
    profile: ReferenceProfile
    test_metrics: dict[str, float | None]
    group_metrics: dict[str, Any]
    train_rows: int
    test_rows: int
    test_features: pd.DataFrame
    test_labels: np.ndarray
    test_scores: np.ndarray
    estimator_params: dict[str, Any] = field(default_factory=dict)


def train_model(
    data: pd.DataFrame,
    spec: ModelSpec,
    sample_weight: np.ndarray | None = None,
    test_data: pd.DataFrame | None = None,
) -> TrainingResult:
    """Fit, evaluate on held-out rows, and profile. Deterministic for a seed.

    Without `test_data` the held-out rows are a stratified split of `data`; retraining passes
    recent production rows instead, so the recorded test metrics describe the traffic the
    model will face (monitoring compares production against them).
    """
    if len(data) < spec.split.min_rows:
        raise DataError(
            f"data has {len(data)} row(s); at least {spec.split.min_rows} are needed (split.min_rows)"
        )
    y = labels(data, spec)
    features = feature_frame(data, spec)
    weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != y.shape:
        raise DataError("sample_weight must have one weight per row")
    if test_data is None:
        x_train, x_test, y_train, y_test, w_train, _ = train_test_split(
            features,
            y,
            weights,
            test_size=spec.split.test_size,
            random_state=spec.split.seed,
            stratify=y,
        )
    else:
        x_train, y_train, w_train = features, y, weights
        x_test, y_test = feature_frame(test_data, spec), labels(test_data, spec)
    pipeline = build_pipeline(spec)
    try:
        if sample_weight is None:
            pipeline.fit(x_train, y_train)
        else:
            pipeline.fit(x_train, y_train, estimator__sample_weight=w_train)
    except ValueError as err:
        raise DataError(f"training failed: {err}") from None
    scores = pipeline.predict_proba(x_test)[:, 1]
    metrics = classification_metrics(y_test, scores)
    groups = group_metrics({a: x_test[a].to_numpy() for a in spec.sensitive_attributes}, y_test, scores)

    columns = {c: x_train[c].to_numpy() for c in spec.feature_names}
    dataset = build_dataset_profile(columns, spec.numeric_features, spec.categorical_features)
    seen = {c: sorted(dataset.categorical[c].counts) for c in spec.categorical_features}
    profile = ReferenceProfile(
        features=dataset,
        scores=numeric_histogram(scores, quantile_edges(scores, FINE_BINS)),
        test_metrics=metrics,
        positive_rate=float(y_train.mean()),
        seen_categories=seen,
        reference_metric=reference_metric(
            y_test,
            scores,
            spec.primary_metric.value,
            source="held-out split of the training data" if test_data is None else "given test rows",
        ),
    )
    estimator = pipeline.named_steps["estimator"]
    params = {
        k: v for k, v in estimator.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))
    }
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
        test_scores=scores,
        estimator_params=params,
    )
