"""Request validation against a feature schema: every problem named, valid rows untouched."""

from __future__ import annotations

import pytest
from mlops.errors import ValidationFailed
from mlops.schema import FeatureField, FeatureSchema
from mlops.serving.validation import COLUMN_CHECK_MIN_ROWS, RowValidator, rows_of_request
from mlops.spec import FeatureKind

SCHEMA = FeatureSchema(
    model_name="m",
    target="y",
    features=[
        FeatureField(name="age", kind=FeatureKind.NUMERIC, min=0, max=120),
        FeatureField(name="income", kind=FeatureKind.NUMERIC),
        FeatureField(name="plan", kind=FeatureKind.CATEGORICAL, categories=["a", "b"]),
    ],
)
GOOD = {"age": 30, "income": 1234.5, "plan": "a"}


def problems_of(rows):
    with pytest.raises(ValidationFailed) as err:
        RowValidator(SCHEMA).validate(rows)
    assert err.value.status == 422
    return [(p["row"], p["field"]) for p in err.value.problems]


def test_valid_rows_pass_including_nulls_and_unseen_categories():
    RowValidator(SCHEMA).validate(
        [GOOD, {"age": None, "income": None, "plan": None}, {**GOOD, "plan": "new"}]
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
        ({**GOOD, "plan": 1}, "plan"),
        ({**GOOD, "plan": True}, "plan"),
        ({**GOOD, "plan": "x" * 257}, "plan"),
        ({"age": 1, "income": 2}, "plan"),
        ({**GOOD, "extra": 1}, "extra"),
    ],
)
def test_each_kind_of_bad_value_is_named(row, field):
    assert problems_of([GOOD, row]) == [(1, field)]


def test_every_problem_of_every_row_is_listed_in_order():
    rows = [{"age": "x", "plan": 2, "zzz": 1}, GOOD, "not a row", {**GOOD, "income": float("nan")}]
    assert problems_of(rows) == [(0, "income"), (0, "age"), (0, "plan"), (0, "zzz"), (2, None), (3, "income")]


def test_declared_bounds_are_inclusive():
    RowValidator(SCHEMA).validate([{**GOOD, "age": 0}, {**GOOD, "age": 120}])


def test_the_fast_check_agrees_with_the_descriptive_one():
    validator = RowValidator(SCHEMA)
    candidates = [None, True, 0, -1, 1.5, 121, float("nan"), float("inf"), 10**400, "a", "", "new", [], {}]
    for field in ("age", "income", "plan"):
        for value in candidates:
            row = {**GOOD, field: value}
            # alone, among a few valid rows, and in a batch (checked a column at a time)
            for rows in ([row], [GOOD, row, {**GOOD, "age": None}], [GOOD] * COLUMN_CHECK_MIN_ROWS + [row]):
                fast = validator._valid_columns(rows) is not None
                assert fast == (validator.problems(rows) == []), (field, value, len(rows))


def test_columns_hold_every_rows_value_in_order():
    rows = [GOOD, {"age": None, "income": 7, "plan": "new"}]
    assert RowValidator(SCHEMA).columns(rows) == {
        "age": (30, None),
        "income": (1234.5, 7),
        "plan": ("a", "new"),
    }
    batch = rows * COLUMN_CHECK_MIN_ROWS
    assert RowValidator(SCHEMA).columns(batch)["age"] == (30, None) * COLUMN_CHECK_MIN_ROWS


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
        rows_of_request(payload, max_rows=3)
    assert err.value.status == status
    assert [(p["row"], p["field"]) for p in err.value.problems] == where


def test_envelopes_give_rows_in_order():
    assert rows_of_request({"features": GOOD}, 3) == [GOOD]
    rows = [GOOD, {**GOOD, "age": 1}, {**GOOD, "age": 2}]
    assert rows_of_request({"instances": rows}, 3) == rows
