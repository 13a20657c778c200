"""The ``sprig`` helpers Argo exposes to expressions, with sprig's argument order and Go conversions.

Sprig puts the operand last (``sprig.replace(old, new, s)``, ``sprig.join(sep, list)``) so it reads well in
Go template pipelines; integer helpers convert through ``cast.ToInt64`` (unparsable text becomes 0).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import re
import secrets
import string
import uuid
from collections.abc import Callable
from typing import Any

from workflows.engine.expressions._gofmt import go_json, go_string
from workflows.engine.expressions._gotime import format_layout
from workflows.engine.expressions._values import bounded, is_number, parse_time, repeat_text

__all__ = ["SPRIG"]


def to_int64(value: Any) -> int:
    """spf13/cast ``ToInt64``: numbers truncate, bools are 0/1, text parses with Go's base prefixes, else 0."""
    if isinstance(value, bool):
        return int(value)
    if is_number(value):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        text = re.sub(r"\.0*$", "", value.strip())  # cast trims a zero decimal part ("3.0" -> 3)
        sign = -1 if text.startswith("-") else 1
        body = text.lstrip("+-").replace("_", "")
        try:
            if re.fullmatch(r"0[0-7]+", body):
                return sign * int(body, 8)
            return sign * int(body, 0)
        except ValueError:
            return 0
    return 0


def to_float64(value: Any) -> float:
    """spf13/cast ``ToFloat64``: numbers and bools convert, text parses, anything else is 0."""
    if is_number(value) or isinstance(value, bool):
        return float(value)
    try:
        return float(value.strip()) if isinstance(value, str) else 0.0
    except ValueError:
        return 0.0


def to_text(value: Any) -> str:
    """sprig's ``strval``: text as is, nil as empty, everything else with ``%v``."""
    if value is None:
        return ""
    return value if isinstance(value, str) else go_string(value)


def empty(value: Any) -> bool:
    """sprig's notion of emptiness: nil, false, zero, and empty strings, lists and maps."""
    if value is None:
        return True
    if isinstance(value, bool):
        return not value
    if is_number(value):
        return value == 0
    if isinstance(value, str | list | dict):
        return len(value) == 0
    return False


