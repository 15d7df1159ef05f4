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
from typing import Any

import numpy as np
import orjson

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_UNDECIDED = object()
_QUOTE = ord('"')
# From this many bytes on, numpy counts the quotes of a text faster than `bytes.count`.
_COUNTED_BY_NUMPY = 4096


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


def _quotes(data: bytes) -> int:
    """How many double quotes `data` holds: by numpy for a batch's body (five times as fast)."""
    if len(data) < _COUNTED_BY_NUMPY:
        return data.count(b'"')
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == _QUOTE))


def _parse_fast(text: str, data: bytes) -> Any:
    """orjson's value of `text` (`data` in UTF-8; three times as fast) when it is surely what the
    standard parser below returns, else `_UNDECIDED`.

    Without a backslash every quote opens or closes a string and no string holds a quote, so the
    text holds twice as many quotes as strings, and so does orjson's own text of the value; a
    repeated key is a string the value lost, so equal counts mean no key is repeated. orjson reads
    an integer beyond 64 bits as a float, and writes every float from 1e16 on with an exponent
    ("e+"), so a value without one holds no such integer (a text without "+" surely has none, and
    "+" is found far faster than "e+" in text full of "e"s). Its text also refuses what nests
    deeper than 254 levels. What orjson refuses (NaN, what is no JSON) is left to the standard parser.
    """
    if "\\" in text or text.startswith("\ufeff"):
        return _UNDECIDED
    try:
        value = orjson.loads(data)
        written = orjson.dumps(value)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _UNDECIDED
    if _quotes(written) != _quotes(data) or (b"+" in written and b"e+" in written):
        return _UNDECIDED
    return value


def parse(text: str) -> Any:
    """The JSON value of `text`; raises JsonRefused (a ValueError) naming the problem."""
    try:
        # A lone surrogate that reached us unescaped (no UTF-8 decoder produces one) is no text.
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRefused("the body holds a lone UTF-16 surrogate, which is not a character") from None
    value = _parse_fast(text, data)
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
