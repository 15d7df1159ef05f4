"""The feature schema of a registered version: the API contract and the ONNX input encoding.

Training, the parity check and serving all turn rows into model inputs through
`encode_rows`, so the export is proven on exactly the encoding that serving uses.
A missing categorical value is the empty string (ONNX string tensors have no null);
a missing numeric value is NaN. Numpy only: the serving function imports this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlops.profile import MISSING_CATEGORY, is_missing_category
from mlops.spec import FeatureKind, ModelSpec


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
    fields = []
    for f in spec.features:
        cats = None
        if f.kind is FeatureKind.CATEGORICAL:
            cats = sorted(set(f.categories or []) | set(seen_categories.get(f.name, [])))
        fields.append(
            FeatureField(
                name=f.name,
                kind=f.kind,
                description=f.description,
                min=f.min,
                max=f.max,
                categories=cats,
            )
        )
    return FeatureSchema(model_name=spec.name, features=fields, target=spec.target, id_column=spec.id_column)


def encode_rows(
    rows: Sequence[Mapping[str, Any]], schema: FeatureSchema, numeric_dtype: type[np.floating[Any]]
) -> dict[str, np.ndarray]:
    """Turn validated rows into one ``(n, 1)`` ONNX input per feature."""
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema.features}
    return encode_columns(columns, schema, numeric_dtype)


def _category(value: Any) -> str:
    return MISSING_CATEGORY if is_missing_category(value) else str(value)


def encode_columns(
    columns: Mapping[str, Sequence[Any]], schema: FeatureSchema, numeric_dtype: type[np.floating[Any]]
) -> dict[str, np.ndarray]:
    """Turn one column of values per feature into one ``(n, 1)`` ONNX input per feature.

    A null number becomes NaN (numpy's own conversion of None); a missing category the empty string.
    """
    feeds: dict[str, np.ndarray] = {}
    for f in schema.features:
        column = columns[f.name]
        n = len(column)
        if f.kind is FeatureKind.NUMERIC:
            feeds[f.name] = np.array(column, dtype=np.float64).astype(numeric_dtype, copy=False).reshape(n, 1)
        else:
            # Strings (what validated requests hold) pass as they are: "" already is the missing category.
            values = [v if type(v) is str else _category(v) for v in column]
            feeds[f.name] = np.array(values, dtype=object).reshape(n, 1)
    return feeds