def _go_div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("integer divide by zero")
    return int(a / b) if abs(a) < 2**52 else (abs(a) // abs(b)) * (1 if (a < 0) == (b < 0) else -1)


def _go_mod(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("integer divide by zero")
    return int(math.fmod(a, b))


def _ints(values: tuple) -> list[int]:
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return [to_int64(value) for value in flat]


def _floats(values: tuple) -> list[float]:
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return [to_float64(value) for value in flat]


def _sprig_date(layout: str, value: Any = None) -> str:
    return format_layout(layout, _as_time(value))


def _as_time(value: Any) -> dt.datetime:
    """sprig accepts times and Unix seconds; we also accept RFC 3339 text (sprig would use 'now')."""
    if isinstance(value, dt.datetime):
        return value
    if is_number(value):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError:
            pass
    return dt.datetime.now(dt.UTC)


def _split(sep: str, text: str) -> dict[str, str]:
    return {f"_{i}": part for i, part in enumerate(to_text(text).split(sep))}


def _substr(start: int, end: int, text: str) -> str:
    if start < 0:
        return text[:end]
    if end < 0 or end > len(text):
        return text[start:]
    return text[start:end]


def _trunc(count: int, text: str) -> str:
    return text[:count] if count >= 0 else text[count:]


def _abbrev(width: int, text: str) -> str:
    return text if len(text) <= width or width < 4 else text[: width - 3] + "..."


def _indent(spaces: int, text: str) -> str:
    pad = repeat_text(" ", spaces)
    return pad + text.replace("\n", "\n" + pad)


def _random(alphabet: str) -> Callable[[int], str]:
    return lambda count: "".join(secrets.choice(alphabet) for _ in range(bounded(to_int64(count), "the text")))


def _round(value: Any, places: Any, half: Any = 0.5) -> float:
    factor = 10 ** to_int64(places)
    shifted = to_float64(value) * factor
    rounded = math.floor(shifted) + (1 if shifted - math.floor(shifted) >= to_float64(half) else 0)
    return rounded / factor


def _seq(*bounds: Any) -> str:
    ints = _ints(bounds)
    if len(ints) == 1:
        start, step, end = 1, 1, ints[0]
    elif len(ints) == 2:
        start, step, end = ints[0], 1 if ints[1] >= ints[0] else -1, ints[1]
    else:
        start, step, end = ints[0], ints[1], ints[2]
    if step == 0:
        return ""
    numbers = range(start, end + (1 if step > 0 else -1), step)
    bounded(len(numbers), "seq")
    return " ".join(str(i) for i in numbers)


def _bounded_range(start: int, stop: int, step: int) -> list[int]:
    numbers = range(start, stop, step)
    bounded(len(numbers), "the list")
    return list(numbers)


def _dict(*pairs: Any) -> dict:
    return {to_text(pairs[i]): (pairs[i + 1] if i + 1 < len(pairs) else "") for i in range(0, len(pairs), 2)}


_B64 = frozenset(string.ascii_letters + string.digits + "+/=")
_B32 = frozenset(string.ascii_uppercase + "234567=")


def _decode(text: str, base: int) -> str:
    """sprig returns Go's error text instead of failing: ``illegal base64 data at input byte N``."""
    try:
        data = base64.b64decode(text, validate=True) if base == 64 else base64.b32decode(text)
    except (ValueError, TypeError):
        alphabet = _B64 if base == 64 else _B32
        position = next((i for i, char in enumerate(text) if char not in alphabet), len(text))
        return f"illegal base{base} data at input byte {position}"
    return data.decode(errors="replace")


def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_STRINGS: dict[str, Callable[..., Any]] = {
    "upper": lambda s: to_text(s).upper(),
    "lower": lambda s: to_text(s).lower(),
    "title": lambda s: re.sub(r"\b[a-z]", lambda m: m.group().upper(), to_text(s)),
    "untitle": lambda s: re.sub(r"\b[A-Z]", lambda m: m.group().lower(), to_text(s)),
    "trim": lambda s: to_text(s).strip(),
    "trimAll": lambda cutset, s: to_text(s).strip(cutset),
    "trimPrefix": lambda prefix, s: to_text(s).removeprefix(prefix),
    "trimSuffix": lambda suffix, s: to_text(s).removesuffix(suffix),
    "trunc": lambda n, s: _trunc(to_int64(n), to_text(s)),
    "substr": lambda start, end, s: _substr(to_int64(start), to_int64(end), to_text(s)),
    "abbrev": lambda width, s: _abbrev(to_int64(width), to_text(s)),
    "repeat": lambda count, s: repeat_text(to_text(s), to_int64(count)),
    "replace": lambda old, new, s: to_text(s).replace(old, new),
    "contains": lambda sub, s: sub in to_text(s),
    "hasPrefix": lambda prefix, s: to_text(s).startswith(prefix),
    "hasSuffix": lambda suffix, s: to_text(s).endswith(suffix),
    "quote": lambda *items: " ".join(json.dumps(to_text(i), ensure_ascii=False) for i in items if i is not None),
    "squote": lambda *items: " ".join(f"'{to_text(i)}'" for i in items if i is not None),
    "cat": lambda *items: " ".join(to_text(i) for i in items if i is not None),
    "indent": lambda n, s: _indent(to_int64(n), to_text(s)),
    "nindent": lambda n, s: "\n" + _indent(to_int64(n), to_text(s)),
    "nospace": lambda s: re.sub(r"\s", "", to_text(s)),
    "snakecase": lambda s: re.sub(r"(?<!^)(?=[A-Z])", "_", to_text(s)).replace("-", "_").lower(),
    "kebabcase": lambda s: re.sub(r"(?<!^)(?=[A-Z])", "-", to_text(s)).replace("_", "-").lower(),
    "camelcase": lambda s: "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-\s]+", to_text(s))),
    "swapcase": lambda s: to_text(s).swapcase(),
    "plural": lambda one, many, count: one if to_int64(count) == 1 else many,
    "toString": to_text,
    "toStrings": lambda items: [to_text(i) for i in (items if isinstance(items, list) else [items])],
    "split": _split,
    "splitList": lambda sep, s: to_text(s).split(sep),
    "splitn": lambda sep, n, s: {f"_{i}": p for i, p in enumerate(to_text(s).split(sep, to_int64(n) - 1))},
    "join": lambda sep, items: sep.join(to_text(i) for i in (items if isinstance(items, list) else [items])),
    "sortAlpha": lambda items: sorted(to_text(i) for i in items),
    "regexMatch": lambda pattern, s: _regex(pattern).search(to_text(s)) is not None,
    "regexFind": lambda pattern, s: m.group() if (m := _regex(pattern).search(to_text(s))) else "",
    "regexFindAll": lambda pattern, s, n: [m.group() for m in _regex(pattern).finditer(to_text(s))][
        : None if to_int64(n) < 0 else to_int64(n)
    ],
    "regexReplaceAll": lambda pattern, s, repl: _regex(pattern).sub(
        re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", repl), to_text(s)
    ),
    "regexReplaceAllLiteral": lambda pattern, s, repl: _regex(pattern).sub(lambda _m: repl, to_text(s)),
    "regexSplit": lambda pattern, s, n: _regex(pattern).split(to_text(s), max(to_int64(n) - 1, 0)),
    "b64enc": lambda s: base64.b64encode(to_text(s).encode()).decode(),
    "b64dec": lambda s: _decode(to_text(s), 64),
    "b32enc": lambda s: base64.b32encode(to_text(s).encode()).decode(),
    "b32dec": lambda s: _decode(to_text(s), 32),
    "sha1sum": lambda s: hashlib.sha1(to_text(s).encode()).hexdigest(),
    "sha256sum": lambda s: hashlib.sha256(to_text(s).encode()).hexdigest(),
    "randAlphaNum": _random(string.ascii_letters + string.digits),
    "randAlpha": _random(string.ascii_letters),
    "randNumeric": _random(string.digits),
    "uuidv4": lambda: str(uuid.uuid4()),
}

