"""Export a fitted sklearn pipeline to ONNX and prove the export matches it.

Numeric inputs are float64 where the converters and onnxruntime allow it, so the
export reproduces sklearn to rounding error. Two gaps are closed or reported:

- skl2onnx writes numeric `SimpleImputer` as the `ai.onnx.ml.Imputer` op, which
  stores fill values as float32 and which onnxruntime only runs on float32. We register
  an exact float64 converter made of standard `IsNaN` + `Where` ops instead.
- Tree ensembles have no float64 kernels in onnxruntime: for them numeric inputs are
  float32, which is what sklearn's trees use internally anyway.

One form is written more cheaply than skl2onnx writes it: the categorical branch (missing text
imputed as a constant, then one-hot encoded) becomes one lookup per column (`_ImputedOneHot`).

The parity check runs the export through `mlops.model.schema.canonicalize_rows` and
`encode_rows`, the same encoding serving uses, on the test set plus generated edge rows.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import TensorProto
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common._registration import register_converter
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from skl2onnx.operator_converters.common import concatenate_variables
from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mlops.model.inference import load_session, predict_proba_onnx, predict_values_onnx, session_numeric_dtype
from mlops.model.schema import FeatureSchema, canonicalize_rows, encode_rows
from mlops.model.spec import EstimatorKind, FeatureKind
from mlops.shared.errors import ExportError

PARITY_TOLERANCE = 1e-6
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}


def _exact_double_imputer(scope: Any, operator: Any, container: Any) -> None:
    imputer = operator.raw_operator
    missing = imputer.missing_values
    is_nan_marker = isinstance(missing, float) and np.isnan(missing)
    if not (isinstance(operator.inputs[0].type, DoubleTensorType) and is_nan_marker):
        convert_sklearn_imputer(scope, operator, container)
        return
    x = concatenate_variables(scope, operator.inputs, container)
    fill = scope.get_unique_variable_name("fill_values")
    stats = np.asarray(imputer.statistics_, dtype=np.float64)
    container.add_initializer(fill, TensorProto.DOUBLE, [1, stats.size], stats.tolist())
    nan_mask = scope.get_unique_variable_name("is_nan")
    container.add_node("IsNaN", [x], [nan_mask], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [nan_mask, fill, x],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )


register_converter("SklearnSimpleImputer", _exact_double_imputer, overwrite=True)


class _ImputedOneHot(OneHotEncoder):
    """What a fitted ``Pipeline([SimpleImputer(constant), OneHotEncoder(handle_unknown="ignore")])``
    over string columns computes, as one step that only the export sees (it is never fitted).

    skl2onnx writes that pipeline as the imputer over the columns merged into one string tensor:
    per column an extraction, a match, a cast and a `Where`, then a merge and a split again for the
    encoder, copying every string five times; for the demo model that was half of onnxruntime's
    time for a 1,000-row batch. Here each column is read once: a `LabelEncoder` maps each known
    category (and the imputer's missing value, as its fill value) to its position, anything else
    to -1, and a `OneHotEncoder` over positions writes the row (all zeros for -1, as
    ``handle_unknown="ignore"`` does). The parity check proves the export against the pipeline.
    """

    missing: str
    fill: str

    @classmethod
    def of(cls, categories: list[list[str]], missing: str, fill: str) -> _ImputedOneHot:
        step = cls(handle_unknown="ignore")
        step.categories_ = [np.asarray(c, dtype=object) for c in categories]
        step.drop_idx_ = None
        step.missing, step.fill = missing, fill
        return step

    @property
    def width(self) -> int:
        """Columns written: one per category of each column."""
        return sum(len(c) for c in self.categories_)


def _imputed_one_hot_shape(operator: Any) -> None:
    width = operator.raw_operator.width
    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(), width])


def _imputed_one_hot(scope: Any, operator: Any, container: Any) -> None:
    encoder: _ImputedOneHot = operator.raw_operator
    encoded = []
    for variable, categories in zip(operator.inputs, encoder.categories_, strict=True):
        index = {c: i for i, c in enumerate(categories)}
        # The imputer turns the missing value into the fill value before the encoder sees it.
        index[encoder.missing] = index.get(encoder.fill, -1)
        keys, positions = list(index), list(index.values())
        position = scope.get_unique_variable_name("position")
        container.add_node(
            "LabelEncoder",
            [variable.full_name],
            [position],
            op_domain="ai.onnx.ml",
            op_version=2,
            keys_strings=keys,
            values_int64s=positions,
            default_int64=-1,
            name=scope.get_unique_operator_name("LabelEncoder"),
        )
        one_hot = scope.get_unique_variable_name("one_hot")
        container.add_node(
            "OneHotEncoder",
            [position],
            [one_hot],
            op_domain="ai.onnx.ml",
            cats_int64s=list(range(len(categories))),
            zeros=1,
            name=scope.get_unique_operator_name("OneHotEncoder"),
        )
        encoded.append(one_hot)
    joined = scope.get_unique_variable_name("one_hot_rows")
    container.add_node("Concat", encoded, [joined], axis=-1, name=scope.get_unique_operator_name("Concat"))
    width = scope.get_unique_variable_name("width")
    container.add_initializer(width, TensorProto.INT64, [2], [-1, encoder.width])
    container.add_node(
        "Reshape",
        [joined, width],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Reshape"),
    )


update_registered_converter(_ImputedOneHot, "MlopsImputedOneHot", _imputed_one_hot_shape, _imputed_one_hot)


def _one_step_categories(pipeline: Pipeline) -> Pipeline:
    """`pipeline` with each of its preprocessing's imputed one-hot branches made one `_ImputedOneHot`
    step; the pipeline itself as it is when it has no such branch (then skl2onnx writes it)."""
    steps = pipeline.steps
    preprocess = steps[0][1]
    if not isinstance(preprocess, ColumnTransformer) or not hasattr(preprocess, "transformers_"):
        return pipeline
    fused = [_as_imputed_one_hot(step) for _, step, _ in preprocess.transformers_]
    if all(f is None for f in fused):
        return pipeline
    stand_in = copy.copy(preprocess)
    stand_in.transformers_ = [
        (name, step if f is None else f, columns)
        for (name, step, columns), f in zip(preprocess.transformers_, fused, strict=True)
    ]
    return Pipeline([(steps[0][0], stand_in), *steps[1:]])


def _as_imputed_one_hot(step: Any) -> _ImputedOneHot | None:
    if not (isinstance(step, Pipeline) and len(step.steps) == 2):
        return None
    (_, imputer), (_, encoder) = step.steps
    if not (
        type(imputer) is SimpleImputer
        and imputer.strategy == "constant"
        and isinstance(imputer.missing_values, str)
        and isinstance(imputer.fill_value, str)
        and not imputer.add_indicator
        and type(encoder) is OneHotEncoder
        and encoder.handle_unknown == "ignore"
        and encoder.drop_idx_ is None
        and getattr(encoder, "infrequent_categories_", None) is None
        and all(all(isinstance(c, str) for c in cats) for cats in encoder.categories_)
    ):
        return None
    categories = [[str(c) for c in cats] for cats in encoder.categories_]
    return _ImputedOneHot.of(categories, imputer.missing_values, imputer.fill_value)


# Linear models run in float64 end to end; tree ensembles have only float32 kernels.
DOUBLE_PRECISION_ESTIMATORS = frozenset(
    {EstimatorKind.LOGISTIC_REGRESSION, EstimatorKind.LINEAR_REGRESSION, EstimatorKind.RIDGE}
)


def numeric_dtype_for(estimator: EstimatorKind) -> type[np.floating[Any]]:
    return np.float64 if estimator in DOUBLE_PRECISION_ESTIMATORS else np.float32


def export_onnx(pipeline: Pipeline, schema: FeatureSchema, estimator: EstimatorKind) -> bytes:
    tensor = DoubleTensorType if numeric_dtype_for(estimator) is np.float64 else FloatTensorType
    initial_types = [
        (
            f.name,
            tensor([None, 1]) if f.kind is FeatureKind.NUMERIC else StringTensorType([None, 1]),
        )
        for f in schema.features
    ]
    final = pipeline.steps[-1][1]
    # Classifiers answer probabilities as a plain tensor; regressors have no such option.
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    try:
        model = convert_sklearn(
            _one_step_categories(pipeline),
            initial_types=initial_types,
            target_opset=TARGET_OPSET,
            options=options,
            name=schema.model_name,
        )
    except Exception as err:  # skl2onnx raises many types; all mean "cannot convert"
        raise ExportError(f"skl2onnx could not convert the pipeline: {err}") from err
    return bytes(model.SerializeToString())


@dataclass(frozen=True)
class ParityReport:
    rows_checked: int
    edge_rows: int
    max_abs_diff: float
    tolerance: float
    worst_rows: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_checked": self.rows_checked,
            "edge_rows": self.edge_rows,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "worst_rows": self.worst_rows,
        }


def edge_rows(schema: FeatureSchema) -> list[dict[str, Any]]:
    """Rows that break naive exports: all missing, unseen categories, extreme and boundary numbers."""
    numeric = [f for f in schema.features if f.kind is FeatureKind.NUMERIC]
    categorical = [f for f in schema.features if f.kind is FeatureKind.CATEGORICAL]
    boolean = [f for f in schema.features if f.kind is FeatureKind.BOOLEAN]

    def first_category(f: Any) -> str:
        return f.categories[0] if f.categories else "a"

    base = {f.name: 0.0 for f in numeric} | {f.name: first_category(f) for f in [*categorical, *boolean]}
    rows: list[dict[str, Any]] = [
        dict.fromkeys(schema.names),
        base | {f.name: "never-seen-before" for f in categorical},
        base | {f.name: None for f in [*categorical, *boolean]},
    ]
    rows.extend(base | {f.name: value} for f in boolean for value in ("false", "true"))
    for value in (1e9, -1e9, 1e-9, 123456.789):
        rows.append(base | {f.name: value for f in numeric})
    for f in numeric:
        for bound in (f.min, f.max):
            if bound is not None:
                rows.append(base | {f.name: bound})
        rows.append(base | {f.name: None})
    return rows


def check_parity(
    pipeline: Pipeline,
    onnx_bytes: bytes,
    schema: FeatureSchema,
    test_rows: Sequence[Mapping[str, Any]],
    sklearn_frame: Any,
    tolerance: float = PARITY_TOLERANCE,
    worst: int = 5,
    *,
    regression: bool = False,
) -> ParityReport:
    """Compare ONNX and sklearn probabilities (a regressor's values) on the test rows plus `edge_rows`.

    `sklearn_frame(rows)` turns rows into the DataFrame that the pipeline was fitted on
    (the training module owns that conversion).
    """
    extra = edge_rows(schema)
    rows = [dict(r) for r in (*test_rows, *extra)]
    canonicalize_rows(rows, schema)
    session = load_session(onnx_bytes)
    feeds = encode_rows(rows, schema, session_numeric_dtype(session))
    if regression:
        onnx_p = predict_values_onnx(session, feeds)
        sk_p = np.asarray(pipeline.predict(sklearn_frame(rows)), dtype=np.float64)
    else:
        onnx_p = predict_proba_onnx(session, feeds)
        sk_p = pipeline.predict_proba(sklearn_frame(rows))[:, 1]
    diff = np.abs(onnx_p - sk_p)
    diff = np.where(np.isnan(diff), np.inf, diff)
    order = np.argsort(-diff)[:worst]
    worst_rows = [
        {
            "row": int(i),
            "sklearn": float(sk_p[i]),
            "onnx": float(onnx_p[i]),
            "abs_diff": float(diff[i]),
            "features": dict(rows[i]),
        }
        for i in order
    ]
    return ParityReport(
        rows_checked=len(rows),
        edge_rows=len(extra),
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        tolerance=tolerance,
        worst_rows=worst_rows,
    )
