"""The column-by-column check of large requests answers exactly as the row-by-row check does.

A batch from `COLUMNWISE_MIN_ROWS` rows on is validated and canonicalized a column at a time;
smaller ones row by row. Whichever path a request takes, the client must get the same 4xx
(same message, same problems) or the same canonical values, and the log the same rows. Here
both paths answer the same generated batches: mixed valid and invalid rows, booleans in every
spelling, categories that look like numbers, missing values, and the values where Python's
equality is looser than ours (True == 1 == 1.0, 2**1000 == 2.0**1000, NaN != NaN).
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from mlops.model.schema import FeatureField, FeatureSchema, encode_columns
from mlops.model.spec import FeatureKind
from mlops.serving import validation
from mlops.serving.validation import RowValidator, read_request
from mlops.shared.errors import ValidationFailed

SCHEMA = FeatureSchema(
    model_name="m",
    target="y",
    features=[
        FeatureField(name="age", kind=FeatureKind.NUMERIC, min=0, max=120),
        FeatureField(name="income", kind=FeatureKind.NUMERIC),
        FeatureField(name="big", kind=FeatureKind.NUMERIC, min=-(2.0**60), max=2.0**60),
        FeatureField(name="plan", kind=FeatureKind.CATEGORICAL, categories=["a", "b", "21"]),
        FeatureField(name="code", kind=FeatureKind.CATEGORICAL),
        FeatureField(name="is member", kind=FeatureKind.BOOLEAN, categories=["false", "true"]),
    ],
)
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
REGISTERED = datetime(2024, 1, 1, tzinfo=UTC)

VALID_NUMBERS = [0, 1, 30, 120, 0.5, 119.99, -0.0, None]
INVALID_AGES = [-1, 120.5, 121, "30", True, False, float("nan"), float("inf"), 10**400, [1], {"a": 1}]
# Integers beyond 2**53 round when made floats: one past a bound must still be refused.
BIG = [2**60, -(2**60), 2**53 + 1, 2**59 + 1, 2.0**60, None, 7]
INVALID_BIG = [2**60 + 1, -(2**60) - 1, 2**61, 2.0**61, 1e300]
CATEGORIES = [
    "a",
    "b",
    "new",
    "",
    None,
    "21",
    21,
    21.0,
    "21.0",
    "007",
    "1e3",
    2.50,
    "2.5",
    "-0",
    -0.0,
    True,
    False,
    "TRUE",
    "False",
    " a ",
    "x" * 256,
    2.0**1000,
    -(10**256) + 1,
]
INVALID_CATEGORIES = [2**1000, 10**256, "x" * 257, float("nan"), float("inf"), [1], {"a": 1}]
BOOLEANS = [
    True,
    False,
    1,
    0,
    1.0,
    0.0,
    "yes",
    "No",
    " y ",
    "T",
    "f",
    "1",
    "0",
    "1.0",
    "",
    None,
    float("nan"),
]
INVALID_BOOLEANS = [2, 0.5, "maybe", "2", "1e0", [True], {"t": 1}, float("inf")]


def _row(rng: random.Random, invalid_rate: float) -> Any:
    def pick(good: list[Any], bad: list[Any]) -> Any:
        return rng.choice(bad) if bad and rng.random() < invalid_rate else rng.choice(good)

    row: dict[str, Any] = {
        "age": pick(VALID_NUMBERS, INVALID_AGES),
        "income": pick([*VALID_NUMBERS, 1e308, -1e308, 10**300], [float("-inf"), "1", 10**309]),
        "big": pick(BIG, INVALID_BIG),
        "plan": pick(CATEGORIES, INVALID_CATEGORIES),
        "code": pick(CATEGORIES, INVALID_CATEGORIES),
        "is member": pick(BOOLEANS, INVALID_BOOLEANS),
    }
    roll = rng.random()
    if roll < invalid_rate / 4:
        del row[rng.choice(list(row))]
    elif roll < invalid_rate / 2:
        row["extra"] = 1
    elif roll < invalid_rate * 0.6:
        return rng.choice([None, [], "row", 3])
    return row


def _answer(payload: dict[str, Any], columnwise: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What the client and the log get: the error, or the canonical rows and columns (types kept)."""
    monkeypatch.setattr(validation, "COLUMNWISE_MIN_ROWS", 1 if columnwise else 10**9)
    payload = copy.deepcopy(payload)
    try:
        request = read_request(payload, RowValidator(SCHEMA), 1000, NOW, REGISTERED, 1)
    except ValidationFailed as err:
        return ("error", err.status, str(err), err.problems)
    typed_rows = [[(k, type(v), repr(v)) for k, v in row.items()] for row in request.rows]
    typed_columns = {k: [(type(v), repr(v)) for v in col] for k, col in request.columns.items()}
    # The column path hands the encoder the float arrays it checked; the row path has none: the
    # model must get the very same inputs (compared as bytes, so NaN equals NaN).
    feeds = encode_columns(request.columns, SCHEMA, np.float32, request.numbers)
    inputs = {
        k: (a.dtype.str, a.shape, a.tobytes() if a.dtype != object else a.tolist()) for k, a in feeds.items()
    }
    return ("ok", typed_rows, typed_columns, request.ids, inputs)


