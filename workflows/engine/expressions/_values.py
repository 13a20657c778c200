"""Value rules shared by the expression runtimes: Go-like typing, equality and time parsing."""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["MAX_SIZE", "bounded", "is_number", "parse_time", "repeat_text", "type_name", "values_equal"]

# Largest list or text an expression may build (repeat, ranges): a typo must not exhaust the engine's memory.
MAX_SIZE = 10_000_000


def bounded(size: int, what: str) -> int:
    """``size`` unchanged, or ValueError when it exceeds :data:`MAX_SIZE`."""
    if size > MAX_SIZE:
        raise ValueError(f"{what} would hold {size} elements, more than the limit of {MAX_SIZE}")
    return size


def repeat_text(text: str, count: int) -> str:
    bounded(len(text) * max(count, 0), "the text")
    return text * count


def is_number(value: Any) -> bool:
    """int or float, but not bool (Python's bool is an int; Go's is not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_name(value: Any) -> str:
    """The Go type name an error message would show."""
    if value is None:
        return "nil"
    names = {bool: "bool", int: "int", float: "float64", str: "string", list: "array", dict: "map"}
    for kind, name in names.items():
        if type(value) is kind:
            return name
    if isinstance(value, dt.datetime):
        return "time.Time"
    if isinstance(value, dt.timedelta):
        return "time.Duration"
    return "func" if callable(value) else type(value).__name__


def values_equal(left: Any, right: Any) -> bool:
    """expr's ``==``: numbers compare by value across int/float; other kinds must match exactly."""
    if is_number(left) and is_number(right):
        return bool(left == right)
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(values_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(values_equal(left[k], right[k]) for k in left)
    if type(left) is not type(right) and not (isinstance(left, dt.datetime) and isinstance(right, dt.datetime)):
        return False
    return bool(left == right)


def parse_time(text: str) -> dt.datetime:
    """RFC 3339 (``2024-05-01T10:00:00Z``) or a date; naive values are taken as UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot parse {text!r} as a time (want RFC 3339, e.g. 2024-05-01T10:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
