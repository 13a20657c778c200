"""Text renderings of workflows modelled on the Argo CLI: ``argo list``, ``argo get`` and live progress."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["PHASE_ICONS", "age", "duration", "list_table", "node_tree", "progress_line", "summary"]

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


def list_table(workflows: list[dict[str, Any]]) -> list[list[str]]:
    """Rows of ``argo list``: NAME, STATUS, AGE, DURATION, PROGRESS, MESSAGE (header first)."""
    rows = [["NAME", "STATUS", "AGE", "DURATION", "PROGRESS", "MESSAGE"]]
    for workflow in workflows:
        status = workflow.get("status") or {}
        rows.append(
            [
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
    rows = [
        ("Name", meta["name"]),
        ("Namespace", meta.get("namespace", "")),
        ("Status", status.get("phase") or "Pending"),
    ]
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


def node_tree(workflow: dict[str, Any]) -> list[list[str]]:
    """Rows of ``argo get``'s tree: STEP (indented, with phase icon), TEMPLATE, DURATION, MESSAGE."""
    nodes: dict[str, dict[str, Any]] = (workflow.get("status") or {}).get("nodes") or {}
    rows = [["STEP", "TEMPLATE", "DURATION", "MESSAGE"]]
    if not nodes:
        return rows
    children = {child for node in nodes.values() for child in node.get("children") or []}
    roots = [node_id for node_id in nodes if node_id not in children]
    roots.sort(key=lambda node_id: (node_id != workflow["metadata"]["name"], nodes[node_id].get("startedAt") or "~"))
    seen: set[str] = set()

    def walk(node_id: str, prefix: str, last: bool, depth: int) -> None:
        if node_id in seen or node_id not in nodes:
            return
        seen.add(node_id)
        node = nodes[node_id]
        branch = "" if depth == 0 else ("└─" if last else "├─")
        icon = PHASE_ICONS.get(node.get("phase", ""), "◷")
        label = node.get("displayName") or node.get("name") or node_id
        template = node.get("templateName") or (node.get("templateRef") or {}).get("template", "")
        rows.append([f"{prefix}{branch}{icon} {label}", template, duration(node), node.get("message", "")])
        kids = [k for k in node.get("children") or [] if k in nodes]
        kids.sort(key=lambda k: nodes[k].get("startedAt") or "~")
        child_prefix = prefix + ("" if depth == 0 else ("  " if last else "│ "))
        for index, kid in enumerate(kids):
            walk(kid, child_prefix, index == len(kids) - 1, depth + 1)

    for root in roots:
        walk(root, "", True, 0)
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
    text = f"{workflow['metadata']['name']}: {status.get('phase') or 'Pending'}  {status.get('progress', '0/0')}"
    return text + (f"  running: {', '.join(running)}" if running else "")
