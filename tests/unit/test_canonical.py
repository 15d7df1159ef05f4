"""Canonical forms: one text per category or boolean, whichever type carried it, at training and serving."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlops.model.canonical import canonical_boolean, canonical_category
from mlops.model.schema import FeatureField, FeatureSchema, canonicalize_rows
from mlops.model.spec import FeatureKind, parse_spec
from mlops.model.training import feature_frame, read_csv_text


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([21, "21", 21.0, "21.0", "21.000", np.int64(21), np.float64(21.0), np.float32(21.0)], "21"),
        ([2.5, "2.5", "2.50", np.float64(2.5)], "2.5"),
        ([0.1, "0.1", "0.10"], "0.1"),
        ([1e-05, "0.00001"], "0.00001"),
        ([-3, "-3", -3.0], "-3"),
        ([0, -0.0, "-0", "0.0"], "0"),
        ([True, np.bool_(True), "true", "TRUE", "True"], "true"),
        ([False, "false", "False"], "false"),
        ([1e20, "100000000000000000000"], "100000000000000000000"),
    ],
)
def test_one_value_typed_many_ways_is_one_category(values, expected):
    assert {canonical_category(v) for v in values} == {expected}


@pytest.mark.parametrize("text", ["007", "+5", "1e3", " 21", "21 ", "Yes", "NA", "None", "north", ".5", "5."])
def test_other_strings_are_kept_exactly_as_given(text):
    assert canonical_category(text) == text


@pytest.mark.parametrize("missing", [None, "", float("nan"), np.nan, np.float32("nan")])
def test_missing_is_none_null_nan_or_empty_and_nothing_else(missing):
    assert canonical_category(missing) is None
    assert canonical_boolean(missing) is None


@pytest.mark.parametrize("bad", [float("inf"), -math.inf, [1], {"a": 1}])
def test_what_cannot_be_a_category_is_refused(bad):
    with pytest.raises(ValueError):
        canonical_category(bad)


@pytest.mark.parametrize(
    ("spellings", "expected"),
    [
        ([True, "true", "TRUE", "yes", "Yes", " y ", "T", "1", 1, 1.0, "1.0", np.bool_(True)], "true"),
        ([False, "false", "No", "n", "f", "0", 0, 0.0, "0.0"], "false"),
    ],
)
def test_boolean_spellings(spellings, expected):
    assert {canonical_boolean(v) for v in spellings} == {expected}


@pytest.mark.parametrize("bad", ["maybe", 2, -1, "2", "ja", [True]])
def test_a_value_that_is_no_boolean_is_refused_naming_the_spellings(bad):
    with pytest.raises(ValueError, match="yes"):
        canonical_boolean(bad)


scalars = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=False, width=64),
    st.booleans(),
    st.text(max_size=12),
    st.from_regex(r"-?(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?", fullmatch=True),
)


@given(scalars)
def test_the_canonical_form_is_a_fixed_point(value):
    text = canonical_category(value)
    assert canonical_category(text) == text


plain_numbers = st.one_of(
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: "e" not in json.dumps(x)),
)


@given(plain_numbers)
def test_a_number_and_its_json_text_are_the_same_category(number):
    # What a client sends as a number, another sends as the number's text (plain notation: the
    # documented rule keeps "1e+16" as text, as a code like "1E3" must be).
    assert canonical_category(number) == canonical_category(json.dumps(number))


def test_training_and_serving_agree_on_a_csv_that_pandas_would_read_as_floats():
    # given a category column with a blank, which makes pandas read 1, 21 as 1.0, 21.0
    csv_text = "store,member,y\n1,True,0\n,False,1\n21,True,0\n021,False,1\n"
    spec = parse_spec(
        {
            "name": "m",
            "target": "y",
            "features": [{"name": "store", "kind": "categorical"}, {"name": "member", "kind": "boolean"}],
        }
    )
    typed = pd.read_csv(io.StringIO(csv_text))
    assert typed["store"].dtype == np.float64  # the trap: pandas' default reading

    # when training reads it (as text, or typed as pandas would) and serving gets JSON rows
    from_text = feature_frame(read_csv_text(io.StringIO(csv_text)), spec)
    from_typed = feature_frame(typed, spec)
    rows = [{"store": 1, "member": True}, {"store": None, "member": "no"}, {"store": 21.0, "member": "yes"}]
    schema = FeatureSchema(
        model_name="m",
        target="y",
        features=[
            FeatureField(name="store", kind=FeatureKind.CATEGORICAL),
            FeatureField(name="member", kind=FeatureKind.BOOLEAN),
        ],
    )
    canonicalize_rows(rows, schema)

    # then every path gives the same text; only the file keeps "021" as written
    assert from_text["store"].tolist() == ["1", "", "21", "021"]
    assert from_typed["store"].tolist() == ["1", "", "21", "21"]
    assert [r["store"] for r in rows] == ["1", None, "21"]
    assert from_text["member"].tolist() == from_typed["member"].tolist() == ["true", "false", "true", "false"]
    assert [r["member"] for r in rows] == ["true", "false", "true"]


@given(st.lists(st.one_of(scalars, st.none()), min_size=1, max_size=5))
def test_the_serving_shortcut_gives_exactly_the_canonical_form(values):
    # The serving path skips values it can tell are canonical already; it must never skip others.
    from mlops.model.schema import RowCanonicalizer

    schema = FeatureSchema(
        model_name="m", target="y", features=[FeatureField(name="c", kind=FeatureKind.CATEGORICAL)]
    )
    rows = [{"c": v} for v in values]
    RowCanonicalizer(schema)(rows)
    assert [r["c"] for r in rows] == [canonical_category(v) for v in values]
