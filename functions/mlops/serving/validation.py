"""Validate prediction requests against a version's feature schema, naming every problem.

The checks are compiled once per schema into tuples of plain values, and a request is
first run through a fast loop that only answers "all good?". Only a request that fails
is walked again to name every offending row and field, so valid traffic (the hot path)
pays a few comparisons per value and builds no model objects.

A request may carry its own prediction ids and event times (`read_request`): for a batch
``{"instances": [...], "ids": [...], "event_times": [...]}``, for one row
``{"features": {...}, "id": ..., "event_time": ...}``; the spec's id column may instead
be sent inside each row. Ids are unique in the request, 1 to 128 characters of
``A-Z a-z 0-9 _ . : -`` starting with a letter or digit (or a non-negative integer).
An event time is ISO 8601 with a timezone, no later than now plus `MAX_CLOCK_SKEW` and
not before the serving version was registered, so past traffic can be replayed.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import repeat
from operator import contains, itemgetter
from typing import Any, NamedTuple

import numpy as np

from mlops.cloud.storage import iso
from mlops.model.canonical import BOOLEAN_SPELLINGS, canonical_boolean, canonical_category
from mlops.model.kinds import FeatureKind
from mlops.model.schema import FeatureSchema, RowCanonicalizer
from mlops.shared.errors import ValidationFailed

# A category is a label, not free text; the bound also keeps every log record far below
# the SQS message size limit whatever the client sends.
MAX_CATEGORY_LENGTH = 256
MAX_ID_LENGTH = 128
PREDICTION_ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.:\-]{{0,{MAX_ID_LENGTH - 1}}}$"
PREDICTION_ID = re.compile(PREDICTION_ID_PATTERN)
# How far ahead of this function's clock a client's clock may run.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Integers beyond this many digits are no category or id (and Python will not print them).
_LONGEST_INTEGER = 10**MAX_CATEGORY_LENGTH
_BATCH_KEYS = ("instances", "ids", "event_times")
_SINGLE_KEYS = ("features", "id", "event_time")
# Bounds used when a feature declares none: every finite float passes, NaN and +-inf never do.
_LOWEST = -sys.float_info.max
_HIGHEST = sys.float_info.max
# From this many rows a request is checked and canonicalized column by column (`canonical_columns`);
# below it the row loop is as fast and builds nothing.
COLUMNWISE_MIN_ROWS = 8
# Integers from 2**53 on may round when converted to a float, which could move one onto a bound.
_EXACT_FLOAT_INTEGERS = 2.0**53
_NUMBER_TYPES = frozenset({int, float, type(None)})
_INVALID = object()

Problem = dict[str, Any]


def problem(row: int | None, field: str | None, text: str) -> Problem:
    return {"row": row, "field": field, "problem": text}


def _shown(value: Any, limit: int = 40) -> str:
    if type(value) is int and not -(10**limit) < value < 10**limit:
        return "a number too long to show"  # and too long for repr() past 4300 digits
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        self._boolean: tuple[str, ...] = tuple(
            f.name for f in schema.features if f.kind is FeatureKind.BOOLEAN
        )
        self._declared = {f.name: (f.min, f.max) for f in schema.features}
        self.id_column = schema.id_column
        self.canonicalize = RowCanonicalizer(schema)
        self._categories = {f.name: tuple(f.categories or ()) for f in schema.features}
        self._descriptions = {f.name: f.description for f in schema.features}

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of one row, for clients and fuzzers: a row it accepts, `validate` accepts.

        Numbers and categories are described exactly (but integers of over 256 digits as
        categories); a boolean feature is described by its canonical forms (true/false, 1/0,
        null), while `validate` also takes the spellings of `BOOLEAN_SPELLINGS`.
        """
        properties: dict[str, Any] = {}
        for name, lo, hi in self._numeric:
            properties[name] = {"type": ["number", "null"], "minimum": lo, "maximum": hi}
        for name in self._categorical:
            # A number or a boolean is a category too, in its canonical text (21 and 21.0 are "21").
            properties[name] = {"type": ["string", "number", "boolean", "null"], "maxLength": self._max_len}
            if self._categories.get(name):
                # Any other value is served too (and counted as an unseen category).
                properties[name]["examples"] = list(self._categories[name])
        for name in self._boolean:
            properties[name] = {"anyOf": [{"type": ["boolean", "null"]}, {"enum": [0, 1]}]}
        for name, described in self._descriptions.items():
            if described:
                properties[name]["description"] = described
        return {
            "type": "object",
            "properties": {name: properties[name] for name in self.names},
            "required": list(self.names),
            "additionalProperties": False,
        }

    def validate(self, rows: list[Any]) -> None:
        """Raise ValidationFailed (422) listing every problem of every row; return if all are valid."""
        if not self._all_valid(rows):
            raise ValidationFailed(
                "the request does not match the model's feature schema", self.problems(rows)
            )

    def _all_valid(self, rows: list[Any]) -> bool:
        names, numeric, categorical, max_len = self._name_set, self._numeric, self._categorical, self._max_len
        boolean = self._boolean
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
                t = type(v)
                if t is str:
                    if len(v) > max_len:
                        return False
                elif t is float:
                    # A number is a category in its canonical text (21.0 -> "21"); NaN and inf are not.
                    if v - v != 0:
                        return False
                elif t is int:
                    if not -_LONGEST_INTEGER < v < _LONGEST_INTEGER:
                        return False
                elif not (v is None or t is bool):
                    return False
            for name in boolean:
                v = row[name]
                if v is None or type(v) is bool:
                    continue
                try:
                    canonical_boolean(v)
                except ValueError:
                    return False
        return True

    def canonical_columns(self, rows: list[Any]) -> CanonicalColumns | None:
        """The canonical value columns of `rows` if every row is valid, else None (nothing changed).

        The batch form of `_all_valid` followed by `canonicalize`, with the same outcome: each
        column is checked with a few whole-column operations and each distinct category or
        boolean spelling is checked and canonicalized once. Canonical values that differ from
        what was sent are written back into the rows, which are logged as the model saw them.
        The float arrays that checked the numeric columns come with them, for the encoder.
        """
        if not rows:
            return CanonicalColumns({name: [] for name in self.names}, {})
        # A row holds exactly the features when it is a dict of as many keys that has each of them
        # (itemgetter raises KeyError otherwise): checked at C speed, not key set by key set.
        if set(map(type, rows)) != {dict} or set(map(len, rows)) != {len(self.names)}:
            return None
        try:
            if len(self.names) > 1:
                values = zip(*map(itemgetter(*self.names), rows), strict=True)
                columns = {name: list(column) for name, column in zip(self.names, values, strict=True)}
            else:
                columns = {self.names[0]: list(map(itemgetter(self.names[0]), rows))}
        except KeyError:
            return None
        numbers: dict[str, np.ndarray] = {}
        for name, lo, hi in self._numeric:
            checked = self._numeric_column(columns[name], lo, hi)
            if checked is None:
                return None
            numbers[name] = checked
        rewritten: dict[str, list[Any]] = {}
        for names_of_kind, canonical, equal_numbers_alike in (
            (self._categorical, self._canonical_category, False),
            (self._boolean, _canonical_boolean_or_invalid, True),
        ):
            for name in names_of_kind:
                column = columns[name]
                mapped = _map_distinct(column, canonical, equal_numbers_alike)
                if mapped is None:
                    return None
                if mapped is not column:
                    rewritten[name] = mapped
        # Only now, when the whole request is known to be valid, are the rows touched.
        for name, column in rewritten.items():
            sent = columns[name]
            for row, value, before in zip(rows, column, sent, strict=True):
                if value is not before:
                    row[name] = value
            columns[name] = column
        return CanonicalColumns(columns, numbers)

    def _numeric_column(self, column: list[Any], lo: float, hi: float) -> np.ndarray | None:
        """The column as float64 (NaN where missing) if `_all_valid` would pass each of its values,
        else None: checked for the column at once."""
        types = set(map(type, column))
        if not types <= _NUMBER_TYPES:
            return None  # a bool, a string, an array...: the row loop names it
        missing = column.count(None)
        if missing == len(column):
            return np.full(len(column), np.nan)
        try:
            numbers = np.array(column, dtype=np.float64)
        except OverflowError:
            return None  # an integer beyond any float: out of every range
        present = numbers
        if missing:
            present = numbers[~np.isnan(numbers)]
            if len(present) != len(column) - missing:
                return None  # a NaN was sent (None is the only missing number)
        low, high = float(present.min()), float(present.max())
        if low != low or high != high:
            return None  # a NaN was sent where nothing is missing: min and max are NaN
        if int in types and max(-low, high) >= _EXACT_FLOAT_INTEGERS:
            # The float of a large integer may have rounded onto a bound: compare exactly.
            return numbers if all(v is None or lo <= v <= hi for v in column) else None
        return numbers if lo <= low and high <= hi else None

    def _canonical_category(self, value: Any) -> Any:
        """The canonical text of one category value (None when missing), or `_INVALID`."""
        kind = type(value)
        if kind is str:
            if len(value) > self._max_len:
                return _INVALID
        elif kind is float:
            if value - value != 0:
                return _INVALID
        elif kind is int:
            if not -_LONGEST_INTEGER < value < _LONGEST_INTEGER:
                return _INVALID
        elif not (value is None or kind is bool):
            return _INVALID
        return canonical_category(value)

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
                if v is None or isinstance(v, bool):
                    continue
                if isinstance(v, int):
                    if not -_LONGEST_INTEGER < v < _LONGEST_INTEGER:
                        found.append(problem(i, name, f"category longer than {self._max_len} characters"))
                elif isinstance(v, float):
                    if not math.isfinite(v):
                        found.append(problem(i, name, f"expected a category, got {v}"))
                elif not isinstance(v, str):
                    found.append(
                        problem(i, name, f"expected a string, number or boolean category, got {_describe(v)}")
                    )
                elif len(v) > self._max_len:
                    found.append(problem(i, name, f"category longer than {self._max_len} characters"))
            for name in self._boolean:
                if name not in row or isinstance(row[name], (list, dict)):
                    if name in row:
                        found.append(problem(i, name, f"expected a boolean, got {_describe(row[name])}"))
                    continue
                try:
                    canonical_boolean(row[name])
                except ValueError:
                    found.append(
                        problem(i, name, f"expected a boolean ({BOOLEAN_SPELLINGS}), got {_shown(row[name])}")
                    )
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


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
_NUMBER_LIKE = frozenset({int, float, bool})


