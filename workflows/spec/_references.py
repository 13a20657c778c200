"""``{{...}}`` references that Argo resolves at submit time, checked before anything runs.

Only the references we can prove wrong are reported: an unknown ``inputs.parameters.x``, a
``workflow.parameters.z`` that no argument declares, a ``tasks.t`` / ``steps.s`` that is not a task of
this DAG (or not an earlier step), or an output parameter the producing template does not declare.
Everything else (``item``, ``pod.name``, ``retries``, ``{{=expr}}``, ``workflow.status``, ...) is accepted,
because a false alarm on a valid workflow costs more trust than a missed typo.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Scope", "check_references", "iter_strings"]

_REFERENCE = re.compile(r"\{\{\s*([^{}=][^{}]*?)\s*\}\}")

Report = Callable[[str, str], None]


@dataclass
class Scope:
    """What a string may refer to where it stands; None means "unknown here, do not check"."""

    input_parameters: set[str] | None = None
    input_artifacts: set[str] | None = None
    workflow_parameters: set[str] | None = None
    node_kind: str = ""  # "tasks" in a DAG template, "steps" in a steps template
    siblings: set[str] = field(default_factory=set)  # every task/step name of the template
    visible: set[str] | None = None  # the tasks/steps finished before this one (None: all siblings)
    outputs_of: dict[str, tuple[set[str], set[str]] | None] = field(default_factory=dict)  # name -> (params, arts)


def iter_strings(node: Any, path: str, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, str]]:
    """Every string value under `node` with its dotted path; keys in `skip` are not entered."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in skip:
                yield from iter_strings(value, f"{path}.{key}" if path else str(key), skip)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            name = value.get("name") if isinstance(value, dict) else None
            yield from iter_strings(value, f"{path}[{name or index}]", skip)


def _check_node_reference(parts: list[str], scope: Scope, where: str, report: Report) -> None:
    """``tasks.<t>...`` / ``steps.<s>...``: the node must exist, precede us, and declare the output."""
    kind = parts[0]
    if len(parts) < 2 or (len(parts) == 2 and parts[1] == "name"):
        return  # {{tasks.name}} / {{steps.name}}: the current node's own name
    if scope.node_kind != kind:
        report(where, f"'{{{{{'.'.join(parts)}}}}}' refers to {kind}, but this is not a {kind[:-1]} of this template")
        return
    node = parts[1]
    if node not in scope.siblings:
        report(where, f"'{{{{{'.'.join(parts)}}}}}' refers to unknown {kind[:-1]} '{node}'")
        return
    if scope.visible is not None and node not in scope.visible:
        relation = "a dependency" if kind == "tasks" else "in an earlier step group"
        report(where, f"'{{{{{'.'.join(parts)}}}}}' refers to {kind[:-1]} '{node}', which is not {relation}")
        return
    declared = scope.outputs_of.get(node)
    if declared is None or len(parts) < 5 or parts[2] != "outputs":
        return
    names = declared[0] if parts[3] == "parameters" else declared[1] if parts[3] == "artifacts" else None
    if names is not None and parts[4] not in names:
        report(
            where,
            f"'{{{{{'.'.join(parts)}}}}}': {kind[:-1]} '{node}' declares no output {parts[3][:-1]} '{parts[4]}'"
            f" (it has: {', '.join(sorted(names)) or 'none'})",
        )


def _check_one(expression: str, scope: Scope, where: str, report: Report) -> None:
    parts = expression.split(".")
    head = parts[0]
    if head == "inputs" and len(parts) >= 3 and parts[1] in ("parameters", "artifacts"):
        declared = scope.input_parameters if parts[1] == "parameters" else scope.input_artifacts
        if declared is not None and parts[2] not in declared and parts[2:] != ["json"]:
            report(
                where,
                f"'{{{{{expression}}}}}' does not resolve: the template has no input {parts[1][:-1]} '{parts[2]}'"
                f" (it has: {', '.join(sorted(declared)) or 'none'})",
            )
    elif head == "workflow" and len(parts) >= 3 and parts[1] == "parameters":
        declared = scope.workflow_parameters
        if declared is not None and parts[2] not in declared and parts[2:] != ["json"]:
            report(
                where,
                f"'{{{{{expression}}}}}' does not resolve: spec.arguments declares no parameter '{parts[2]}'"
                f" (it has: {', '.join(sorted(declared)) or 'none'})",
            )
    elif head in ("tasks", "steps"):
        _check_node_reference(parts, scope, where, report)


def check_references(text: str, scope: Scope, where: str, report: Report) -> None:
    """Report every ``{{...}}`` in `text` that cannot resolve in `scope`."""
    if "{{" not in text:
        return
    for match in _REFERENCE.finditer(text):
        _check_one(match.group(1), scope, where, report)
