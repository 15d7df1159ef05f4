"""Request validation against a feature schema: every problem named, valid rows untouched."""

from __future__ import annotations

import sys

import jsonschema_rs
import pytest
from mlops.model.schema import FeatureField, FeatureSchema
from mlops.model.spec import FeatureKind
from mlops.serving.validation import RowValidator, read_envelope
from mlops.shared.errors import ValidationFailed

SCHEMA = FeatureSchema(
    model_name="m",
    target="y",
    features=[
        FeatureField(name="age", kind=FeatureKind.NUMERIC, min=0, max=120),
        FeatureField(name="income", kind=FeatureKind.NUMERIC),
        FeatureField(name="plan", kind=FeatureKind.CATEGORICAL, categories=["a", "b"]),
        FeatureField(name="is member", kind=FeatureKind.BOOLEAN, categories=["false", "true"]),
    ],
)
GOOD = {"age": 30, "income": 1234.5, "plan": "a", "is member": True}


def problems_of(rows):
    with pytest.raises(ValidationFailed) as err:
        RowValidator(SCHEMA).validate(rows)
    assert err.value.status == 422
    return [(p["row"], p["field"]) for p in err.value.problems]


def test_valid_rows_pass_including_nulls_and_unseen_categories():
    RowValidator(SCHEMA).validate(
        [
            GOOD,
            {"age": None, "income": None, "plan": None, "is member": None},
            {**GOOD, "plan": "new"},
            # Numbers and booleans are categories in their canonical text; booleans have spellings.
            {**GOOD, "plan": 21, "is member": "yes"},
            {**GOOD, "plan": 21.0, "is member": 0},
            {**GOOD, "plan": True, "is member": "FALSE"},
        ]
    )


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({**GOOD, "age": "30"}, "age"),
        ({**GOOD, "age": True}, "age"),
        ({**GOOD, "age": False}, "age"),
        ({**GOOD, "age": -1}, "age"),
        ({**GOOD, "age": 120.5}, "age"),
        ({**GOOD, "income": float("nan")}, "income"),
        ({**GOOD, "income": float("inf")}, "income"),
        ({**GOOD, "income": float("-inf")}, "income"),
        ({**GOOD, "income": [1]}, "income"),
        ({**GOOD, "plan": [1]}, "plan"),
        ({**GOOD, "plan": {"a": 1}}, "plan"),
        ({**GOOD, "plan": float("nan")}, "plan"),
        ({**GOOD, "plan": float("inf")}, "plan"),
        ({**GOOD, "plan": "x" * 257}, "plan"),
        ({**GOOD, "is member": "maybe"}, "is member"),
        ({**GOOD, "is member": 2}, "is member"),
        ({**GOOD, "is member": [True]}, "is member"),
        # Integers too long for a category, or for Python to print (past 4300 digits)
        ({**GOOD, "plan": 10**300}, "plan"),
        ({**GOOD, "is member": 10**5000}, "is member"),
        ({"age": 1, "income": 2, "is member": False}, "plan"),
        ({**GOOD, "extra": 1}, "extra"),
    ],
)
def test_each_kind_of_bad_value_is_named(row, field):
    assert problems_of([GOOD, row]) == [(1, field)]


def test_every_problem_of_every_row_is_listed_in_order():
    rows = [
        {"age": "x", "plan": [2], "is member": True, "zzz": 1},
        GOOD,
        "not a row",
        {**GOOD, "income": float("nan")},
    ]
    assert problems_of(rows) == [(0, "income"), (0, "age"), (0, "plan"), (0, "zzz"), (2, None), (3, "income")]


def test_declared_bounds_are_inclusive():
    RowValidator(SCHEMA).validate([{**GOOD, "age": 0}, {**GOOD, "age": 120}])


def test_the_fast_check_agrees_with_the_descriptive_one():
    validator = RowValidator(SCHEMA)
    candidates = [
        None,
        True,
        0,
        -1,
        1,
        2,
        1.5,
        121,
        float("nan"),
        float("inf"),
        "a",
        "",
        "new",
        "yes",
        "1.0",
        10**300,
        [],
        {},
    ]
    for field in ("age", "income", "plan", "is member"):
        for value in candidates:
            row = {**GOOD, field: value}
            assert validator._all_valid([row]) == (validator.problems([row]) == []), (field, value)


@pytest.mark.parametrize(
    ("payload", "status", "where"),
    [
        ([GOOD], 422, [(None, None)]),
        ({}, 422, [(None, None)]),
        ({"features": GOOD, "instances": [GOOD]}, 422, [(None, None)]),
        ({"features": GOOD, "extra": 1}, 422, [(None, "extra")]),
        ({"features": [GOOD]}, 422, [(0, "features")]),
        ({"instances": GOOD}, 422, [(None, "instances")]),
        ({"instances": []}, 422, [(None, "instances")]),
        ({"instances": [GOOD] * 4}, 413, [(None, "instances")]),
    ],
)
def test_malformed_envelopes(payload, status, where):
    with pytest.raises(ValidationFailed) as err:
        read_envelope(payload, max_rows=3)
    assert err.value.status == status
    assert [(p["row"], p["field"]) for p in err.value.problems] == where


def test_envelopes_give_rows_in_order():
    assert read_envelope({"features": GOOD}, 3).rows == [GOOD]
    rows = [GOOD, {**GOOD, "age": 1}, {**GOOD, "age": 2}]
    assert read_envelope({"instances": rows}, 3).rows == rows


def test_the_served_row_schema_accepts_exactly_the_rows_the_validator_accepts():
    # The JSON Schema clients and fuzzers build rows from is checked by an independent validator.
    validator = RowValidator(SCHEMA)
    schema = jsonschema_rs.validator_for(validator.json_schema())
    candidates = [None, True, False, 0, -1, 1.5, 120, 120.5, 121, -1e308, 1e308, "a", "", "new", "x" * 256]
    candidates += ["x" * 257, "ü" * 256, [], {}, [1], {"a": 1}]
    rows = [{**GOOD, field: value} for field in ("age", "income", "plan") for value in candidates]
    rows += [{"age": 1, "income": 2}, {**GOOD, "extra": 1}, {}]
    for row in rows:
        assert schema.is_valid(row) == validator._all_valid([row]), row
    # A boolean feature is described by its canonical forms: every row the schema admits is served.
    booleans = [{**GOOD, "is member": value} for value in candidates]
    for row in booleans:
        if schema.is_valid(row):
            assert validator._all_valid([row]), row
    assert [schema.is_valid(r) for r in booleans].count(True) == 4  # null, true, false and 0


def test_the_served_row_schema_names_types_ranges_and_categories():
    row = RowValidator(SCHEMA).json_schema()
    assert row["required"] == ["age", "income", "plan", "is member"] and row["additionalProperties"] is False
    assert row["properties"]["age"] == {"type": ["number", "null"], "minimum": 0, "maximum": 120}
    assert row["properties"]["income"]["maximum"] == sys.float_info.max
    assert row["properties"]["plan"]["examples"] == ["a", "b"]
    assert row["properties"]["plan"]["maxLength"] == 256