def _canonical_boolean_or_invalid(value: Any) -> Any:
    try:
        return canonical_boolean(value)
    except ValueError:
        return _INVALID


def _map_distinct(column: list[Any], canonical: Any, equal_numbers_alike: bool) -> list[Any] | None:
    """`column` with `canonical` applied to each value, computed once per distinct value; None
    if a value is `_INVALID`. Returns `column` itself when every value is its own canonical form.

    True, 1 and 1.0 are equal (and hash alike) in Python. As booleans they are the same value
    (`equal_numbers_alike`); as categories they may differ in validity or canonical text
    (True is "true", 1 is "1"; 2**1000 is too long, 2.0**1000 is not), so a category column
    holding more than one of those types is mapped by type and value.
    """
    types = set(map(type, column))
    if not types <= _SCALAR_TYPES:
        return None  # an array or object is never a category or a boolean
    if equal_numbers_alike or len(types & _NUMBER_LIKE) <= 1:
        distinct: dict[Any, Any] = {}
        for value in set(column):
            result = canonical(value)
            if result is _INVALID:
                return None
            distinct[value] = result
        if all(result is value for value, result in distinct.items()):
            return column
        return list(map(distinct.__getitem__, column))
    typed: dict[tuple[type, Any], Any] = {}
    out = []
    for value in column:
        key = (type(value), value)
        result = typed.get(key, _INVALID)
        if result is _INVALID:
            result = canonical(value)
            if result is _INVALID:
                return None
            typed[key] = result
        out.append(result)
    return out


