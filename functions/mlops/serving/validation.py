"""Validate prediction requests against a version's feature schema, naming every problem.

The checks are compiled once per schema into tuples of plain values, and a request is first
run through a fast check that only answers "all good?": a loop over the values for a few rows,
and for a batch one column per feature checked with built-ins (types as a set, min and max
against the bounds). The request's columns are what the encoder then reads. Only a request
that fails is walked again, row by row, to name every offending row and field, so valid
traffic (the hot path) builds no model objects.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from mlops.errors import ValidationFailed
from mlops.schema import FeatureSchema
from mlops.spec import FeatureKind

# A category is a label, not free text; the bound also keeps every log record far below
# the SQS message size limit whatever the client sends.
MAX_CATEGORY_LENGTH = 256
# Bounds used when a feature declares none: every finite float passes, NaN and +-inf never do.
_LOWEST = -sys.float_info.max
_HIGHEST = sys.float_info.max

Problem = dict[str, Any]
Columns = dict[str, Sequence[Any]]
_NUMBER_TYPES = frozenset({float, int})
# Below this many rows a plain loop over the values costs less than the column checks, whose
# cost is mostly a fixed few built-in calls per feature.
COLUMN_CHECK_MIN_ROWS = 8
_STRING_TYPES = frozenset({str})


def problem(row: int | None, field: str | None, text: str) -> Problem:
    return {"row": row, "field": field, "problem": text}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class RowValidator:
    """Checks rows (JSON objects of feature values) against one feature schema.

    ``null`` (or a missing-category empty string) is a missing value and is served: the
    model's imputers handle it. An absent key is an error: the client forgot a feature.
    """

    def __init__(self, schema: FeatureSchema, max_category_length: int = MAX_CATEGORY_LENGTH) -> None:
        self.names: tuple[str, ...] = tuple(schema.names)
        self._name_set = frozenset(self.names)
        self._max_len = max_category_length
        self._numeric: tuple[tuple[str, float, float], ...] = tuple(
            (
                f.name,
                _LOWEST if f.min is None else f.min,
                _HIGHEST if f.max is None else f.max,
            )
            for f in schema.features
            if f.kind is FeatureKind.NUMERIC
        )
        self._categorical: tuple[str, ...] = tuple(
            f.name for f in schema.features if f.kind is FeatureKind.CATEGORICAL
        )
        self._declared = {f.name: (f.min, f.max) for f in schema.features}
        self._row_values = itemgetter(*self.names)

    def validate(self, rows: list[Any]) -> None:
        """Raise ValidationFailed (422) listing every problem of every row; return if all are valid."""
        self.columns(rows)

    def columns(self, rows: list[Any]) -> Columns:
        """The rows as one column (a tuple, in row order) per feature, once every value is valid.

        Raises ValidationFailed (422) listing every problem of every row otherwise.
        """
        columns = self._valid_columns(rows)
        if columns is None:
            raise ValidationFailed(
                "the request does not match the model's feature schema", self.problems(rows)
            )
        return columns

    def _valid_columns(self, rows: list[Any]) -> Columns | None:
        width = len(self.names)
        if not rows:
            return {name: () for name in self.names}
        if len(rows) < COLUMN_CHECK_MIN_ROWS:
            if not self._rows_valid(rows):
                return None
        # Exactly the features: every name present (the getter raises otherwise) and no other key.
        elif set(map(type, rows)) != {dict} or set(map(len, rows)) != {width}:
            return None
        try:
            table = list(map(self._row_values, rows))
        except KeyError:
            return None
        columns: Columns = (
            dict(zip(self.names, zip(*table, strict=True), strict=True))
            if width > 1
            else {self.names[0]: table}
        )
        if len(rows) >= COLUMN_CHECK_MIN_ROWS and not self._columns_valid(columns):
            return None
        return columns

    def _rows_valid(self, rows: list[Any]) -> bool:
        names, numeric, categorical, max_len = self._name_set, self._numeric, self._categorical, self._max_len
        for row in rows:
            if type(row) is not dict or row.keys() != names:
                return False
            for name, lo, hi in numeric:
                v = row[name]
                t = type(v)
                # `type is` rather than isinstance: a bool is an int to Python but not a number to us.
                if t is float or t is int:
                    # NaN fails both comparisons, +-inf fails the finite bounds.
                    if not lo <= v <= hi:
                        return False
                elif v is not None:
                    return False
            for name in categorical:
                v = row[name]
                if v is not None and (type(v) is not str or len(v) > max_len):
                    return False
        return True

    def _columns_valid(self, columns: Columns) -> bool:
        """The checks of `_rows_valid`, a column at a time with built-ins (the same answers)."""
        for name, lo, hi in self._numeric:
            present = _present(columns[name])
            if not present:
                continue
            # Types as a set rather than isinstance: a bool is an int to Python but not a number to us.
            if not set(map(type, present)) <= _NUMBER_TYPES:
                return False
            try:
                # NaN compares false with everything, so min and max cannot be trusted to catch it.
                if any(map(math.isnan, present)) or min(present) < lo or max(present) > hi:
                    return False
            except OverflowError:  # an integer beyond any float
                return False
        for name in self._categorical:
            present = _present(columns[name])
            if present and (
                not set(map(type, present)) <= _STRING_TYPES or max(map(len, present)) > self._max_len
            ):
                return False
        return True

    def problems(self, rows: list[Any]) -> list[Problem]:
        """Every problem of every row, in row then schema order (the slow, descriptive path)."""
        found: list[Problem] = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                found.append(
                    problem(i, None, f"a row must be a JSON object of feature values, not {_describe(row)}")
                )
                continue
            for name in self.names:
                if name not in row:
                    found.append(problem(i, name, "missing feature (send null for a missing value)"))
            for name, lo, hi in self._numeric:
                if name in row:
                    text = self._numeric_problem(name, row[name], lo, hi)
                    if text:
                        found.append(problem(i, name, text))
            for name in self._categorical:
                v = row.get(name)
                if v is None:
                    continue
                if not isinstance(v, str):
                    found.append(problem(i, name, f"expected a string category, got {_describe(v)}"))
                elif len(v) > self._max_len:
                    found.append(problem(i, name, f"category longer than {self._max_len} characters"))
            for name in sorted(k for k in row if k not in self._name_set):
                found.append(problem(i, str(name), "unknown field: not a feature of this model"))
        return found

    def _numeric_problem(self, name: str, v: Any, lo: float, hi: float) -> str | None:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"expected a number, got {_describe(v)}"
        if isinstance(v, float) and not math.isfinite(v):
            return f"expected a finite number, got {v}"
        declared_min, declared_max = self._declared[name]
        if not lo <= v <= hi:
            if declared_min is not None and v < declared_min:
                return f"{v} is below the declared minimum {declared_min:g}"
            if declared_max is not None and v > declared_max:
                return f"{v} is above the declared maximum {declared_max:g}"
            return f"{v} is outside the range of a finite number"
        return None


def _present(column: Sequence[Any]) -> Sequence[Any]:
    """The values of a column that are not null (null is a missing value, and valid)."""
    return [v for v in column if v is not None] if None in column else column


def rows_of_request(payload: Any, max_rows: int) -> list[Any]:
    """The rows of a predict request: ``{"features": {...}}`` (one row) or ``{"instances": [...]}``.

    Raises ValidationFailed: 422 for a malformed envelope or empty batch, 413 for too many rows.
    """
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "the body must be a JSON object",
            [
                problem(
                    None, None, f"expected an object with 'features' or 'instances', got {_describe(payload)}"
                )
            ],
        )
    found = [
        problem(None, str(k), "unknown field: send 'features' (one row) or 'instances' (a batch)")
        for k in sorted(payload, key=str)
        if k not in ("features", "instances")
    ]
    has_features, has_instances = "features" in payload, "instances" in payload
    if has_features == has_instances:
        found.append(problem(None, None, "send exactly one of 'features' (one row) or 'instances' (a batch)"))
    if found:
        raise ValidationFailed("the request envelope is malformed", found)
    if has_features:
        row = payload["features"]
        if not isinstance(row, dict):
            raise ValidationFailed(
                "'features' must be an object",
                [problem(0, "features", f"expected an object of feature values, got {_describe(row)}")],
            )
        return [row]
    rows = payload["instances"]
    if not isinstance(rows, list):
        raise ValidationFailed(
            "'instances' must be an array",
            [problem(None, "instances", f"expected an array of rows, got {_describe(rows)}")],
        )
    if not rows:
        raise ValidationFailed("the batch is empty", [problem(None, "instances", "send at least one row")])
    if len(rows) > max_rows:
        raise ValidationFailed(
            "the batch is too large",
            [problem(None, "instances", f"{len(rows)} rows; at most {max_rows} are accepted per request")],
            status=413,
        )
    return rows
