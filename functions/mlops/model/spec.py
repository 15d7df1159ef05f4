"""The model spec: one TOML file that describes a model, validated by pydantic.

It is the single source of truth for the feature schema, the primary metric and the
thresholds used by training, serving, monitoring, alarms and the CDK stack alike.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops.model.canonical import canonical_category
from mlops.model.kinds import EstimatorKind, FeatureKind, PrimaryMetric, Task
from mlops.shared.errors import SpecError

# The model name becomes part of AWS resource names, hence the narrow alphabet.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]{0,62}$"
_MODEL_NAME = re.compile(NAME_PATTERN)
MAX_COLUMN_NAME_LENGTH = 128


def _model_name(name: str) -> str:
    if not _MODEL_NAME.fullmatch(name):
        raise ValueError(
            "must start with a letter and hold only letters, digits, '_' and '-' (at most 63 characters)"
        )
    return name


def _column_name(name: str) -> str:
    """Column names are kept as given; only what no consumer of them can carry is refused."""
    if not name.strip():
        raise ValueError("a column name needs at least one visible character")
    if len(name) > MAX_COLUMN_NAME_LENGTH:
        raise ValueError(f"longer than {MAX_COLUMN_NAME_LENGTH} characters")
    odd = sorted({c for c in name if not " " <= c <= "~"})
    if odd:
        # Feature names are CloudWatch dimension values, which must be printable ASCII.
        shown = ", ".join(repr(c) for c in odd[:5])
        raise ValueError(f"has {shown}: use printable ASCII (letters, digits, spaces, punctuation)")
    return name


ModelName = Annotated[str, AfterValidator(_model_name)]
ColumnName = Annotated[str, AfterValidator(_column_name)]


class _Strict(BaseModel):
    # Strict: "0.05" is not a float and 1.0 is not an int; a spec says what it means. Built on
    # first use: a module that imports the spec without reading one pays no schema build.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


class Feature(_Strict):
    name: ColumnName
    kind: Annotated[FeatureKind, Field(strict=False)]
    description: str = ""
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None

    @field_validator("categories", mode="before")
    @classmethod
    def _canonical_categories(cls, value: Any) -> Any:
        # The categories are stored in the canonical form serving compares against: 21 -> "21".
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if isinstance(item, (str, int, float, bool)):
                text = canonical_category(item)
                if text is None:
                    raise ValueError("a category cannot be empty")
                out.append(text)
            else:
                out.append(item)
        return out

    @model_validator(mode="after")
    def _check_kind_fields(self) -> Feature:
        if self.kind is not FeatureKind.CATEGORICAL and self.categories is not None:
            raise ValueError("'categories' is only allowed on categorical features")
        if self.kind is not FeatureKind.NUMERIC and (self.min is not None or self.max is not None):
            raise ValueError("'min'/'max' are only allowed on numeric features")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise ValueError("'categories' has duplicates")
        return self


class Estimator(_Strict):
    kind: Annotated[EstimatorKind, Field(strict=False)] = EstimatorKind.LOGISTIC_REGRESSION
    params: dict[str, Any] = Field(default_factory=dict)


class Split(_Strict):
    test_size: Annotated[float, Field(gt=0.05, lt=0.8)] = 0.25
    seed: int = 42
    min_rows: Annotated[int, Field(ge=20)] = 200


class Monitoring(_Strict):
    """Thresholds for drift and performance alarms. Defaults and their reasoning: docs in README."""

    schedule: str = "rate(1 hour)"
    window_hours: Annotated[int, Field(ge=1, le=24 * 31)] = 24
    # The monitor function's memory in MB (Lambda gives CPU in proportion to it). A run holds the
    # rows of each hour it profiles or a late label reaches. At 1,000 requests/s (3.6 million
    # predictions an hour) the Python objects of a run over a new hour peaked at 1.56 GB, and reading
    # back one earlier hour for a late label at 0.82 GB: give such a model 4096.
    memory_mb: Annotated[int, Field(ge=1024, le=10240)] = 2048
    max_metric_gap: Annotated[float, Field(gt=0, lt=1)] = 0.05
    # None: the limit comes from the test set's chunk-to-chunk variability at each window's size.
    max_estimated_metric_gap: Annotated[float | None, Field(gt=0, lt=1)] = None
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


class Regression(_Strict):
    """What only a regression model needs; numbers are in the target's units unless said otherwise."""

    # The range a true target can take (e.g. a price is never negative); feedback outside it is refused.
    target_min: float | None = None
    target_max: float | None = None
    # Largest |ONNX - sklearn| prediction difference a version may register with.
    parity_tolerance: Annotated[float, Field(gt=0)] = 1e-3
    # Production error above the reference error by more than this share of it breaches
    # (for r2: an absolute drop of this much).
    max_error_increase: Annotated[float, Field(gt=0, lt=10)] = 0.1

    @model_validator(mode="after")
    def _range(self) -> Regression:
        if self.target_min is not None and self.target_max is not None and self.target_min >= self.target_max:
            raise ValueError(f"target_min ({self.target_min}) must be below target_max ({self.target_max})")
        return self


