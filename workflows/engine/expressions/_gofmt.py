"""Go's text forms of values: ``fmt``'s ``%v`` and ``encoding/json``, so results read exactly as Argo writes them.

Argo prints an expression's result with ``%v`` (a float 1e6 is ``1e+06``, a list ``[1 2]``, a map
``map[a:1]``) and ``toJson`` uses ``json.Marshal`` (sorted keys, no spaces, ``<>&`` escaped).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

__all__ = ["go_json", "go_string"]


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-tripping digits and the decimal point position (value = 0.DIGITS * 10**point)."""
    sign_digits_exp = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, sign_digits_exp.digits)).rstrip("0") or "0"
    exponent = int(sign_digits_exp.exponent)
    point = len("".join(map(str, sign_digits_exp.digits))) + exponent
    if digits == "0":
        point = 1
    return digits, point


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _scientific(digits: str, point: int, min_exp_digits: int) -> str:
    exp = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):0{min_exp_digits}d}"


def _go_float(value: float, for_json: bool) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if value < 0 or (value == 0 and math.copysign(1, value) < 0 and not for_json) else ""
    digits, point = _shortest_digits(value)
    exp = point - 1
    if for_json:  # encoding/json: 'f' unless tiny or huge, then 'e' with a one-digit minimum exponent
        magnitude = abs(value)
        if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
            return sign + _scientific(digits, point, 1)
        return sign + _fixed(digits, point)
    if digits != "0" and (exp < -4 or exp >= 6):  # strconv 'g' with shortest precision decides at 6
        return sign + _scientific(digits, point, 2)
    return sign + _fixed(digits, point)


def go_string(value: Any) -> str:
    """Go's ``fmt.Sprintf("%v", value)`` for JSON-like values (and times/durations)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value, for_json=False)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_string(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_string(k)}:{go_string(value[k])}" for k in sorted(value, key=str)) + "]"
    if isinstance(value, dt.timedelta):
        return _go_duration(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _go_duration(delta: dt.timedelta) -> str:
    total = delta.total_seconds()
    if total == 0:
        return "0s"
    sign, total = ("-" if total < 0 else ""), abs(total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{sign}{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{sign}{int(minutes)}m{text}"
    return sign + text


def _json_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        encoded = encoded.replace(char, escape)
    return encoded


def go_json(value: Any) -> str:
    """Go's ``json.Marshal``: sorted keys, compact, ``<>&`` escaped, integral floats without ``.0``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"json: unsupported value: {go_string(value)}")
        return _go_float(value, for_json=True)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(((str(key), item) for key, item in value.items()), key=lambda pair: pair[0])
        return "{" + ",".join(f"{_json_string(key)}:{go_json(item)}" for key, item in items) + "}"
    if isinstance(value, dt.datetime):
        return _json_string(value.isoformat().replace("+00:00", "Z"))
    if isinstance(value, dt.timedelta):
        return str(round(value.total_seconds() * 1e9))
    raise ValueError(f"json: unsupported type {type(value).__name__}")
