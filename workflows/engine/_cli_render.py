"""Text renderings of workflows modelled on the Argo CLI: ``argo list``, ``argo get`` and live progress."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from workflows.engine._logs import pod_name

__all__ = [
    "PHASE_ICONS",
    "age",
    "duration",
    "failed_step",
    "failure_headline",
    "list_table",
    "node_tree",
    "progress_line",
    "summary",
]

PHASE_ICONS = {
    "Succeeded": "✔",
    "Failed": "✖",
    "Error": "⚠",
    "Running": "●",
    "Pending": "◷",
    "Skipped": "○",
    "Omitted": "○",
}


def _parse(timestamp: str | None) -> datetime | None:
    if not timestamp:
        return None
    parsed = datetime.fromisoformat(timestamp)  # "…Z" from the engine, "…+00:00" after a Hera round trip
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _human(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d"


def duration(item: dict[str, Any], now: datetime | None = None) -> str:
    """finishedAt - startedAt of a workflow status or a node (running: up to now)."""
    started = _parse(item.get("startedAt"))
    if started is None:
        return ""
    finished = _parse(item.get("finishedAt")) or now or datetime.now(UTC)
    return _human((finished - started).total_seconds())


def age(workflow: dict[str, Any], now: datetime | None = None) -> str:
    created = _parse(workflow.get("metadata", {}).get("creationTimestamp"))
    return "" if created is None else _human(((now or datetime.now(UTC)) - created).total_seconds())


def list_table(workflows: list[dict[str, Any]], *, with_namespace: bool = False) -> list[list[str]]:
    """Rows of ``argo list``: [NAMESPACE (``-A``),] NAME, STATUS, AGE, DURATION, PROGRESS, MESSAGE (header first)."""
    rows = [[*(["NAMESPACE"] if with_namespace else []), "NAME", "STATUS", "AGE", "DURATION", "PROGRESS", "MESSAGE"]]
    for workflow in workflows:
        status = workflow.get("status") or {}
        rows.append(
            [
                *([workflow["metadata"].get("namespace", "")] if with_namespace else []),
                workflow["metadata"]["name"],
                status.get("phase") or "Pending",
                age(workflow),
                duration(status),
                status.get("progress", ""),
                status.get("message", ""),
            ]
        )
    return rows


def _shown(timestamp: str | None) -> str:
    parsed = _parse(timestamp)
    return "" if parsed is None else parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def summary(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    """The header of ``argo get``."""
    meta, status = workflow["metadata"], workflow.get("status") or {}
    rows = [("Name", meta["name"])]
    if meta.get("namespace"):  # `engine run` has none
        rows.append(("Namespace", meta["namespace"]))
    rows.append(("Status", status.get("phase") or "Pending"))
    if status.get("message"):
        rows.append(("Message", status["message"]))
    rows += [("Created", _shown(meta.get("creationTimestamp"))), ("Started", _shown(status.get("startedAt")))]
    if status.get("finishedAt"):
        rows.append(("Finished", _shown(status["finishedAt"])))
    rows += [("Duration", duration(status)), ("Progress", status.get("progress", ""))]
    parameters = (workflow.get("spec", {}).get("arguments") or {}).get("parameters") or []
    for parameter in parameters:
        rows.append((f"Parameter {parameter.get('name')}", str(parameter.get("value", ""))))
    return rows


def _started(nodes: dict[str, dict[str, Any]], node_id: str) -> str:
    return str(nodes[node_id].get("startedAt") or "~")


def _group_index(node: dict[str, Any]) -> int:
    text = str(node.get("displayName", "")).strip("[]")
    return int(text) if text.isdigit() else 0


def _boundary_members(nodes: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Steps/DAG node id -> the steps or tasks ``argo get`` draws directly under it.

    The status links a step to the *next* step group and a task to the tasks depending on it; ``argo get``
    instead lists a boundary's steps (step groups dissolved, in group order) and tasks side by side.
    Retries' attempts and fan-out expansions stay under their Retry/TaskGroup node.
    """
    nested = {
        child
        for node in nodes.values()
        if node.get("type") in {"Retry", "TaskGroup"}
        for child in node.get("children") or []
        if child in nodes and nodes[child].get("boundaryID") == node.get("boundaryID")
    }
    members: dict[str, list[str]] = {}
    groups = sorted(
        (n for n in nodes.values() if n.get("type") == "StepGroup" and n.get("boundaryID") in nodes),
        key=_group_index,
    )
    for group in groups:
        steps = members.setdefault(str(group["boundaryID"]), [])
        started_together = [k for k in group.get("children") or [] if k in nodes and k not in steps]
        # siblings of a group start in one pass and register in whatever order their threads ran: show them by start
        # time, then in the order the spec lists them (their index in the group's children at equal times is racy)
        steps += sorted(started_together, key=lambda k: (_started(nodes, k), str(nodes[k].get("displayName", ""))))
    for node_id, node in nodes.items():
        boundary = node.get("boundaryID")
        in_dag = boundary in nodes and nodes[boundary].get("type") == "DAG"
        if in_dag and node_id not in nested and node.get("type") != "StepGroup":
            members.setdefault(str(boundary), []).append(node_id)
    for boundary, ids in members.items():
        if nodes[boundary].get("type") == "DAG":
            ids.sort(key=lambda k: _started(nodes, k))
    return members