TASK_METRICS: dict[Task, frozenset[PrimaryMetric]] = {
    Task.BINARY_CLASSIFICATION: frozenset(PrimaryMetric)
    - {PrimaryMetric.RMSE, PrimaryMetric.MAE, PrimaryMetric.R2},
    Task.REGRESSION: frozenset({PrimaryMetric.RMSE, PrimaryMetric.MAE, PrimaryMetric.R2}),
}
TASK_ESTIMATORS: dict[Task, frozenset[EstimatorKind]] = {
    Task.BINARY_CLASSIFICATION: frozenset(
        {EstimatorKind.LOGISTIC_REGRESSION, EstimatorKind.GRADIENT_BOOSTING, EstimatorKind.RANDOM_FOREST}
    ),
    Task.REGRESSION: frozenset(
        {
            EstimatorKind.LINEAR_REGRESSION,
            EstimatorKind.RIDGE,
            EstimatorKind.GRADIENT_BOOSTING,
            EstimatorKind.RANDOM_FOREST,
        }
    ),
}
# What a regression spec gets when it names no metric or estimator.
REGRESSION_DEFAULTS = {"primary_metric": PrimaryMetric.RMSE.value, "estimator": EstimatorKind.RIDGE.value}


def _regression_defaults(data: Any) -> Any:
    if not isinstance(data, dict) or data.get("task") != Task.REGRESSION.value:
        return data
    data = dict(data)
    data.setdefault("primary_metric", REGRESSION_DEFAULTS["primary_metric"])
    estimator = data.get("estimator", {})
    if isinstance(estimator, dict) and "kind" not in estimator:
        data["estimator"] = {**estimator, "kind": REGRESSION_DEFAULTS["estimator"]}
    data.setdefault("regression", {})
    return data


def _sorted_values(items: frozenset[Any]) -> str:
    return ", ".join(sorted(i.value for i in items))


