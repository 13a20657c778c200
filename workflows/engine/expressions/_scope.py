"""Turning the engine's flat, dotted scope into the nested environment expressions see."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["nest"]


def _own(value: Any) -> Any:
    """Copy mappings (not lists or leaves) so that merging never mutates the caller's scope."""
    return {key: _own(item) for key, item in value.items()} if isinstance(value, Mapping) else value


def nest(scope: Mapping[str, Any]) -> dict:
    """``{"inputs.parameters.x": 1}`` -> ``{"inputs": {"parameters": {"x": 1}}}``.

    Where a key is both a leaf and a prefix (Argo sets ``workflow.parameters`` to the JSON of all parameters *and*
    ``workflow.parameters.x``), the nested form wins, because expressions index into it
    (``inputs.parameters['week-temps']``). Dict values (an ``item`` object) merge with their dotted children.
    """
    nested: dict[str, Any] = {}
    for key, raw in scope.items():
        node = nested
        if "." in key:
            *parents, key = key.split(".")
            for part in parents:
                child = node.get(part)
                if not isinstance(child, dict):  # a leaf in the way: the nested form wins
                    child = node[part] = {}
                node = child
        value = _own(raw) if isinstance(raw, Mapping) else raw
        existing = node.get(key)
        if isinstance(existing, dict):  # children were placed first: keep them, add what they lack
            if isinstance(value, dict):
                existing.update({k: v for k, v in value.items() if k not in existing})
            continue
        node[key] = value
    return nested
