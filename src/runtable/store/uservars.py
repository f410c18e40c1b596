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
_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}


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
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
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
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValidationError(f"{value!r} is not an integer")
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
            raise ValidationError(f"{value!r} is not a number")
        if isinstance(number, float) and not math.isfinite(number):
            raise ValidationError(f"{value!r} is not a finite number")
        return number
    raise ValidationError(f"{variable_type!r} is not a variable type")
