"""Canonical forms of category, boolean and target values: the one rule training and serving share.

A value reaches the model as text. The same category can arrive as ``21`` (a JSON number),
``"21"`` (a JSON string), ``21.0`` (a CSV column that pandas read as floats because of a
blank) or ``True`` (a pandas boolean). Each is reduced to one canonical text, here and only
here, so that a category seen in training is never unseen at serving because of how it
was typed. The rules (also in the README, "Bring your own model"):

- Missing: ``None``, NaN and the empty string. Nothing else is missing.
- Booleans: ``true``/``false``; the strings "true"/"false" in any case become the same.
- Numbers: an integer, an integral float and a plain decimal string of an integer all become
  the integer's decimal text (``21``, ``21.0``, ``"21"``, ``"21.0"`` -> ``"21"``). Other
  numbers become their shortest decimal text without exponent (``2.50`` -> ``"2.5"``).
- Any other string is kept exactly as given: case, inner and outer spaces, leading zeros
  (``"007"``) and exponents (``"1e3"``) are part of the category.

A boolean feature also reads "yes"/"no", "y"/"n", "t"/"f", "1"/"0" (any case, spaces
around ignored) and the numbers 1/0, and stores ``"true"``/``"false"``.
Numpy only: the serving function imports this.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

TRUE = "true"
FALSE = "false"
BOOLEAN_CATEGORIES = (FALSE, TRUE)
# How a missing category is counted and fed to the model (the empty text, never a category a row may hold).
MISSING_CATEGORY = ""
# Plain decimal notation without a leading "+" or leading zeros ("007" is a code, not 7).
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_NUMBER_START = frozenset("-0123456789")
_BOOLEAN_WORDS = {
    "true": TRUE,
    "false": FALSE,
    "yes": TRUE,
    "no": FALSE,
    "y": TRUE,
    "n": FALSE,
    "t": TRUE,
    "f": FALSE,
    "1": TRUE,
    "0": FALSE,
}
BOOLEAN_SPELLINGS = 'true/false, "yes"/"no", "y"/"n", "t"/"f", 1/0 (any case)'


def _float_text(value: float) -> str:
    if value.is_integer():
        return str(int(value))
    return str(np.format_float_positional(value, unique=True, trim="-"))


def _decimal_text(text: str) -> str:
    whole, _, fraction = text.partition(".")
    if not fraction.strip("0"):
        return str(int(whole))
    return _float_text(float(text))


def canonical_category(value: Any) -> str | None:
    """The canonical text of a category value; None when the value is missing.

    Raises ValueError for what cannot be a category: infinities, arrays, objects.
    """
    if value is None:
        return None
    kind = type(value)
    if kind is str:
        if not value:
            return None
        if value[0] in _NUMBER_START and _DECIMAL.fullmatch(value):
            return _decimal_text(value)
        if len(value) in (4, 5):
            lowered = value.lower()
            if lowered in (TRUE, FALSE):
                return lowered
        return value
    if kind is bool or isinstance(value, np.bool_):
        return TRUE if value else FALSE
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return None
        if math.isinf(number):
            raise ValueError(f"{number} cannot be a category")
        return _float_text(number)
    if isinstance(value, str):
        return canonical_category(str(value))
    raise ValueError(f"a category is a string, number or boolean, not {kind.__name__}")


def canonical_boolean(value: Any) -> str | None:
    """``"true"``/``"false"`` for a boolean value in any accepted spelling; None when missing.

    Raises ValueError naming the accepted spellings for anything else.
    """
    if value is None:
        return None
    if type(value) is bool or isinstance(value, np.bool_):
        return TRUE if value else FALSE
    if isinstance(value, str):
        if not value:
            return None
        text = value.strip()
        word = _BOOLEAN_WORDS.get(text.lower())
        if word is not None:
            return word
        # "1.0"/"0.0": a 0/1 column written out by a program that held it as floats.
        if _DECIMAL.fullmatch(text) and float(text) in (0.0, 1.0):
            return TRUE if float(text) else FALSE
    elif isinstance(value, (int, float, np.integer, np.floating)):
        if isinstance(value, (float, np.floating)) and math.isnan(value):
            return None
        if value == 1:
            return TRUE
        if value == 0:
            return FALSE
    shown = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else "a long number"
    raise ValueError(f"{shown[:40]} is not a boolean; use {BOOLEAN_SPELLINGS}")
