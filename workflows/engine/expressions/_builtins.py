"""Functions an Argo expression can call: expr-lang's builtins, Argo's additions and the ``sprig`` map.

Argo's environment adds ``asInt``/``asFloat`` (expr's ``int``/``float``), ``jsonpath(json, path)``,
``toJson`` (Go's ``json.Marshal``) and ``sprig`` (the generic sprig function map, minus env access).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import statistics
from collections.abc import Callable, Iterator
from typing import Any

from workflows.engine.expressions._gofmt import go_json, go_string
from workflows.engine.expressions._gotime import format_layout, parse_duration
from workflows.engine.expressions._jsonpath import jsonpath
from workflows.engine.expressions._sprig import SPRIG
from workflows.engine.expressions._values import is_number, parse_time, repeat_text, type_name, values_equal

__all__ = ["BUILTINS", "PREDICATES", "call_method", "from_json"]


def _strict_number(kind: type[int] | type[float]) -> Callable[[Any], Any]:
    """expr's ``int()``/``float()``: numbers convert (``int`` truncates), text must hold such a number."""
    name = kind.__name__

    def convert(value: Any) -> Any:
        if is_number(value):
            return kind(value)
        if isinstance(value, str):
            try:
                return kind(value.strip())
            except ValueError:
                raise ValueError(f"cannot convert {value!r} to {name}") from None
        raise TypeError(f"invalid operation: {name}({type_name(value)})")

    return convert


_to_int = _strict_number(int)
_to_float = _strict_number(float)


def from_json(text: Any) -> Any:
    """Go's ``json.Unmarshal`` into ``interface{}``: every number becomes a float64."""
    if not isinstance(text, str):
        raise TypeError(f"fromJSON needs a string, not {type_name(text)}")
    return json.loads(text, parse_int=float)


def _length(value: Any) -> int:
    if isinstance(value, str | list | dict):
        return len(value)
    raise TypeError(f"invalid argument for len (type {type_name(value)})")


def _trim(text: str, chars: str | None = None) -> str:
    return text.strip() if chars is None else text.strip(chars)


def _split(text: str, sep: str, count: int = -1) -> list[str]:
    if count == 0:
        return []
    return text.split(sep) if count < 0 else text.split(sep, count - 1)


def _join(items: list, sep: str = "") -> str:
    return sep.join(go_string(item) for item in items)


def _numbers(args: tuple) -> list:
    flat = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    if not flat or not all(is_number(value) for value in flat):
        raise TypeError("needs numbers")
    return flat


def _round(value: Any) -> float:
    return float(math.floor(value + 0.5)) if value >= 0 else -float(math.floor(-value + 0.5))


def _first(items: Any) -> Any:
    return items[0] if isinstance(items, list | str) and items else None


def _last(items: Any) -> Any:
    return items[-1] if isinstance(items, list | str) and items else None


def _uniq(items: list) -> list:
    out: list = []
    for item in items:
        if not any(values_equal(item, seen) for seen in out):
            out.append(item)
    return out


def _flatten(items: list) -> list:
    out: list = []
    for item in items:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def _date(value: Any, *_layout: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else parse_time(str(value))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


BUILTINS: dict[str, Callable[..., Any]] = {
    # Argo's additions
    "asInt": _to_int,
    "asFloat": _to_float,
    "jsonpath": jsonpath,
    "toJson": go_json,
    "fromJson": from_json,
    "sprig": SPRIG,  # type: ignore[dict-item]
    # expr-lang builtins
    "int": _to_int,
    "float": _to_float,
    "string": go_string,
    "len": _length,
    "toJSON": lambda value: json.dumps(json.loads(go_json(value)), indent=2, ensure_ascii=False),
    "fromJSON": from_json,
    "toBase64": lambda text: base64.b64encode(text.encode()).decode(),
    "fromBase64": lambda text: base64.b64decode(text).decode(),
    "trim": _trim,
    "trimPrefix": lambda text, prefix=" ": text.removeprefix(prefix),
    "trimSuffix": lambda text, suffix=" ": text.removesuffix(suffix),
    "upper": lambda text: text.upper(),
    "lower": lambda text: text.lower(),
    "split": _split,
    "splitAfter": lambda text, sep: [part + sep for part in text.split(sep)[:-1]] + [text.split(sep)[-1]],
    "replace": lambda text, old, new: text.replace(old, new),
    "repeat": repeat_text,
    "join": _join,
    "indexOf": lambda text, sub: text.find(sub),
    "lastIndexOf": lambda text, sub: text.rfind(sub),
    "hasPrefix": lambda text, prefix: text.startswith(prefix),
    "hasSuffix": lambda text, suffix: text.endswith(suffix),
    "abs": lambda value: abs(_numbers((value,))[0]),
    "ceil": lambda value: float(math.ceil(value)),
    "floor": lambda value: float(math.floor(value)),
    "round": _round,
    "max": lambda *args: max(_numbers(args)),
    "min": lambda *args: min(_numbers(args)),
    "sum": lambda items: sum(_numbers((items,))) if items else 0,
    "mean": lambda *args: float(statistics.fmean(_numbers(args))),
    "median": lambda *args: float(statistics.median(_numbers(args))),
    "first": _first,
    "last": _last,
    "get": lambda obj, key: (
        obj.get(key) if isinstance(obj, dict) else (obj[key] if -len(obj) <= key < len(obj) else None)
    ),
    "keys": lambda obj: list(obj.keys()),
    "values": lambda obj: list(obj.values()),
    "toPairs": lambda obj: [[key, value] for key, value in obj.items()],
    "fromPairs": lambda pairs: {pair[0]: pair[1] for pair in pairs},
    "type": type_name,
    "reverse": lambda items: list(reversed(items)),
    "sort": lambda items, order="asc": sorted(items, reverse=order == "desc"),
    "uniq": _uniq,
    "concat": lambda *lists: [item for each in lists for item in each],
    "flatten": _flatten,
    "now": _now,
    "duration": parse_duration,
    "date": _date,
}


# A predicate body, called with the element's index, the element (``#``) and, for reduce, the accumulator.
Predicate = Callable[..., Any]


def _results(items: list, body: Predicate, reverse: bool = False) -> Iterator[tuple[int, Any, Any]]:
    """(index, element, body's result) lazily, so all/any/find stop early."""
    order = range(len(items) - 1, -1, -1) if reverse else range(len(items))
    for index in order:
        yield index, items[index], body(index, items[index])


def _truth(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"predicate must return a bool, not {type_name(value)}")
    return value


def _matching(items: list, test: Predicate, reverse: bool = False) -> Iterator[tuple[int, Any]]:
    return ((index, item) for index, item, result in _results(items, test, reverse) if _truth(result))


def _group_by(items: list, key: Predicate) -> dict:
    groups: dict[Any, list] = {}
    for _, item, group in _results(items, key):
        groups.setdefault(group, []).append(item)
    return groups


def _sort_by(items: list, key: Predicate, order: str = "asc") -> list:
    keyed = [(result, item) for _, item, result in _results(items, key)]
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0], reverse=order == "desc")]


