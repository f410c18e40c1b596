"""Validation of user-editable variables: names, types and typed-in values."""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any

from .errors import ValidationError

USER_TYPES = ("boolean", "integer", "number", "string")
#: Names with a fixed meaning in the ``runs`` view or the table.
RESERVED_NAMES = frozenset({"proposal", "run", "start_time", "added_at", "comment"})
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: The longest text a person may type anywhere: comments, text values, descriptions
#: (far more than a logbook line, far less than a mistake).
MAX_TEXT = 100_000
#: What an SQLite INTEGER holds.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}


def check_text(text: str, what: str = "The text") -> str:
    """``text`` if it can be stored: at most :data:`MAX_TEXT` characters of valid
    Unicode; ValidationError otherwise."""
    if len(text) > MAX_TEXT:
        raise ValidationError(f"{what} has {len(text):,} characters; at most "
                              f"{MAX_TEXT:,} are kept")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} contains characters that are not valid Unicode "
                              "(an unpaired surrogate); remove them") from None
    return text


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValidationError(
            f"{name!r} is not a valid variable name (letters, digits and '_', "
            "not starting with a digit)"
        )
    if name in RESERVED_NAMES:
        raise ValidationError(f"{name!r} is reserved; choose another name")
    return name


def check_type(variable_type: str) -> str:
    if variable_type not in USER_TYPES:
        raise ValidationError(
            f"{variable_type!r} is not a variable type; use one of {', '.join(USER_TYPES)}"
        )
    return variable_type


def coerce_value(variable_type: str, value: Any) -> bool | int | float | str:
    """Convert what a person typed into the stored value of a *variable_type* cell."""
    if variable_type == "string":
        if isinstance(value, str):
            return check_text(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return check_text(str(value))
        raise ValidationError(f"{value!r} is not a string")
    if variable_type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        raise ValidationError(f"{value!r} is not a boolean (use true or false)")
    if variable_type == "integer":
        if isinstance(value, bool):
            raise ValidationError(f"{value!r} is not an integer")
        integer: int | None = None
        if isinstance(value, int):
            integer = value
        elif isinstance(value, float) and value.is_integer():
            integer = int(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                integer = int(value.strip())
        if integer is None:
            raise ValidationError(f"{_short(value)} is not an integer")
        if not INT64_MIN <= integer <= INT64_MAX:
            raise ValidationError(f"{_short(value)} is too large (integers go from "
                                  f"{INT64_MIN} to {INT64_MAX}; use a number column)")
        return integer
    if variable_type == "number":
        if isinstance(value, bool):
            raise ValidationError(f"{value!r} is not a number")
        number: float | int | None = None
        if isinstance(value, (int, float)):
            number = value
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value.strip())
        if number is None:
            raise ValidationError(f"{_short(value)} is not a number")
        if isinstance(number, int) and not INT64_MIN <= number <= INT64_MAX:
            try:
                number = float(number)
            except OverflowError:
                number = math.inf
        if isinstance(number, float) and not math.isfinite(number):
            raise ValidationError(f"{_short(value)} is not a finite number")
        return number
    raise ValidationError(f"{variable_type!r} is not a variable type")


def _short(value: Any) -> str:
    """``repr(value)``, shortened for a message (a typed-in number may be huge)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}… ({len(text)} characters)"
