"""Kubernetes label selectors and Argo's ``fields`` response filter, as the Argo Server applies them.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x, y)``, ``a notin (x)``, ``a`` (exists), ``!a``.
``fields``: comma-separated dotted paths to keep (``items.metadata.name,items.status.phase``), or, with a
leading ``-``, paths to drop — the shape ``argo list`` asks for to keep responses small.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from driftloop.errors import DriftloopError

__all__ = ["LabelRequirement", "SelectorError", "filter_fields", "matches_labels", "parse_label_selector"]


class SelectorError(DriftloopError):
    """A label selector or fields expression that cannot be parsed."""


@dataclass(frozen=True)
class LabelRequirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "exists":
            return self.key in labels
        if self.operator == "!exists":
            return self.key not in labels
        if self.operator in {"=", "in"}:
            return value is not None and value in self.values
        return value is None or value not in self.values  # "!=" and "notin" match absent keys too


_SET_RE = re.compile(r"^\s*(!?)([\w./-]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQUALITY_RE = re.compile(r"^\s*([\w./-]+)\s*(==|!=|=)\s*([\w.-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


def _split_top_level(selector: str) -> list[str]:
    """Split on commas that are not inside ``( )`` of a set requirement."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def parse_label_selector(selector: str) -> list[LabelRequirement]:
    requirements = []
    for part in _split_top_level(selector):
        if match := _SET_RE.match(part):
            values = tuple(v.strip() for v in match.group(4).split(",") if v.strip())
            requirements.append(LabelRequirement(match.group(2), match.group(3), values))
        elif match := _EQUALITY_RE.match(part):
            operator = "!=" if match.group(2) == "!=" else "="
            requirements.append(LabelRequirement(match.group(1), operator, (match.group(3),)))
        elif match := _EXISTS_RE.match(part):
            requirements.append(LabelRequirement(match.group(2), "!exists" if match.group(1) else "exists"))
        else:
            raise SelectorError(
                f"unable to parse requirement {part.strip()!r} of label selector {selector!r}",
                hint="use key=value, key!=value, key in (a,b), key notin (a), key or !key, comma-separated",
            )
    return requirements


def matches_labels(labels: dict[str, str], requirements: list[LabelRequirement]) -> bool:
    return all(requirement.matches(labels) for requirement in requirements)


def _keep(obj: Any, path: list[str]) -> Any:
    """The sub-structure of ``obj`` along ``path`` (lists are traversed element-wise)."""
    if not path:
        return obj
    if isinstance(obj, list):
        return [_keep(item, path) for item in obj]
    if not isinstance(obj, dict) or path[0] not in obj:
        return None
    return {path[0]: _keep(obj[path[0]], path[1:])}


def _merge(into: Any, other: Any) -> Any:
    if other is None:
        return into
    if into is None:
        return other
    if isinstance(into, dict) and isinstance(other, dict):
        for key, value in other.items():
            into[key] = _merge(into.get(key), value)
        return into
    if isinstance(into, list) and isinstance(other, list):
        return [_merge(a, b) for a, b in zip(into, other, strict=False)]
    return other


def _drop(obj: Any, path: list[str]) -> None:
    if isinstance(obj, list):
        for item in obj:
            _drop(item, path)
    elif isinstance(obj, dict) and path and path[0] in obj:
        if len(path) == 1:
            del obj[path[0]]
        else:
            _drop(obj[path[0]], path[1:])


def filter_fields(response: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """Apply Argo's ``fields`` query parameter to a response body (returns a new or mutated dict)."""
    if not fields or not fields.strip():
        return response
    exclude = fields.startswith("-")
    paths = [p.strip().split(".") for p in fields.lstrip("-").split(",") if p.strip()]
    if exclude:
        for path in paths:
            _drop(response, path)
        return response
    kept: Any = {}
    for path in paths:
        kept = _merge(kept, _keep(response, path))
    return kept if isinstance(kept, dict) else {}
