"""The model spec: one TOML file that describes a model, validated by pydantic.

It is the single source of truth for the feature schema, the primary metric and the
thresholds used by training, serving, monitoring, alarms and the CDK stack alike.
"""

from __future__ import annotations

import json
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlops.errors import SpecError

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]{0,62}$"


class Task(StrEnum):
    BINARY_CLASSIFICATION = "binary_classification"
    # Regression is planned: metrics, gate and drift code branch on the task.


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class EstimatorKind(StrEnum):
    LOGISTIC_REGRESSION = "logistic_regression"
    GRADIENT_BOOSTING = "gradient_boosting"
    RANDOM_FOREST = "random_forest"


class PrimaryMetric(StrEnum):
    ROC_AUC = "roc_auc"
    ACCURACY = "accuracy"
    F1 = "f1"
    PRECISION = "precision"
    RECALL = "recall"
    AVERAGE_PRECISION = "average_precision"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Feature(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    kind: FeatureKind
    description: str = ""
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None

    @model_validator(mode="after")
    def _check_kind_fields(self) -> Feature:
        if self.kind is FeatureKind.NUMERIC and self.categories is not None:
            raise ValueError("'categories' is only allowed on categorical features")
        if self.kind is FeatureKind.CATEGORICAL and (self.min is not None or self.max is not None):
            raise ValueError("'min'/'max' are only allowed on numeric features")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise ValueError("'categories' has duplicates")
        return self


class Estimator(_Strict):
    kind: EstimatorKind = EstimatorKind.LOGISTIC_REGRESSION
    params: dict[str, Any] = Field(default_factory=dict)


class Split(_Strict):
    test_size: Annotated[float, Field(gt=0.05, lt=0.8)] = 0.25
    seed: int = 42
    min_rows: Annotated[int, Field(ge=20)] = 200


class Monitoring(_Strict):
    """Thresholds for drift and performance alarms. Defaults and their reasoning: docs in README."""

    schedule: str = "rate(1 hour)"
    window_hours: Annotated[int, Field(ge=1, le=24 * 31)] = 24
    max_metric_gap: Annotated[float, Field(gt=0, lt=1)] = 0.05
    max_estimated_metric_gap: Annotated[float, Field(gt=0, lt=1)] = 0.05
    min_labels: Annotated[int, Field(ge=10)] = 200
    psi_warning: Annotated[float, Field(gt=0)] = 0.1
    psi_drift: Annotated[float, Field(gt=0)] = 0.25
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.3
    min_feature_count: Annotated[int, Field(ge=10)] = 100
    max_fairness_gap: Annotated[float, Field(gt=0, le=1)] = 0.2
    p_value: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    # An absolute production floor (SLO) of the primary metric, alarmed on its own; none by default.
    min_production_metric: Annotated[float, Field(gt=0, lt=1)] | None = None
    # The significance-aware performance alarm (MetricDrop): from this many labels in a window, a
    # loss whose one-sided p-value is below `drop_alpha` breaches, however small the point gap.
    significance_min_labels: Annotated[int, Field(ge=100)] = 5000
    drop_alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.025
    # Per-feature weights (e.g. normalised importance, 0..1) for the FeatureDrift alarm; absent = 1.
    feature_weights: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bands(self) -> Monitoring:
        if self.psi_warning >= self.psi_drift:
            raise ValueError("psi_warning must be below psi_drift")
        return self


class Retraining(_Strict):
    schedule: str = "rate(7 days)"
    auto_promote: bool = False
    cooldown_minutes: Annotated[int, Field(ge=0)] = 60
    production_window_days: Annotated[int, Field(ge=1)] = 30
    max_production_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    min_primary_metric: Annotated[float, Field(ge=0, le=1)] = 0.6
    max_regression: Annotated[float, Field(ge=0, lt=1)] = 0.01
    max_brier: Annotated[float, Field(gt=0, le=1)] = 0.25
    max_latency_ms: Annotated[float, Field(gt=0)] = 5.0
    min_training_rows: Annotated[int, Field(ge=20)] = 500
    min_production_labels: Annotated[int, Field(ge=0)] = 200
    # While a retraining alarm holds, failed attempts are retried after the cooldown, doubling
    # up to this bound; people are told after this many failed attempts (and every as many after).
    max_backoff_minutes: Annotated[int, Field(ge=1)] = 24 * 60
    notify_after_attempts: Annotated[int, Field(ge=1)] = 3
    # Under a performance alarm the old data describe a world that is gone: production rows then
    # carry this share of the training weight.
    alarm_production_share: Annotated[float, Field(gt=0, le=1)] = 0.9
    # Under a performance alarm a candidate may lose on the original test set what the champion
    # lost on recent traffic plus this margin; more is a collapse.
    max_original_test_drop: Annotated[float, Field(ge=0, lt=1)] = 0.1


class ModelSpec(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    task: Task = Task.BINARY_CLASSIFICATION
    target: str
    id_column: str | None = None
    positive_label: int = 1
    primary_metric: PrimaryMetric = PrimaryMetric.ROC_AUC
    features: Annotated[list[Feature], Field(min_length=1)]
    sensitive_attributes: list[str] = Field(default_factory=list)
    training_data: str | None = None
    estimator: Estimator = Field(default_factory=Estimator)
    split: Split = Field(default_factory=Split)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    retraining: Retraining = Field(default_factory=Retraining)

    @model_validator(mode="after")
    def _check_columns(self) -> ModelSpec:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {', '.join(dupes)}")
        if self.target in names:
            raise ValueError(f"target '{self.target}' is also listed as a feature")
        if self.id_column is not None and self.id_column in names:
            raise ValueError(f"id_column '{self.id_column}' is also listed as a feature")
        unknown = [a for a in self.sensitive_attributes if a not in names]
        if unknown:
            raise ValueError(f"sensitive_attributes not among features: {', '.join(unknown)}")
        weighted = sorted(set(self.monitoring.feature_weights) - set(names))
        if weighted:
            raise ValueError(f"monitoring.feature_weights names unknown features: {', '.join(weighted)}")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind is FeatureKind.NUMERIC]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind is FeatureKind.CATEGORICAL]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def _format_validation_error(source: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        parts.append(f"{loc}: {e['msg']}")
    return f"{source}: " + "; ".join(parts)


def parse_spec(data: dict[str, Any], source: str = "spec") -> ModelSpec:
    """Validate a spec mapping; errors name the key and the problem."""
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(_format_validation_error(source, err)) from None


def load_spec(path: str | Path) -> ModelSpec:
    """Read a TOML (or JSON) spec file."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: spec file not found")
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise SpecError(f"{p}: not valid {p.suffix.lstrip('.') or 'TOML'}: {err}") from None
    spec = parse_spec(data, source=str(p))
    if spec.training_data and not spec.training_data.startswith("s3://"):
        # Relative data paths are relative to the spec file, so examples work from any cwd.
        data_path = (p.parent / spec.training_data).resolve()
        spec = spec.model_copy(update={"training_data": str(data_path)})
    return spec


def spec_from_json(text: str) -> ModelSpec:
    return parse_spec(json.loads(text), source="stored spec")