@pytest.mark.parametrize("invalid_rate", [0.0, 0.02, 0.3])
def test_both_paths_answer_generated_batches_alike(
    invalid_rate: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(7)
    outcomes = set()
    for _ in range(150):
        rows = [_row(rng, invalid_rate) for _ in range(rng.choice([1, 2, 9, 40]))]
        payload: dict[str, Any] = {"instances": rows}
        if rng.random() < 0.2:
            payload["ids"] = [f"id-{i}" for i in range(len(rows))]
        # given one batch, when both paths read it, then client and log see the same thing
        columnwise = _answer(payload, True, monkeypatch)
        rowwise = _answer(payload, False, monkeypatch)
        assert columnwise == rowwise, payload
        outcomes.add(columnwise[0])
    # the generated batches exercised both outcomes where invalid rows were mixed in
    assert outcomes == ({"ok"} if invalid_rate == 0 else {"ok", "error"})


@pytest.mark.parametrize(
    ("column", "values"),
    [
        # equal in Python, different to us: each value's own verdict and canonical text
        ("code", [True, 1, 1.0]),
        ("code", [1.0, True, 1]),
        ("code", [2.0**1000, 2**1000]),
        ("code", [2**1000, 2.0**1000]),
        ("code", [0, False, -0.0, "0"]),
        ("is member", [1, True, 1.0, "1", "true"]),
        ("is member", [float("nan"), None, ""]),
        ("age", [2**53, 2**53 + 1, 120]),
        ("big", [2**60 + 1]),
        ("big", [float(2**60), 2**60]),
        ("income", [None, None]),
        ("age", [float("nan"), None]),
    ],
)
def test_values_python_conflates_are_judged_one_by_one(
    column: str, values: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {"age": 30, "income": 1.5, "big": 0, "plan": "a", "code": "c", "is member": True}
    payload = {"instances": [{**base, column: v} for v in values]}
    assert _answer(payload, True, monkeypatch) == _answer(payload, False, monkeypatch)


def test_canonical_values_replace_what_was_sent_in_the_logged_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a batch large enough for the column path, with non-canonical spellings
    monkeypatch.setattr(validation, "COLUMNWISE_MIN_ROWS", 2)
    rows = [
        {"age": 30, "income": None, "big": 1, "plan": 21.0, "code": "", "is member": "YES"},
        {"age": 1.5, "income": 2, "big": 2, "plan": "a", "code": True, "is member": 0},
    ]
    # when it is read
    request = read_request({"instances": rows}, RowValidator(SCHEMA), 1000, NOW, REGISTERED, 1)
    # then rows and columns hold the canonical values, numbers as sent
    assert request.rows == [
        {"age": 30, "income": None, "big": 1, "plan": "21", "code": None, "is member": "true"},
        {"age": 1.5, "income": 2, "big": 2, "plan": "a", "code": "true", "is member": "false"},
    ]
    assert request.columns["plan"] == ["21", "a"]
    assert request.columns["is member"] == ["true", "false"]
    assert request.columns["age"] == [30, 1.5]
    # and the numeric columns come as the float arrays that were checked, for the encoder
    assert set(request.numbers) == {"age", "income", "big"}
    assert np.array_equal(request.numbers["income"], [np.nan, 2.0], equal_nan=True)