_NUMBERS: dict[str, Callable[..., Any]] = {
    "add": lambda *n: sum(_ints(n)),
    "add1": lambda n: to_int64(n) + 1,
    "sub": lambda a, b: to_int64(a) - to_int64(b),
    "mul": lambda *n: math.prod(_ints(n)),
    "div": lambda a, b: _go_div(to_int64(a), to_int64(b)),
    "mod": lambda a, b: _go_mod(to_int64(a), to_int64(b)),
    "max": lambda *n: max(_ints(n)),
    "min": lambda *n: min(_ints(n)),
    "biggest": lambda *n: max(_ints(n)),
    "addf": lambda *n: sum(_floats(n)),
    "add1f": lambda n: to_float64(n) + 1,
    "subf": lambda a, *rest: to_float64(a) - sum(_floats(rest)),
    "mulf": lambda *n: math.prod(_floats(n)),
    "divf": lambda a, *rest: to_float64(a) / math.prod(_floats(rest)),
    "maxf": lambda *n: max(_floats(n)),
    "minf": lambda *n: min(_floats(n)),
    "floor": lambda n: float(math.floor(to_float64(n))),
    "ceil": lambda n: float(math.ceil(to_float64(n))),
    "round": _round,
    "int": lambda v: to_int64(v),
    "int64": lambda v: to_int64(v),
    "float64": to_float64,
    "atoi": lambda s: to_int64(s) if re.fullmatch(r"\s*[+-]?\d+\s*", to_text(s)) else 0,
    "seq": _seq,
    "until": lambda n: _bounded_range(0, to_int64(n), 1 if to_int64(n) >= 0 else -1),
    "untilStep": lambda start, stop, step: _bounded_range(to_int64(start), to_int64(stop), to_int64(step) or 1),
}

_DATA: dict[str, Callable[..., Any]] = {
    "default": lambda fallback, *given: fallback if not given or empty(given[0]) else given[0],
    "empty": empty,
    "coalesce": lambda *items: next((item for item in items if not empty(item)), None),
    "ternary": lambda yes, no, condition: yes if condition is True else no,
    "toJson": go_json,
    "toRawJson": go_json,
    "toPrettyJson": lambda value: json.dumps(json.loads(go_json(value)), indent=2, ensure_ascii=False),
    "fromJson": lambda text: json.loads(to_text(text), parse_int=float) if to_text(text) else None,
    "list": lambda *items: list(items),
    "first": lambda items: items[0] if items else None,
    "last": lambda items: items[-1] if items else None,
    "rest": lambda items: list(items[1:]),
    "initial": lambda items: list(items[:-1]),
    "append": lambda items, item: [*items, item],
    "push": lambda items, item: [*items, item],
    "prepend": lambda items, item: [item, *items],
    "concat": lambda *lists: [item for each in lists for item in each],
    "reverse": lambda items: list(reversed(items)),
    "uniq": lambda items: [item for i, item in enumerate(items) if item not in items[:i]],
    "without": lambda items, *drop: [item for item in items if item not in drop],
    "has": lambda needle, items: needle in items,
    "compact": lambda items: [item for item in items if not empty(item)],
    "slice": lambda items, start=0, *end: list(items[to_int64(start) : to_int64(end[0]) if end else None]),
    "dict": _dict,
    "get": lambda mapping, key: mapping.get(key, ""),
    "set": lambda mapping, key, value: {**mapping, key: value},
    "unset": lambda mapping, key: {k: v for k, v in mapping.items() if k != key},
    "hasKey": lambda mapping, key: key in mapping,
    "pluck": lambda key, *maps: [m[key] for m in maps if key in m],
    "keys": lambda *maps: [key for m in maps for key in m],
    "values": lambda mapping: list(mapping.values()),
    "pick": lambda mapping, *keys: {k: v for k, v in mapping.items() if k in keys},
    "omit": lambda mapping, *keys: {k: v for k, v in mapping.items() if k not in keys},
    "merge": lambda dest, *sources: {**{k: v for src in reversed(sources) for k, v in src.items()}, **dest},
    "now": lambda: dt.datetime.now(dt.UTC),
    "date": _sprig_date,
    "dateInZone": lambda layout, value, _zone: _sprig_date(layout, value),
    "htmlDate": lambda value: _sprig_date("2006-01-02", value),
    "unixEpoch": lambda value: str(int(_as_time(value).timestamp())),
    "toDate": lambda _layout, text: parse_time(text),
    "kindOf": lambda value: {bool: "bool", int: "int", float: "float64", str: "string", list: "slice", dict: "map"}.get(
        type(value), "invalid"
    ),
    "kindIs": lambda kind, value: _DATA["kindOf"](value) == kind,
    "typeOf": lambda value: {bool: "bool", int: "int", float: "float64", str: "string"}.get(type(value), "<nil>"),
}

SPRIG: dict[str, Callable[..., Any]] = {**_STRINGS, **_NUMBERS, **_DATA}