def _reduce(items: list, step: Predicate, *initial: Any) -> Any:
    if not items and not initial:
        raise TypeError("reduce of an empty array with no initial value")
    acc, start = (initial[0], 0) if initial else (items[0], 1)
    for index in range(start, len(items)):
        acc = step(index, items[index], acc)
    return acc


PREDICATES: dict[str, Callable[..., Any]] = {
    "all": lambda items, test: all(_truth(result) for _, _, result in _results(items, test)),
    "any": lambda items, test: next(_matching(items, test), None) is not None,
    "none": lambda items, test: next(_matching(items, test), None) is None,
    "one": lambda items, test: sum(1 for _ in _matching(items, test)) == 1,
    "filter": lambda items, test: [item for _, item in _matching(items, test)],
    "map": lambda items, body: [result for _, _, result in _results(items, body)],
    "count": lambda items, test: sum(1 for _ in _matching(items, test)),
    "sum": lambda items, body: sum(_numbers(tuple(r for _, _, r in _results(items, body)))) if items else 0,
    "find": lambda items, test: next((item for _, item in _matching(items, test)), None),
    "findIndex": lambda items, test: next((index for index, _ in _matching(items, test)), -1),
    "findLast": lambda items, test: next((item for _, item in _matching(items, test, reverse=True)), None),
    "findLastIndex": lambda items, test: next((index for index, _ in _matching(items, test, reverse=True)), -1),
    "groupBy": _group_by,
    "sortBy": _sort_by,
    "reduce": _reduce,
}

_DURATION_METHODS: dict[str, Callable[[dt.timedelta], Any]] = {
    "Seconds": lambda d: d.total_seconds(),
    "Minutes": lambda d: d.total_seconds() / 60,
    "Hours": lambda d: d.total_seconds() / 3600,
    "Milliseconds": lambda d: int(d.total_seconds() * 1000),
    "Nanoseconds": lambda d: int(d.total_seconds() * 1e9),
    "String": go_string,
}
_TIME_METHODS: dict[str, Callable[[dt.datetime], Any]] = {
    "Year": lambda t: t.year,
    "Month": lambda t: t.month,
    "Day": lambda t: t.day,
    "Hour": lambda t: t.hour,
    "Minute": lambda t: t.minute,
    "Second": lambda t: t.second,
    "Unix": lambda t: int(t.timestamp()),
    "UTC": lambda t: t.astimezone(dt.UTC),
    "String": go_string,
}


def call_method(obj: Any, name: str) -> Callable[..., Any]:
    """``duration.Seconds()``, ``time.Year()``, ``time.Format(layout)``: the Go methods the examples call."""
    if isinstance(obj, dt.timedelta) and name in _DURATION_METHODS:
        return lambda: _DURATION_METHODS[name](obj)
    if isinstance(obj, dt.datetime):
        if name == "Format":
            return lambda layout: format_layout(layout, obj)
        if name == "Sub":
            return lambda other: obj - other
        if name in _TIME_METHODS:
            return lambda: _TIME_METHODS[name](obj)
    raise TypeError(f"type {type_name(obj)} has no field or method {name!r}")