def node_tree(workflow: dict[str, Any]) -> list[list[str]]:
    """Rows of ``argo get``'s tree: STEP (indented, with phase icon), TEMPLATE, PODNAME, DURATION, MESSAGE.

    The one renderer of a run's nodes: ``driftloop runs get``, ``submit`` and ``engine run`` all print it.
    PODNAME is Argo's pod name (the one ``runs logs --node`` accepts), shown for pod nodes only.
    """
    nodes: dict[str, dict[str, Any]] = (workflow.get("status") or {}).get("nodes") or {}
    name = workflow["metadata"]["name"]
    rows = [["STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE"]]
    if not nodes:
        return rows
    members = _boundary_members(nodes)
    placed = {member for ids in members.values() for member in ids}

    def shown_children(node_id: str) -> list[str]:
        own = [k for k in nodes[node_id].get("children") or [] if k in nodes]
        rest = [k for k in own if k not in placed and nodes[k].get("type") != "StepGroup"]
        rest.sort(key=lambda k: _started(nodes, k))
        return members.get(node_id, []) + rest

    children = {child for node in nodes.values() for child in node.get("children") or []}
    roots = [node_id for node_id in nodes if node_id not in children]
    roots.sort(key=lambda node_id: (node_id != name, _started(nodes, node_id)))
    seen: set[str] = set()

    def walk(node_id: str, prefix: str, last: bool, depth: int) -> None:
        if node_id in seen:
            return
        seen.add(node_id)
        node = nodes[node_id]
        branch = "" if depth == 0 else ("└─" if last else "├─")
        icon = PHASE_ICONS.get(node.get("phase", ""), "◷")
        label = node.get("displayName") or node.get("name") or node_id
        template = node.get("templateName") or (node.get("templateRef") or {}).get("template", "")
        pod = pod_name(name, node) if node.get("type") in {"Pod", "Container"} else ""
        rows.append([f"{prefix}{branch}{icon} {label}", template, pod, duration(node), node.get("message", "")])
        kids = [k for k in shown_children(node_id) if k not in seen]
        child_prefix = prefix + ("" if depth == 0 else ("  " if last else "│ "))
        for index, kid in enumerate(kids):
            walk(kid, child_prefix, index == len(kids) - 1, depth + 1)

    for root in roots:
        walk(root, "", True, 0)
    for node_id in sorted(nodes, key=lambda k: _started(nodes, k)):  # never hide a node the links miss
        if node_id not in seen and nodes[node_id].get("type") != "StepGroup":
            walk(node_id, "", True, 0)
    return rows


def progress_line(workflow: dict[str, Any]) -> str:
    """One line for ``submit --wait``: phase, pods done/total, the steps running now."""
    status = workflow.get("status") or {}
    nodes = (status.get("nodes") or {}).values()
    running = sorted(
        str(n.get("displayName") or n.get("name"))
        for n in nodes
        if n.get("phase") == "Running" and n.get("type") in {"Pod", "Container"}
    )
    name = workflow["metadata"]["name"]
    text = f"{name}: {status.get('phase') or 'Pending'}  {status.get('progress', '0/0')}"
    waiting = [n for n in nodes if n.get("phase") == "Running" and n.get("type") == "Suspend"]
    if waiting:  # a person must act: say how (the training pipeline's approval before promote, or a plain resume)
        step = waiting[0].get("displayName")
        how = f"driftloop approve {name} --reason '…'" if step == "approval" else f"driftloop runs resume {name}"
        return text + f"  waiting in {step}: {how}"
    return text + (f"  running: {', '.join(running)}" if running else "")


def failed_step(workflow: dict[str, Any]) -> dict[str, Any] | None:
    """The step that failed first: a failed node none of whose children failed (a pod, not its DAG or retry parent).

    Argo's own message for the workflow names a child node id (``child 'training-x-123' failed``); an operator
    wants the step's name and its error.
    """
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    bad = {"Failed", "Error"}
    leaves = [
        node
        for node in nodes.values()
        if node.get("phase") in bad and not any(nodes.get(c, {}).get("phase") in bad for c in node.get("children", []))
    ]
    leaves.sort(key=lambda node: (node.get("type") != "Pod", node.get("finishedAt") or "~", node.get("id", "")))
    return leaves[0] if leaves else None


def failure_headline(
    workflow: dict[str, Any], log_lines: Callable[[dict[str, Any]], list[str]] | None = None
) -> str | None:
    """``✖ <workflow> Failed: step 'train' failed: <why>`` for a failed workflow, else None.

    `why` is the step's last ``error:`` log line (driftloop steps print one, with a hint after it) when
    `log_lines` can read the node's log, else the node's message (``Error (exit code 1)``).
    """
    status = workflow.get("status") or {}
    phase = status.get("phase")
    if phase not in {"Failed", "Error"}:
        return None
    name = workflow.get("metadata", {}).get("name", "")
    node = failed_step(workflow)
    if node is None:
        return f"{PHASE_ICONS[phase]} {name} {phase}: {status.get('message') or 'no step failed'}"
    why = node.get("message") or "failed"
    try:
        lines = [line.strip() for line in (log_lines(node) if log_lines else []) if line.strip()]
    except Exception:  # a log that cannot be read must not hide the failure itself
        lines = []
    errors = [line for line in lines if line.startswith("error:")]
    if errors or lines:
        why = (errors or lines)[-1].removeprefix("error:").strip() + f" ({why})"
    step = re.sub(r"\(\d+\)$", "", node.get("displayName") or node.get("name", ""))  # retries: train(1) is train
    return f"{PHASE_ICONS[phase]} {name} {phase}: step '{step}' failed: {why}"