class ModelSpec(_Strict):
    name: ModelName
    task: Annotated[Task, Field(strict=False)] = Task.BINARY_CLASSIFICATION
    target: ColumnName
    id_column: ColumnName | None = None
    # The target value that is the positive class ("malignant", "yes", 1); without it the
    # target must be 0/1 (or true/false) and 1 is positive. Compared in canonical form.
    positive_label: str | int | bool | None = None
    primary_metric: Annotated[PrimaryMetric, Field(strict=False)] = PrimaryMetric.ROC_AUC
    features: Annotated[list[Feature], Field(min_length=1)]
    sensitive_attributes: list[str] = Field(default_factory=list)
    training_data: str | None = None
    estimator: Estimator = Field(default_factory=Estimator)
    split: Split = Field(default_factory=Split)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    retraining: Retraining = Field(default_factory=Retraining)
    # Present exactly when task = "regression" (filled with defaults when the table is absent).
    regression: Regression | None = None

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, data: Any) -> Any:
        return _regression_defaults(data)

    @model_validator(mode="after")
    def _check_task(self) -> ModelSpec:
        if self.primary_metric not in TASK_METRICS[self.task]:
            raise ValueError(
                f"primary_metric {self.primary_metric.value!r} is not a {self.task.value} metric; "
                f"use one of {_sorted_values(TASK_METRICS[self.task])}"
            )
        if self.estimator.kind not in TASK_ESTIMATORS[self.task]:
            raise ValueError(
                f"estimator.kind {self.estimator.kind.value!r} does not fit {self.task.value}; "
                f"use one of {_sorted_values(TASK_ESTIMATORS[self.task])}"
            )
        if self.task is Task.REGRESSION and self.positive_label is not None:
            raise ValueError("positive_label is for classification; a regression target is a number")
        if self.task is not Task.REGRESSION and self.regression is not None:
            raise ValueError('the [regression] table needs task = "regression"')
        return self

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
        columns = [*names, self.target, *([self.id_column] if self.id_column else [])]
        by_case: dict[str, set[str]] = {}
        for c in columns:
            by_case.setdefault(c.lower(), set()).add(c)
        clashes = sorted(
            ", ".join(f"'{n}'" for n in sorted(group)) for group in by_case.values() if len(group) > 1
        )
        if clashes:
            # The prediction log's Athena table matches JSON keys without regard to case.
            raise ValueError(f"column names that differ only in case: {'; '.join(clashes)}")
        if self.positive_label is not None and canonical_category(self.positive_label) is None:
            raise ValueError("positive_label cannot be empty")
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
        """Features the model sees as categories: categorical and boolean ones."""
        return [f.name for f in self.features if f.kind is not FeatureKind.NUMERIC]

    @property
    def boolean_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind is FeatureKind.BOOLEAN]

    @property
    def positive_class(self) -> str | None:
        """The canonical text of `positive_label`, or None when the target is 0/1."""
        return None if self.positive_label is None else canonical_category(self.positive_label)

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def regression_settings(self) -> Regression:
        """The regression table of a regression spec (refused on any other task)."""
        if self.regression is None:
            raise SpecError(f"{self.name} is a {self.task.value} model, not a regression one")
        return self.regression

    def to_json(self) -> str:
        # A classification spec is stored without the regression key, as before regression existed.
        return self.model_dump_json(indent=2, exclude={"regression"} if self.regression is None else None)


def _where(loc: tuple[Any, ...], data: Any) -> str:
    """Where an error is, naming a feature by its name rather than its index when it has one."""
    parts = [str(p) for p in loc]
    if len(loc) >= 2 and loc[0] == "features" and isinstance(loc[1], int):
        features = data.get("features") if isinstance(data, dict) else None
        item = features[loc[1]] if isinstance(features, list) and loc[1] < len(features) else None
        name = item.get("name") if isinstance(item, dict) else None
        head = f"feature {name!r}" if isinstance(name, str) else f"features[{loc[1]}]"
        return " ".join([head, ".".join(parts[2:])]).strip()
    if len(loc) == 1 and loc[0] in ("target", "id_column") and isinstance(data, dict):
        value = data.get(loc[0])
        if isinstance(value, str):
            return f"{loc[0]} {value!r}"
    return ".".join(parts) or "(top level)"


def _format_validation_error(source: str, err: ValidationError, data: Any) -> str:
    parts = []
    for e in err.errors():
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            message = "required"
        elif e["type"] == "extra_forbidden":
            message = "unknown key"
        elif e["type"] in ("float_type", "int_type", "bool_type") and isinstance(e.get("input"), str):
            message += f" (got the string {e['input']!r}; write the value without quotes)"
        parts.append(f"{_where(e['loc'], data)}: {message}")
    return f"{source}: " + "; ".join(dict.fromkeys(parts))


def parse_spec(data: dict[str, Any], source: str = "spec") -> ModelSpec:
    """Validate a spec mapping; errors name the key (a feature by its name) and the problem."""
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(_format_validation_error(source, err, data)) from None


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