@dataclass
class Envelope:
    """The parts of a predict request: rows, and the ids and event times the client sent (raw)."""

    rows: list[Any]
    ids: list[Any] | None = None
    event_times: list[Any] | None = None
    # Where ids and times were sent, for messages: "ids"/"event_times" or "id"/"event_time".
    id_field: str = "ids"
    time_field: str = "event_times"


def _envelope_problems(payload: dict[str, Any]) -> list[Problem]:
    if len(payload) == 1 and ("features" in payload or "instances" in payload):
        return []  # the common request: rows only
    batch = "instances" in payload
    own, other = (_BATCH_KEYS, _SINGLE_KEYS) if batch else (_SINGLE_KEYS, _BATCH_KEYS)
    found = []
    for key in sorted(payload, key=str):
        if key in own or key in ("features", "instances"):
            continue
        if key in other:
            hint = f"with '{own[0]}' send '{own[other.index(key)]}'"
            found.append(problem(None, str(key), f"'{key}' belongs with '{other[0]}'; {hint}"))
        else:
            found.append(
                problem(
                    None,
                    str(key),
                    "unknown field: send 'features' (one row, with optional 'id' and 'event_time') "
                    "or 'instances' (a batch, with optional 'ids' and 'event_times')",
                )
            )
    if ("features" in payload) == batch:
        found.append(problem(None, None, "send exactly one of 'features' (one row) or 'instances' (a batch)"))
    return found


