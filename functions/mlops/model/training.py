"""Train a model from a DataFrame and a spec: the one training path for CLI, retraining and demo.

The fitted object is one sklearn `Pipeline` (preprocessing + estimator), so serving
never re-implements preprocessing: it runs this pipeline's ONNX export.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops.model.canonical import FALSE, TRUE, canonical_boolean, canonical_category
from mlops.model.evaluation import classification_metrics, group_metrics
from mlops.model.schema import FeatureSchema, schema_from_spec
from mlops.model.spec import EstimatorKind, ModelSpec, Task
from mlops.monitoring.estimation import fit_performance_reference
from mlops.monitoring.profile import (
    FINE_BINS,
    MISSING_CATEGORY,
    ReferenceProfile,
    build_dataset_profile,
    numeric_histogram,
    quantile_edges,
)
from mlops.monitoring.significance import reference_metric
from mlops.shared.errors import DataError, SpecError

if TYPE_CHECKING:
    from mlops.regression.profile import RegressionProfile

MIN_CLASS_EXAMPLES = 10
# Estimators fitted on standardised numbers; trees split on the raw values.
SCALED_ESTIMATORS = frozenset(
    {EstimatorKind.LOGISTIC_REGRESSION, EstimatorKind.LINEAR_REGRESSION, EstimatorKind.RIDGE}
)
MISSING_FILL = "__missing__"
# Delimiters a CSV file is tried with, comma first; the first consistent one wins.
CSV_DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 64 * 1024
_SNIFF_LINES = 50
# How a missing number may be written in a file; a missing category is only an empty field.
NUMERIC_MISSING = frozenset(
    {"", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "None", "#N/A", "<NA>"}
)
_COMMA_NUMBER = re.compile(r"\s*-?[0-9][0-9.]*,[0-9]+\s*")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}

log = logging.getLogger(__name__)


def _field_counts(lines: Sequence[str], delimiter: str) -> list[int]:
    return [len(row) for row in csv.reader(lines, delimiter=delimiter)]


def sniff_delimiter(head: str) -> str | None:
    """The delimiter that splits every complete line of `head` into the same number (>1) of fields."""
    lines = head.splitlines()[:_SNIFF_LINES]
    if len(head) >= _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    lines = [line for line in lines if line.strip()]
    for delimiter in CSV_DELIMITERS:
        counts = _field_counts(lines, delimiter)
        if counts and counts[0] > 1 and all(c == counts[0] for c in counts):
            return delimiter
    return None


def read_csv_text(source: str | Path | IO[str], delimiter: str = ",") -> pd.DataFrame:
    """Every column as the text written in the file; only an empty field is missing.

    Numbers are parsed per feature kind later (`feature_frame`), so a category is never
    turned into a float by a blank elsewhere in its column, and "NA" stays a category.
    """
    return pd.read_csv(source, sep=delimiter, dtype=str, keep_default_na=False, na_values=[""])


def load_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, with a one-line error for anything unreadable.

    A CSV file whose delimiter is not a comma (semicolon, tab, pipe) is detected and read
    with it; a warning says so. The delimiter used is in ``frame.attrs["csv_delimiter"]``.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: data file not found")
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            with p.open(encoding="utf-8", newline="") as fh:
                head = fh.read(_SNIFF_BYTES)
            delimiter = sniff_delimiter(head) or ","
            if delimiter != ",":
                log.warning(
                    "%s: read with the %s delimiter %r (detected: commas do not split its lines evenly)",
                    p,
                    _DELIMITER_NAMES[delimiter],
                    delimiter,
                )
            frame = read_csv_text(p, delimiter)
            frame.attrs["csv_delimiter"] = delimiter
            return frame
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
    except UnicodeDecodeError as err:
        raise DataError(f"{p}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None
    except Exception as err:
        raise DataError(f"{p}: cannot read {suffix.lstrip('.')} file: {err}") from None
    raise DataError(f"{p}: unsupported data format '{suffix}' (use .csv or .parquet)")


def _missing_columns_message(missing: Sequence[str], data: pd.DataFrame, what: str) -> str:
    text = f"data {what} {', '.join(repr(c) for c in missing)}"
    columns = [str(c) for c in data.columns]
    hints = []
    if len(columns) == 1 and any(d in columns[0] for d in CSV_DELIMITERS[1:]):
        hints.append(
            f"the data has one column named {columns[0][:80]!r}: is the file delimited by ';' or tabs?"
        )
    for name in missing:
        close = [c for c in columns if c != name and c.strip().lower() == name.strip().lower()]
        if close:
            hints.append(f"{name!r} is spelled {close[0]!r} in the data (names are used as given)")
    return text + ("; " + "; ".join(hints) if hints else "")


def _non_numeric_message(name: str, example: Any) -> str:
    text = f"numeric feature {name!r} has non-numeric values, e.g. {example!r}"
    if isinstance(example, str) and _COMMA_NUMBER.fullmatch(example):
        return (
            f"{text}: a comma inside a number (a decimal comma or a thousands separator); "
            "write numbers with a '.' decimal point and no thousands separator (1234.5), "
            "e.g. export the file again with '.' as the decimal separator"
        )
    if isinstance(example, str) and canonical_category(example) in (TRUE, FALSE):
        return f'{text}: declare it kind = "boolean"'
    return text


def _numeric_column(name: str, raw: pd.Series) -> np.ndarray:
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        text = raw.astype("object").map(lambda v: v.strip() if isinstance(v, str) else v)
        raw = raw.astype("object").mask(text.isin(NUMERIC_MISSING))
    coerced = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = coerced.isna() & raw.notna()
    if bad.any():
        raise DataError(_non_numeric_message(name, raw[bad].iloc[0]))
    infinite = np.isinf(coerced.to_numpy())
    if infinite.any():
        raise DataError(f"numeric feature {name!r} has infinite values, e.g. {raw[infinite].iloc[0]!r}")
    return coerced.to_numpy()


def _category_column(name: str, values: np.ndarray, boolean: bool) -> np.ndarray:
    reduce = canonical_boolean if boolean else canonical_category
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        try:
            text = reduce(v)
        except ValueError as err:
            kind = "boolean" if boolean else "categorical"
            raise DataError(f"{kind} feature {name!r}, row {i}: {err}") from None
        out[i] = MISSING_CATEGORY if text is None else text
    return out


def feature_frame(data: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Features in the canonical encoding the pipeline is fitted on.

    Numeric columns become float64 (NaN = missing). Categorical and boolean columns become
    their canonical text (`mlops.model.canonical`) with "" for missing, exactly what serving
    makes of the same values before `mlops.model.schema.encode_rows` feeds the ONNX model.
    """
    missing = [c for c in spec.feature_names if c not in data.columns]
    if missing:
        raise DataError(_missing_columns_message(missing, data, "is missing feature column(s):"))
    out = {}
    for name in spec.numeric_features:
        out[name] = _numeric_column(name, data[name])
    booleans = set(spec.boolean_features)
    for name in spec.categorical_features:
        out[name] = _category_column(name, data[name].astype("object").to_numpy(), name in booleans)
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


