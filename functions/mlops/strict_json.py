"""Parse a request body into a JSON value, refusing what `json.loads` lets through.

Three things the standard parser lets through or crashes on: the same key twice (the last
one would silently win), nesting deep enough to exhaust the parser's recursion guard, and an
escaped lone UTF-16 surrogate (``"\\ud800"``), which is no character and fails every later
attempt to encode it as UTF-8 (in S3, DynamoDB or a log line). Each is refused here with an
error that says what and where. Nesting within the guard is left to each route's shape
check, which refuses an array or object wherever it expects a value.
"""

from __future__ import annotations

import json
import re
from itertools import chain, compress, repeat
from operator import is_
from typing import Any

import orjson

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# Deeper values are parsed by the standard parser alone, which refuses what nests too deeply.
_FAST_DEPTH = 64
_UNDECIDED = object()
# No float this large is taken from orjson: it may be an integer literal too long for 64 bits.
_INT64 = 2.0**63


class JsonRefused(ValueError):
    """The text is not a JSON document we accept; `where` names the key or path when known."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRefused(f"duplicate key {_printable(key)!r} in an object", where=_printable(key))
            seen.add(key)
    return obj


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _first_unencodable(value: Any) -> str | None:
    """The path of the first key or string holding a lone surrogate (escaped for display), or None."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        node, path = pending.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return path or "(the body)"
        elif isinstance(node, dict):
            for key, item in reversed(node.items()):
                inner = f"{path}.{_printable(key)}" if path else _printable(key)
                pending.extend(((item, inner), (key, inner)))
        elif isinstance(node, list):
            pending.extend((item, f"{path}[{i}]") for i, item in reversed(list(enumerate(node))))
    return None


def _strings_in(value: Any) -> int | None:
    """How many strings (keys included) `value` holds; None when it nests deeper than `_FAST_DEPTH`
    or holds a float of an integer's size beyond 64 bits (orjson reads such an integer as a float).
    Walked a level at a time, each level's values typed and compared at C speed."""
    if type(value) is float and abs(value) >= _INT64:
        return None
    strings = 1 if type(value) is str else 0
    level = [value]
    for _ in range(_FAST_DEPTH):
        objects = [node for node in level if type(node) is dict]
        strings += sum(map(len, objects))
        children = list(
            chain(
                chain.from_iterable(map(dict.values, objects)),
                chain.from_iterable(node for node in level if type(node) is list),
            )
        )
        kinds = list(map(type, children))
        strings += kinds.count(str)
        if kinds.count(float) and max(map(abs, compress(children, map(is_, kinds, repeat(float))))) >= _INT64:
            return None
        if not kinds.count(dict) + kinds.count(list):
            return strings
        level = [child for child, kind in zip(children, kinds, strict=True) if kind is dict or kind is list]
    return None


def _parse_fast(text: str) -> Any:
    """orjson's value of `text` (three times as fast) when it is surely what the standard parser
    below returns, else `_UNDECIDED`.

    Without a backslash every quote opens or closes a string and no escape can hide one, so
    the text holds twice as many quotes as strings; a repeated key is one string the value does
    not hold, so equal counts mean no key is repeated. What orjson refuses (NaN, integers beyond
    64 bits, what is no JSON) and what nests deeper than the standard parser may go are left to it.
    """
    if "\\" in text or text.startswith("\ufeff"):
        return _UNDECIDED
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _UNDECIDED
    strings = _strings_in(value)
    if strings is None or text.count('"') != 2 * strings:
        return _UNDECIDED
    return value


def parse(text: str) -> Any:
    """The JSON value of `text`; raises JsonRefused (a ValueError) naming the problem."""
    try:
        # A lone surrogate that reached us unescaped (no UTF-8 decoder produces one) is no text.
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRefused("the body holds a lone UTF-16 surrogate, which is not a character") from None
    value = _parse_fast(text)
    if value is not _UNDECIDED:
        return value
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        # The C parser guards its own recursion; what it cannot nest, nothing after it needs.
        raise JsonRefused("the JSON nests arrays or objects too deeply to be parsed") from None
    except JsonRefused:
        raise
    except json.JSONDecodeError as err:
        raise JsonRefused(f"not valid JSON: {err}") from None
    if _SURROGATE_ESCAPE.search(text) and (where := _first_unencodable(value)):
        # Escaped pairs decode to one character and pass; only a lone half remains unencodable.
        raise JsonRefused("a string holds a lone UTF-16 surrogate escape, which is not a character", where)
    return value