def read_envelope(payload: Any, max_rows: int) -> Envelope:
    """The rows of a predict request, and the ids and event times sent with them.

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
    found = _envelope_problems(payload)
    if found:
        raise ValidationFailed("the request envelope is malformed", found)
    if "features" in payload:
        row = payload["features"]
        if not isinstance(row, dict):
            raise ValidationFailed(
                "'features' must be an object",
                [problem(0, "features", f"expected an object of feature values, got {_describe(row)}")],
            )
        # null is the same as leaving the field out, as the OpenAPI document says.
        return Envelope(
            rows=[row],
            ids=None if payload.get("id") is None else [payload["id"]],
            event_times=None if payload.get("event_time") is None else [payload["event_time"]],
            id_field="id",
            time_field="event_time",
        )
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
    found = []
    for key in ("ids", "event_times"):
        value = payload.get(key)
        if value is not None and (not isinstance(value, list) or len(value) != len(rows)):
            what = f"{len(value)} item(s)" if isinstance(value, list) else _describe(value)
            found.append(
                problem(None, key, f"expected an array of one item per row ({len(rows)}), got {what}")
            )
    if found:
        raise ValidationFailed("the request envelope is malformed", found)
    return Envelope(rows=rows, ids=payload.get("ids"), event_times=payload.get("event_times"))


@dataclass(frozen=True)
class PredictRequest:
    """A validated request: canonical-ready rows, and the client's ids and event times if sent."""

    rows: list[dict[str, Any]]
    ids: list[str] | None
    event_times: list[str] | None
    # The rows' canonical values, one list per feature (what the encoder and the flags read).
    columns: dict[str, list[Any]]
    # The numeric columns as float64 arrays, when validation built them (a batch checked by column).
    numbers: dict[str, np.ndarray] = field(default_factory=dict)


class CanonicalColumns(NamedTuple):
    """A valid batch as columns: canonical values per feature, and each numeric one as float64."""

    values: dict[str, list[Any]]
    numbers: dict[str, np.ndarray]


def _take_id_column(envelope: Envelope, id_column: str | None) -> list[Problem]:
    """Move the spec's id column out of the rows into the envelope's ids."""
    if id_column is None:
        return []
    rows = envelope.rows
    if set(map(type, rows)) == {dict} and not any(map(contains, rows, repeat(id_column))):
        return []  # the common request: no row carries the id column (checked at C speed)
    present = [isinstance(row, dict) and id_column in row for row in envelope.rows]
    if not any(present):
        return []
    ids = [row.pop(id_column) if has else None for row, has in zip(envelope.rows, present, strict=True)]
    if envelope.ids is not None:
        return [
            problem(
                None,
                envelope.id_field,
                f"send the ids either in '{envelope.id_field}' or in the id column '{id_column}', not both",
            )
        ]
    if not all(present):
        return [
            problem(i, id_column, "missing id column: send it in every row or in none")
            for i, has in enumerate(present)
            if not has and isinstance(envelope.rows[i], dict)
        ]
    envelope.ids = ids
    envelope.id_field = id_column
    return []


