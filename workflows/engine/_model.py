"""The workflow status as Argo writes it: node ids, phases, timestamps, and one lock around all of it.

Every change to a node goes through :class:`StatusBook`, which keeps ``status.nodes`` in Argo's format and
calls the persistence callback after each phase change, so a crash loses at most the running nodes.
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "COMPLETED",
    "FAILED_PHASES",
    "StatusBook",
    "node_id_for",
    "now_rfc3339",
]

COMPLETED = frozenset({"Succeeded", "Failed", "Error", "Skipped", "Omitted"})
FAILED_PHASES = frozenset({"Failed", "Error"})
POD_TYPES = frozenset({"Pod"})  # what progress counts (containerSet Container nodes are not pods)


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


@functools.lru_cache(maxsize=1 << 16)
def node_id_for(workflow_name: str, node_name: str) -> str:
    """Argo's node id: the workflow name for the root, else name + FNV-32a hash of the node name."""
    if node_name == workflow_name:
        return workflow_name
    return f"{workflow_name}-{_fnv32a(node_name)}"


class StatusBook:
    """Thread-safe owner of ``workflow['status']``; the only writer of node fields."""

    def __init__(
        self,
        workflow: dict[str, Any],
        on_change: Callable[[dict], None] | None,
        on_dirty: Callable[[], None] | None = None,
    ) -> None:
        self.workflow = workflow
        self.status: dict[str, Any] = workflow.setdefault("status", {})
        self.nodes: dict[str, dict[str, Any]] = self.status.setdefault("nodes", {})
        self.name: str = workflow["metadata"]["name"]
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._on_change = on_change  # gets a deep copy after every change: O(nodes) each, for small runs
        self._on_dirty = on_dirty  # only told that something changed (the engine's persister): O(1)
        self._child_sets: dict[str, set[str]] = {}
        self._dirty_nodes: set[str] = set()  # ids changed since the persister's last snapshot
        self._pods = {i for i, n in self.nodes.items() if n.get("type") in POD_TYPES}  # progress, kept as we go
        self._pods_done = {i for i in self._pods if self.nodes[i].get("phase") in COMPLETED}
        self._started_monotonic: dict[str, float] = {}
        self._watchers: list[Callable[[], None]] = []

    # -- watchers ------------------------------------------------------------------------------------------
    def watch(self, watcher: Callable[[], None]) -> None:
        """Call ``watcher`` (under the lock, so it sees every state) after each change; it must not block."""
        with self.lock:
            self._watchers.append(watcher)

    def unwatch(self, watcher: Callable[[], None]) -> None:
        with self.lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    # -- persistence ---------------------------------------------------------------------------------------
    def publish(self) -> None:
        """Tell the persister (and an ``on_change`` callback, with a deep copy) and wake everyone waiting on
        node changes. Nothing here may cost O(nodes) for the persister: a run makes ~3 changes per node."""
        with self.lock:
            for watcher in list(self._watchers):
                watcher()
            snapshot = None
            if self._on_change is not None:
                self.refresh_progress()
                snapshot = copy.deepcopy(self.workflow)
            self.changed.notify_all()
        if snapshot is not None and self._on_change is not None:
            self._on_change(snapshot)
        if self._on_dirty is not None:
            self._on_dirty()

    def refresh_progress(self) -> None:
        """``status.progress`` ("succeeded/total" pods), from counts kept by create/update (O(1))."""
        self.status["progress"] = f"{len(self._pods_done)}/{len(self._pods)}"

    def _count(self, node: dict[str, Any]) -> None:
        node_id = node.get("id")
        if node.get("type") not in POD_TYPES or node_id is None:
            return
        self._pods.add(node_id)
        if node.get("phase") == "Succeeded":  # Argo counts succeeded pods (N/M)
            self._pods_done.add(node_id)
        else:
            self._pods_done.discard(node_id)

    # -- nodes ---------------------------------------------------------------------------------------------
    def get(self, node_name: str) -> dict[str, Any] | None:
        with self.lock:
            return self.nodes.get(node_id_for(self.name, node_name))

    def by_id(self, node_id: str) -> dict[str, Any]:
        with self.lock:
            return self.nodes[node_id]

    def create(
        self,
        node_name: str,
        *,
        display_name: str,
        node_type: str,
        template_name: str | None,
        boundary_id: str | None,
        parent_id: str | None,
        phase: str = "Pending",
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create (or reuse, after a restart) the node named ``node_name`` and link it under its parent."""
        node_id = node_id_for(self.name, node_name)
        with self.lock:
            node = self.nodes.get(node_id)
            if node is None:
                node = {
                    "id": node_id,
                    "name": node_name,
                    "displayName": display_name,
                    "type": node_type,
                    "phase": phase,
                    "startedAt": now_rfc3339(),
                }
                if template_name:
                    node["templateName"] = template_name
                if boundary_id:
                    node["boundaryID"] = boundary_id
                node.update(extra or {})
                self.nodes[node_id] = node
                self._dirty_nodes.add(node_id)
                self._count(node)
            self._started_monotonic.setdefault(node_id, time.monotonic())
            if parent_id:
                self.link(parent_id, node_id)
        self.publish()
        return node

    def link(self, parent_id: str, child_id: str) -> None:
        with self.lock:
            parent = self.nodes.get(parent_id)
            if parent is not None:
                children = parent.setdefault("children", [])
                known = self._child_sets.get(parent_id)
                if known is None or len(known) != len(children):  # first link, or the list changed elsewhere
                    known = self._child_sets[parent_id] = set(children)
                if child_id not in known:  # a set: a fan-out of n children must not cost O(n²)
                    known.add(child_id)
                    children.append(child_id)
                    self._dirty_nodes.add(parent_id)

    def update(self, node: dict[str, Any], **fields: Any) -> None:
        """Set fields on a node; a completed phase also stamps finishedAt. Publishes the change."""
        with self.lock:
            for key, value in fields.items():
                if value is None:
                    node.pop(key, None)
                else:
                    node[key] = value
            if fields.get("phase") in COMPLETED and "finishedAt" not in node:
                node["finishedAt"] = now_rfc3339()
            if node is not self.status and "id" in node:
                self._dirty_nodes.add(node["id"])
                self._count(node)
        self.publish()

    def take_dirty_nodes(self) -> set[str]:
        """The ids of the nodes changed since the last call (call under the lock); the persister re-encodes
        only those, so a snapshot of a big run does not serialise every node again."""
        dirty, self._dirty_nodes = self._dirty_nodes, set()
        return dirty

    def finish(self, node: dict[str, Any], phase: str, message: str | None = None, **fields: Any) -> dict[str, Any]:
        if message:
            fields["message"] = message
        self.update(node, phase=phase, **fields)
        return node

    def elapsed(self, node: dict[str, Any]) -> float:
        """Seconds since this engine process first saw the node (for deadlines and lastRetry.duration)."""
        return time.monotonic() - self._started_monotonic.get(node["id"], time.monotonic())

    def failures(self) -> list[dict[str, Any]]:
        """``{{workflow.failures}}``: the failed pod-like nodes, as Argo lists them."""
        with self.lock:
            return [
                {
                    "displayName": n.get("displayName"),
                    "message": n.get("message", ""),
                    "templateName": n.get("templateName", ""),
                    "phase": n.get("phase"),
                    "podName": n.get("id"),
                    "finishedAt": n.get("finishedAt", ""),
                }
                for n in self.nodes.values()
                if n.get("phase") in FAILED_PHASES and n.get("type") in POD_TYPES
            ]

    def children_phases(self, node: dict[str, Any]) -> tuple[str, ...]:
        with self.lock:
            return tuple(self.nodes[c].get("phase", "") for c in node.get("children", []) if c in self.nodes)

    def all_nodes(self) -> Iterable[dict[str, Any]]:
        with self.lock:
            return list(self.nodes.values())
