"""Workflow logs in Argo's shape: one ``{"result": {"content": line, "podName": pod}}`` per line.

The runner writes each pod node's stdout+stderr to ``node_log_path(home, workflow, node_id)``; here we map
nodes to Argo's pod names (``<workflow>-<template>-<hash>``), read those files, and optionally follow them
until the workflow finishes (``argo logs -f``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from workflows.engine._names import safe_path_segment

__all__ = ["log_entries", "log_file", "node_log_path", "pod_name", "pod_nodes", "pods_matching"]

_POD_TYPES = {"Pod", "Container"}
_FINISHED = {"Succeeded", "Failed", "Error"}


def pod_name(workflow_name: str, node: dict[str, Any]) -> str:
    """Argo's v2 pod name: ``<workflow>-<template>-<fnv hash of the node name>`` (the node id's suffix)."""
    node_id = str(node.get("id", ""))
    template = node.get("templateName") or (node.get("templateRef") or {}).get("template")
    if node_id == workflow_name or not template or not node_id.startswith(workflow_name + "-"):
        return node_id
    return f"{workflow_name}-{template}-{node_id.rsplit('-', 1)[-1]}"


def _tree_order(nodes: dict[str, dict[str, Any]], root: str) -> dict[str, int]:
    """Depth-first position of each node from the root (steps and DAG order when start times tie)."""
    order: dict[str, int] = {}
    stack = [root]
    while stack:
        node_id = stack.pop()
        if node_id in order or node_id not in nodes:
            continue
        order[node_id] = len(order)
        stack.extend(reversed(nodes[node_id].get("children") or []))
    return order


def pod_nodes(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    """Pod nodes in start order (ties: tree order; those not started yet last)."""
    nodes: dict[str, dict[str, Any]] = (workflow.get("status") or {}).get("nodes") or {}
    order = _tree_order(nodes, workflow["metadata"]["name"])
    pods = [n for n in nodes.values() if n.get("type") in _POD_TYPES]
    return sorted(pods, key=lambda n: (n.get("startedAt") or "~", order.get(n.get("id", ""), len(order))))


def node_log_path(home: Path, workflow_name: str, node_id: str) -> Path:
    """Where a node's stdout+stderr are logged (kept after the run; the sandbox itself is removed).

    The one rule for the writer (the pod runner) and the readers (the API's log route, ``runs logs``).
    """
    return Path(home) / "logs" / safe_path_segment(workflow_name) / f"{safe_path_segment(node_id, 'node id')}.log"


def log_file(home: Path, workflow_name: str, node_id: str) -> Path:
    """Where the runner logged a node (the readers' name for :func:`node_log_path`)."""
    return node_log_path(home, workflow_name, node_id)


def _selected(workflow: dict[str, Any], pod: str | None) -> list[dict[str, Any]]:
    name = workflow["metadata"]["name"]
    nodes = pod_nodes(workflow)
    if not pod:
        return nodes
    retried = re.compile(re.escape(pod) + r"\(\d+\)$")  # "train" also selects its retries "train(0)", "train(1)"
    return [
        n
        for n in nodes
        if pod in {pod_name(name, n), n.get("id"), n.get("displayName"), n.get("name")}
        or retried.match(str(n.get("displayName", "")))
    ]


def pods_matching(workflow: dict[str, Any], pod: str | None) -> list[dict[str, Any]]:
    """The pod nodes ``logs`` prints for ``pod`` (pod name, node id, display name or node name; None: all)."""
    return _selected(workflow, pod)


def log_entries(
    workflow: dict[str, Any],
    home: Path,
    *,
    pod: str | None = None,
    grep: str | None = None,
    follow: bool = False,
    refresh: Callable[[], dict[str, Any] | None] | None = None,
    poll_seconds: float = 0.2,
) -> Iterator[dict[str, Any]]:
    """Yield log entries; with ``follow`` keep reading (via ``refresh``) until the workflow finishes."""
    pattern = re.compile(grep) if grep else None
    name = workflow["metadata"]["name"]
    offsets: dict[str, int] = {}
    partial: dict[str, str] = {}
    while True:
        finished = (workflow.get("status") or {}).get("phase") in _FINISHED
        for node in _selected(workflow, pod):
            path = log_file(home, name, node["id"])
            if not path.exists():
                continue
            with open(path, "rb") as handle:
                handle.seek(offsets.get(node["id"], 0))
                chunk = handle.read().decode("utf-8", errors="replace")
                offsets[node["id"]] = handle.tell()
            text = partial.pop(node["id"], "") + chunk
            lines = text.split("\n")
            if not (finished or not follow or node.get("phase") in _FINISHED):
                partial[node["id"]] = lines.pop()  # wait for the rest of an incomplete line
            elif lines and lines[-1] == "":
                lines.pop()
            for line in lines:
                if pattern is None or pattern.search(line):
                    yield {"result": {"content": line, "podName": pod_name(name, node)}}
        if not follow or finished or refresh is None:
            return
        time.sleep(poll_seconds)
        fresh = refresh()
        if fresh is None:
            return
        workflow = fresh
