"""The request parsers every route shares: JSON bodies, version numbers in paths, times."""

from __future__ import annotations

import json

import pytest
from mlops.admin import parse_version
from mlops.errors import ValidationFailed
from mlops.storage import parse_time
from mlops.strict_json import JsonRefused, parse


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        ('{"a": 1, "a": 2}', "duplicate key 'a'", "a"),
        ('{"items": [{"label": 1, "label": 0}]}', "duplicate key 'label'", "label"),
        ("[" * 100_000 + "]" * 100_000, "too deeply", None),
        ('{"o": ' * 100_000 + "1" + "}" * 100_000, "too deeply", None),
        ('{"region": "\\ud800"}', "lone UTF-16 surrogate", "region"),
        ('{"instances": [{}, {"x": ["\\udfff"]}]}', "lone UTF-16 surrogate", "instances[1].x[0]"),
        ('{"\\ud800": 1}', "lone UTF-16 surrogate", "\\ud800"),
        ('"\\ud83d"', "lone UTF-16 surrogate", "(the body)"),
        ("{'a': 1}", "not valid JSON", None),
    ],
)
def test_bodies_the_standard_parser_lets_through_or_crashes_on_are_refused_by_name(text, message, where):
    with pytest.raises(JsonRefused) as caught:
        parse(text)
    assert message in str(caught.value)
    assert caught.value.where == where


def test_an_unescaped_lone_surrogate_in_the_text_is_refused():
    with pytest.raises(JsonRefused, match="lone UTF-16 surrogate"):
        parse('{"region": "\ud800"}')


@pytest.mark.parametrize(
    "value",
    [
        {"features": {"region": "north", "n": 1.5, "m": None}},
        {"emoji": "\U0001f600", "category": "ü"},
        [[[[[[[[[[1]]]]]]]]]],
        {"a": {"a": {"a": 1}}},
    ],
)
def test_valid_documents_parse_as_the_standard_parser_does(value):
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert parse(text) == json.loads(text)


def test_an_escaped_surrogate_pair_is_one_character_and_passes():
    assert parse('{"emoji": "\\ud83d\\ude00"}') == {"emoji": "\U0001f600"}


@pytest.mark.parametrize(("text", "number"), [("1", 1), ("000042", 42), ("999999", 999_999), ("0", 0)])
def test_version_numbers_are_one_to_six_ascii_digits(text, number):
    assert parse_version(text) == number


@pytest.mark.parametrize("text", ["²", "١٢", "1" * 7, "9" * 5000, "-1", "1.0", " 1", "1\n", "", "x"])
def test_anything_else_is_a_422_naming_the_version(text):
    with pytest.raises(ValidationFailed) as caught:
        parse_version(text)
    assert caught.value.status == 422
    (problem,) = caught.value.problems
    assert problem["field"] == "version" and len(problem["problem"]) < 120


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_times_outside_the_representable_utc_range_are_a_value_error(text):
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        parse_time(text)


def test_the_extreme_times_that_exist_in_utc_parse():
    assert parse_time("9999-12-31T23:59:59+01:00").year == 9999
    assert parse_time("0001-01-01T00:00:00-01:00").year == 1
    assert parse_time("9999-12-31T23:59:59Z").isoformat() == "9999-12-31T23:59:59+00:00"
