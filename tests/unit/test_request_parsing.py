"""The request parsers every route shares: JSON bodies, version numbers in paths, times."""

from __future__ import annotations

import json

import pytest
from mlops.cloud.storage import parse_time
from mlops.model.admin import parse_version
from mlops.shared.errors import ValidationFailed
from mlops.shared.strict_json import JsonRefused, parse


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


def _reference(text: str) -> object:
    """The standard library alone, refusing repeated keys: what `parse` must agree with."""

    def unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
        if len({k for k, _ in pairs}) != len(pairs):
            raise ValueError("repeated key")
        return dict(pairs)

    try:
        return ("value", json.loads(text, object_pairs_hook=unique))
    except (ValueError, RecursionError):
        return ("refused", None)


def _outcome(text: str) -> object:
    try:
        return ("value", parse(text))
    except JsonRefused:
        return ("refused", None)


def _typed(value: object) -> object:
    """`value` with each number's type kept, so that 1 and 1.0 (and -0.0 and 0) differ."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, repr(value))


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"b":{"a":2,"c":[1,{"d":"x","d":"y"}]}}',
        '{"a":1,"b":2,"a":3}',
        '{"a": 1 , "a" : 1}',
        '[{"k":":"},{"k":"\\":"}]',
        '{"":1,"":2}',
        '{"instances":[{"x":1,"y":"a"},{"x":2,"y":"b","y":"c"}]}',
        '{"x": NaN}',
        '{"x": Infinity, "y": -Infinity}',
        '{"x": 1e400, "y": -1e400, "z": 1e-400}',
        '{"big": 123456789012345678901234567890, "neg": -18446744073709551617}',
        '{"f": 0.1000000000000000055511151231257827, "g": 2.2250738585072011e-308, "h": -0.0, "i": -0}',
        '{"e": 1E5, "E": 1e+5, "n": 4.9406564584124654e-324}',
        '"a \u00e9 string"',
        '"plain"',
        "12",
        "123456789012345678901234567890",
        "[1e19, -9223372036854775809, 18446744073709551615]",
        "null",
        "\ufeff{}",
        '{"a": "tab\there"}',
        '{"a": "raw\ncontrol"}',
        '{"a": 1,}',
        '{"a": "raw\ttab", "b": "raw\nline", "c": "raw\x00nul"}',
        '{"a": "\u2028 line separator \u00a0"}',
        "[1, 2,]",
        "",
        "   ",
        '{"a": 1} {"b": 2}',
        '{"a": [' * 70 + "1" + "]}" * 70,
        "[" * 63 + "]" * 63,
        "[" * 300 + "]" * 300,
        '{"note": "a string with e+ in it", "n": 1e15}',
    ],
)
def test_every_text_parses_or_is_refused_as_the_standard_parser_decides(text):
    # Given a text the fast path may or may not take
    # When it is parsed
    # Then the outcome (the value, numbers' types included, or a refusal) is the standard parser's
    mine, reference = _outcome(text), _reference(text)
    assert mine[0] == reference[0]
    assert _typed(mine[1]) == _typed(reference[1])


def test_a_large_batch_of_random_numbers_parses_to_the_very_same_floats():
    import random

    rng = random.Random(7)
    rows = [
        {
            "x": rng.uniform(-1e6, 1e6),
            "t": rng.random() * 10 ** rng.randint(-300, 300),
            "n": rng.randint(-9, 9),
        }
        for _ in range(2_000)
    ]
    text = json.dumps({"instances": rows})
    spelled = text.replace("e-", "E-").replace('"n": 1', '"n": 1.0')
    for body in (text, spelled):
        assert _typed(parse(body)) == _typed(json.loads(body))


_ROW = '{"n": 12, "x": 70.5, "plan": "month-to-month", "pay": "electronic-check", "ok": "yes"}'


@pytest.mark.parametrize(
    "last",
    [
        _ROW,
        '{"n": 12, "x": 70.5, "plan": "a", "plan": "b", "ok": "yes"}',
        '{"n": 123456789012345678901234567890, "x": 70.5, "plan": "a", "pay": "b", "ok": "yes"}',
        '{"n": 123456789012345678901234567890, "x": 70.5, "plan": "a+b", "pay": "b", "ok": "yes"}',
        '{"n": 12, "x": 1e+16, "plan": "a+b", "pay": "b", "ok": "yes"}',
        '{"n": 12, "x": 70.5, "plan": "a+b", "pay": "e+", "ok": "yes"}',
        '{"n": 12, "x": 70.5, "plan": "\\"quoted\\"", "pay": "b", "ok": "yes"}',
        '{"n": 12, "x": NaN, "plan": "a", "pay": "b", "ok": "yes"}',
    ],
)
def test_a_batch_large_enough_for_numpy_to_count_its_quotes_decides_as_the_standard_parser(last):
    # Given a batch of a thousand rows, each key once, its last row as given
    text = '{"instances": [' + ", ".join([_ROW] * 999 + [last]) + "]}"
    assert len(text) > 80_000
    # When it is parsed, then the outcome is the standard parser's, numbers' types included
    mine, reference = _outcome(text), _reference(text)
    assert mine[0] == reference[0]
    assert _typed(mine[1]) == _typed(reference[1])


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