def _id_problems(ids: list[Any], field: str) -> tuple[list[str], list[Problem]]:
    out: list[str] = []
    found: list[Problem] = []
    first_row: dict[str, int] = {}
    for i, raw in enumerate(ids):
        if type(raw) is int and 0 <= raw < 10**MAX_ID_LENGTH:
            text = str(raw)
        elif isinstance(raw, str) and PREDICTION_ID.fullmatch(raw):
            text = raw
        else:
            found.append(
                problem(
                    i,
                    field,
                    f"expected an id of 1 to {MAX_ID_LENGTH} characters A-Z a-z 0-9 _ . : - starting with a "
                    f"letter or digit (or a non-negative integer), got {_shown(raw)}",
                )
            )
            continue
        if text in first_row:
            found.append(problem(i, field, f"id {text!r} is also the id of row {first_row[text]}"))
        else:
            first_row[text] = i
        out.append(text)
    return out, found


def _parse_event_time(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise ValueError(f"expected an ISO 8601 time with a timezone, got {_describe(raw)}")
    text = raw.strip()
    try:
        ts = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 time with a timezone (e.g. 2024-05-01T12:00:00Z), got {_shown(raw)}"
        ) from None
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{_shown(raw)} has no timezone: add Z (UTC) or an offset such as +02:00")
    return ts


def _time_problems(
    times: list[Any], field: str, now: datetime, earliest: datetime, version: int
) -> tuple[list[str], list[Problem]]:
    out: list[str] = []
    found: list[Problem] = []
    latest = now + MAX_CLOCK_SKEW
    for i, raw in enumerate(times):
        try:
            ts = _parse_event_time(raw)
        except ValueError as err:
            found.append(problem(i, field, str(err)))
            continue
        if ts > latest:
            found.append(
                problem(
                    i,
                    field,
                    f"{iso(ts)} is in the future (now {iso(now)}; clocks may differ by "
                    f"{int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes at most)",
                )
            )
        elif ts < earliest:
            found.append(
                problem(
                    i,
                    field,
                    f"{iso(ts)} is before the serving model (version {version}) was registered at "
                    f"{iso(earliest)}; only its lifetime can be replayed",
                )
            )
        else:
            out.append(iso(ts))
    return out, found


def read_request(
    payload: Any,
    validator: RowValidator,
    max_rows: int,
    now: datetime,
    registered_at: datetime,
    version: int,
) -> PredictRequest:
    """Validate a predict request against the serving version; raise one ValidationFailed naming
    every problem of the rows, ids and event times."""
    envelope = read_envelope(payload, max_rows)
    found = _take_id_column(envelope, validator.id_column)
    rows = envelope.rows
    message = "the prediction ids or event times are invalid"
    columns: dict[str, list[Any]] | None = None
    numbers: dict[str, np.ndarray] = {}
    if len(rows) >= COLUMNWISE_MIN_ROWS:
        checked = validator.canonical_columns(rows)
        valid = checked is not None
        if checked is not None:
            columns, numbers = checked
    else:
        valid = validator._all_valid(rows)
    if not valid:
        found = validator.problems(rows) + found
        message = "the request does not match the model's feature schema"
    ids = times = None
    if envelope.ids is not None:
        ids, more = _id_problems(envelope.ids, envelope.id_field)
        found += more
    if envelope.event_times is not None:
        times, more = _time_problems(envelope.event_times, envelope.time_field, now, registered_at, version)
        found += more
    if found:
        raise ValidationFailed(message, found)
    if columns is None:
        validator.canonicalize(rows)
        columns = {name: [row[name] for row in rows] for name in validator.names}
    return PredictRequest(rows=rows, ids=ids, event_times=times, columns=columns, numbers=numbers)