def _target_text(data: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    if spec.target not in data.columns:
        raise DataError(_missing_columns_message([spec.target], data, "has no target column"))
    values = data[spec.target].astype("object").to_numpy()
    try:
        text = np.array([canonical_category(v) for v in values], dtype=object)
    except ValueError as err:
        raise DataError(f"target {spec.target!r}: {err}") from None
    missing = int(sum(t is None for t in text))
    if missing:
        raise DataError(f"target {spec.target!r} has {missing} missing value(s)")
    return text


def _value_counts(text: np.ndarray, limit: int = 10) -> str:
    counts = pd.Series(text).value_counts()
    shown = ", ".join(f"{v!r} ({n})" for v, n in counts.iloc[:limit].items())
    more = f" and {len(counts) - limit} more" if len(counts) > limit else ""
    return f"{len(counts)} distinct: {shown}{more}"


def _classes(text: np.ndarray, spec: ModelSpec) -> tuple[str | None, str]:
    values = set(text.tolist())
    positive = spec.positive_class
    if positive is None:
        for negative, positive in (("0", "1"), (FALSE, TRUE)):
            if values <= {negative, positive}:
                return negative, positive
        raise DataError(
            f"target {spec.target!r} must be 0/1 (or true/false) unless the spec names its positive "
            f"class, e.g. positive_label = {sorted(values)[-1]!r}; found {_value_counts(text)}"
        )
    if positive not in values:
        raise DataError(
            f"positive_label {spec.positive_label!r} is not a value of target {spec.target!r}; "
            f"found {_value_counts(text)}"
        )
    others = sorted(values - {positive})
    if len(others) > 1:
        raise DataError(
            f"target {spec.target!r} must hold two values (binary classification); "
            f"found {_value_counts(text)}"
        )
    return (others[0] if others else None), positive


def target_classes(data: pd.DataFrame, spec: ModelSpec) -> tuple[str | None, str]:
    """The canonical (negative, positive) target values of `data`; negative is None if absent.

    Without `positive_label` the target must be 0/1 or true/false (1 and true positive). With
    it, the target must hold two values, one of them the positive label. Errors list the values.
    """
    return _classes(_target_text(data, spec), spec)


def binary_target(data: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The target as 0/1, 1 for the positive class (see `target_classes`)."""
    text = _target_text(data, spec)
    _, positive = _classes(text, spec)
    return (text == positive).astype(int)


def labels(data: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The target as 0/1, refusing a class with too few examples to train and evaluate on."""
    y = binary_target(data, spec)
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
    if spec.estimator.kind in SCALED_ESTIMATORS:
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
    if spec.task is Task.REGRESSION:
        from mlops.regression.training import regressor

        estimator = regressor(kind, seed)
    elif kind is EstimatorKind.LOGISTIC_REGRESSION:
        estimator = LogisticRegression(max_iter=2000)
    elif kind is EstimatorKind.GRADIENT_BOOSTING:
        estimator = GradientBoostingClassifier(random_state=seed)
    elif kind is EstimatorKind.RANDOM_FOREST:
        estimator = RandomForestClassifier(random_state=seed, n_jobs=1)
    else:
        raise SpecError(f"estimator.kind: {kind.value} is not a classifier")
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
    profile: ReferenceProfile | RegressionProfile
    test_metrics: dict[str, float | None]
    group_metrics: dict[str, Any]
    train_rows: int
    test_rows: int
    test_features: pd.DataFrame
    test_labels: np.ndarray
    test_scores: np.ndarray
    estimator_params: dict[str, Any] = field(default_factory=dict)


def estimator_params(pipeline: Pipeline) -> dict[str, Any]:
    """The fitted estimator's plain-valued parameters, as the registry records them."""
    params = pipeline.named_steps["estimator"].get_params()
    return {k: v for k, v in params.items() if isinstance(v, (int, float, str, bool, type(None)))}


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
    if spec.task is Task.REGRESSION:
        from mlops.regression.training import train_regression

        return train_regression(data, spec, sample_weight, test_data)
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
        # Calibration for label-free estimation is fitted on the held-out rows, never the training ones.
        estimation=fit_performance_reference(y_test, scores, seed=spec.split.seed),
        reference_metric=reference_metric(
            y_test,
            scores,
            spec.primary_metric.value,
            source="held-out split of the training data" if test_data is None else "given test rows",
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
        test_scores=scores,
        estimator_params=estimator_params(pipeline),
    )
