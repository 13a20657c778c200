"""Template inputs, fan-out items and node names: the pure (process-free) parts of running a template."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from driftloop.errors import EngineError

__all__ = [
    "UNRESOLVED_OUTPUT",
    "BindError",
    "bind_parameters",
    "check_enum",
    "declared_value",
    "expand_items",
    "item_label",
    "merge_defaults",
    "param_text",
    "sequence_items",
]

UNRESOLVED_OUTPUT = re.compile(r"\{\{\s*(tasks|steps)\.[^}]*\.outputs\.[^}]*\}\}")


class BindError(EngineError):
    """A template's inputs cannot be bound (missing value, value outside its enum, bad withParam…)."""


def param_text(value: Any) -> str:
    """A parameter value as Argo stores it: strings as-is, everything else as JSON (true, 1.5, {"a":1})."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, separators=(",", ":"))


def declared_value(parameter: dict[str, Any], configmaps: Any, what: str) -> Any:
    """A declared parameter's own value: ``value``, else ``valueFrom.configMapKeyRef``, else ``default``."""
    if "value" in parameter:
        return parameter["value"]
    ref = (parameter.get("valueFrom") or {}).get("configMapKeyRef")
    if ref is not None:
        if configmaps is None:
            raise BindError(
                f"{what}: valueFrom.configMapKeyRef needs a ConfigMap store", hint="pass the value directly"
            )
        found = configmaps.lookup(ref, what) if "default" not in parameter else configmaps.get(ref["name"], ref["key"])
        if found is not None:
            return found
    return parameter.get("default")


def check_enum(parameter: dict[str, Any], text: str, what: str) -> None:
    allowed = parameter.get("enum")
    if allowed and text not in [param_text(a) for a in allowed]:
        raise BindError(f"{what}={text!r} is not one of its enum values {allowed}", hint="pass one of the enum values")


def bind_parameters(template: dict[str, Any], arguments: dict[str, Any], configmaps: Any = None) -> dict[str, str]:
    """Input parameter values: argument, else the input's value/ConfigMap/default; enums enforced.

    An argument that still holds an unresolved reference to a task's output (the task was skipped and the
    output has no default) falls back to the input's default, as Argo does.
    """
    supplied = {p["name"]: p for p in arguments.get("parameters") or [] if isinstance(p, dict) and "name" in p}
    bound: dict[str, str] = {}
    for declared in (template.get("inputs") or {}).get("parameters") or []:
        name = declared["name"]
        what = f"inputs.parameters.{name}"
        argument = supplied.get(name)
        value: Any = None
        if argument is not None and "value" in argument:
            value = argument["value"]
            if isinstance(value, str) and UNRESOLVED_OUTPUT.search(value):
                # Argo's common.ProcessArgs: a skipped/omitted producer's output with no default is an "absent
                # optional"; the input's own default takes over, and with none the node errors terminally
                value = declared.get("default", declared.get("value"))
                if value is None:
                    raise BindError(
                        f"{what}: argument references an absent optional (skipped/omitted node output with no default)",
                        hint="give the producer's output valueFrom.default, or this input a default",
                    )
        else:
            value = declared_value(declared, configmaps, what)
        if value is None:
            raise BindError(
                f"{what} was not supplied to template {template.get('name')!r}",
                hint="pass it in the task/step arguments, or give the input a default",
            )
        text = param_text(value)
        check_enum(declared, text, what)
        bound[name] = text
    return bound


def merge_defaults(template: dict[str, Any], defaults: dict[str, Any] | None) -> dict[str, Any]:
    """``spec.templateDefaults`` under a template (the template's own fields win, maps merged deeply)."""
    if not defaults:
        return template

    def merge(base: Any, override: Any) -> Any:
        if isinstance(base, dict) and isinstance(override, dict):
            merged = dict(base)
            for key, value in override.items():
                merged[key] = merge(base.get(key), value) if key in base else value
            return merged
        return copy.deepcopy(override)

    result: dict[str, Any] = merge(copy.deepcopy(defaults), template)
    return result


def sequence_items(sequence: dict[str, Any]) -> list[str]:
    """``withSequence`` (count/start/end/format) -> the item strings, as Argo's expandSequence."""

    def number(key: str) -> int | None:
        if key not in sequence or sequence[key] in ("", None):
            return None
        try:
            return int(str(sequence[key]).strip())
        except ValueError:
            raise BindError(f"withSequence.{key}={sequence[key]!r} is not an integer") from None

    count, start, end = number("count"), number("start"), number("end")
    if count is not None and end is not None:
        raise BindError("withSequence: count and end are mutually exclusive", hint="give count or end, not both")
    first = start or 0
    if count is not None:
        values = list(range(first, first + count))
    elif end is not None:
        values = list(range(first, end + 1)) if end >= first else list(range(first, end - 1, -1))
    else:
        raise BindError("withSequence needs count or end", hint="e.g. withSequence: {count: '5'}")
    fmt = sequence.get("format")
    if fmt:
        return [_printf(str(fmt), v) for v in values]
    return [str(v) for v in values]


def _printf(fmt: str, value: int) -> str:
    try:
        return fmt % value
    except (TypeError, ValueError):
        raise BindError(f"withSequence.format {fmt!r} cannot format {value}") from None


def expand_items(step: dict[str, Any]) -> list[Any] | None:
    """The items of a fanned-out task/step (already substituted), or None when it does not fan out."""
    if "withItems" in step:
        return list(step["withItems"] or [])
    if "withParam" in step:
        raw = step["withParam"]
        if isinstance(raw, list):
            return raw
        try:
            parsed = json.loads(raw)
        except (TypeError, ValueError):
            raise BindError(
                f"withParam value {str(raw)[:200]!r} is not a JSON list",
                hint="withParam needs a JSON array, e.g. the output of a task that prints json.dumps([...])",
            ) from None
        if not isinstance(parsed, list):
            raise BindError(f"withParam value {str(raw)[:200]!r} is not a JSON list")
        return parsed
    if "withSequence" in step:
        return list(sequence_items(step["withSequence"]))
    return None


def item_label(item: Any) -> str:
    """How Argo writes an item inside a node name: ``(0:hello)``, ``(1:image:debian,tag:9.1)``."""
    if isinstance(item, dict):
        return ",".join(f"{k}:{param_text(v)}" for k, v in sorted(item.items()))
    if isinstance(item, list):
        return json.dumps(item, separators=(",", ":"))
    return param_text(item)
