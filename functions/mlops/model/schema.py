"""The feature schema of a registered version: the API contract and the ONNX input encoding.

The parity check and serving both turn rows into model inputs through `RowCanonicalizer`
then `encode_rows`, so the export is proven on exactly the encoding that serving uses;
training reduces values with the same `mlops.model.canonical` rules. A missing categorical value
is the empty string (ONNX string tensors have no null); a missing numeric value is NaN.
Numpy only: the serving function imports this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlops.model.canonical import BOOLEAN_CATEGORIES, MISSING_CATEGORY, canonical_boolean, canonical_category
from mlops.model.kinds import FeatureKind, Task

if TYPE_CHECKING:
    from mlops.model.spec import ModelSpec

# Stored only for regression: a classification schema is written exactly as before regression existed.
_REGRESSION_FIELDS = ("task", "target_min", "target_max")


class FeatureField(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: FeatureKind
    description: str = ""
    min: float | None = None
    max: float | None = None
    # Categories seen in training; anything else is served but flagged as unseen.
    categories: list[str] | None = None


class FeatureSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str
    features: list[FeatureField]
    target: str
    id_column: str | None = None
    # The canonical target value of the positive class; None: the target was 0/1.
    positive_label: str | None = None
    # What the model answers: a class probability, or a number (regression, whose true values
    # lie within the spec's target range when it states one).
    task: Task = Task.BINARY_CLASSIFICATION
    target_min: float | None = None
    target_max: float | None = None

    def _hidden(self) -> set[str] | None:
        return set(_REGRESSION_FIELDS) if self.task is Task.BINARY_CLASSIFICATION else None

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        return super().model_dump(**{"exclude": self._hidden(), **kwargs})

    def model_dump_json(self, **kwargs: Any) -> str:
        return super().model_dump_json(**{"exclude": self._hidden(), **kwargs})

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def field(self, name: str) -> FeatureField:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def compatible_with(self, other: FeatureSchema) -> list[str]:
        """Reasons why a client of `self` cannot call a model with schema `other` unchanged."""
        problems = []
        mine = {f.name: f for f in self.features}
        theirs = {f.name: f for f in other.features}
        for name in sorted(mine.keys() - theirs.keys()):
            problems.append(f"feature '{name}' was removed")
        for name in sorted(theirs.keys() - mine.keys()):
            problems.append(f"feature '{name}' is new (clients do not send it)")
        for name in sorted(mine.keys() & theirs.keys()):
            if mine[name].kind != theirs[name].kind:
                problems.append(f"feature '{name}' changed kind {mine[name].kind} -> {theirs[name].kind}")
        return problems


def schema_from_spec(spec: ModelSpec, seen_categories: Mapping[str, Sequence[str]]) -> FeatureSchema:
    """The served schema. A categorical feature whose every category is true/false is served
    as a boolean one, so clients may send JSON booleans and "yes"/"no" for it."""
    fields = []
    for f in spec.features:
        cats = None
        kind = f.kind
        if f.kind is not FeatureKind.NUMERIC:
            cats = sorted(set(f.categories or []) | set(seen_categories.get(f.name, [])))
            if cats and set(cats) <= set(BOOLEAN_CATEGORIES):
                kind = FeatureKind.BOOLEAN
        fields.append(
            FeatureField(
                name=f.name,
                kind=kind,
                description=f.description,
                min=f.min,
                max=f.max,
                categories=cats,
            )
        )
    regression = spec.regression if spec.task is Task.REGRESSION else None
    return FeatureSchema(
        model_name=spec.name,
        features=fields,
        target=spec.target,
        id_column=spec.id_column,
        positive_label=spec.positive_class,
        task=spec.task,
        target_min=regression.target_min if regression else None,
        target_max=regression.target_max if regression else None,
    )


_TRUE_FALSE = frozenset(BOOLEAN_CATEGORIES)
_NUMBER_START = frozenset("-0123456789")


class RowCanonicalizer:
    """Rewrites the category and boolean values of validated rows in their canonical form, in place.

    Missing values become None. What is logged, encoded and compared with the training
    categories is then one text per value, whichever JSON type the client used. Built once
    per schema: serving keeps one per model version.
    """

    def __init__(self, schema: FeatureSchema) -> None:
        self.categorical = tuple(f.name for f in schema.features if f.kind is FeatureKind.CATEGORICAL)
        self.boolean = tuple(f.name for f in schema.features if f.kind is FeatureKind.BOOLEAN)

    def __call__(self, rows: Sequence[dict[str, Any]]) -> None:
        categorical, boolean = self.categorical, self.boolean
        for row in rows:
            for name in categorical:
                v = row[name]
                # Most values are already canonical text: a non-empty string that starts with
                # neither a digit nor a minus sign and is not a spelling of true/false.
                if (
                    type(v) is str
                    and v
                    and v[0] not in _NUMBER_START
                    and (len(v) not in (4, 5) or v.lower() not in _TRUE_FALSE)
                ):
                    continue
                row[name] = canonical_category(v)
            for name in boolean:
                row[name] = canonical_boolean(row[name])


def canonicalize_rows(rows: Sequence[dict[str, Any]], schema: FeatureSchema) -> None:
    """`RowCanonicalizer` for a one-off use (the parity check)."""
    RowCanonicalizer(schema)(rows)


def encode_rows(
    rows: Sequence[Mapping[str, Any]], schema: FeatureSchema, numeric_dtype: type[np.floating[Any]]
) -> dict[str, np.ndarray]:
    """Turn validated, canonical rows (`canonicalize_rows`) into one ``(n, 1)`` ONNX input per feature."""
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema.features}
    return encode_columns(columns, schema, numeric_dtype)


def encode_columns(
    columns: Mapping[str, Sequence[Any]],
    schema: FeatureSchema,
    numeric_dtype: type[np.floating[Any]],
    numbers: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Turn one canonical column of values per feature into one ``(n, 1)`` ONNX input per feature.

    A null number becomes NaN (numpy's own conversion of None); a missing category the empty string.
    `numbers` may hold numeric columns already converted so (float64), which are not converted again.
    """
    feeds: dict[str, np.ndarray] = {}
    converted = numbers or {}
    for f in schema.features:
        column = columns[f.name]
        n = len(column)
        if f.kind is FeatureKind.NUMERIC:
            as_float = converted.get(f.name)
            if as_float is None:
                as_float = np.array(column, dtype=np.float64)
            feeds[f.name] = as_float.astype(numeric_dtype, copy=False).reshape(n, 1)
        else:
            # Most columns have no missing value: then the column itself is the input, not a copy.
            values = [MISSING_CATEGORY if v is None else v for v in column] if None in column else column
            feeds[f.name] = np.array(values, dtype=object).reshape(n, 1)
    return feeds
