"""Daemon steps/tasks (``daemon: true``): the pod keeps running in the background; once it has started and its
``readinessProbe`` (exec, tcpSocket, httpGet against 127.0.0.1) passes, its node is ``Running`` with
``daemoned: true`` and the step counts as done. The daemon is killed when the steps/DAG template that started
it (its boundary) finishes, and its node then ends ``Succeeded`` (Argo ignores the failure of a daemoned pod)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from workflows.engine._model import COMPLETED

__all__ = ["DAEMON_STOPPED", "Daemons", "probe_once"]

DAEMON_STOPPED = "daemon stopped: the template that started it finished"
PROBE_TIMEOUT_SECONDS = 1.0
DEFAULT_PERIOD_SECONDS = 1.0  # Argo/Kubernetes default to 10 s; locally a daemon is ready sooner, so probe faster


@dataclass
class _Daemon:
    boundary_id: str | None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    followers: list[dict[str, Any]] = field(default_factory=list)  # nodes that end with it (its Retry node)


def probe_once(probe: dict[str, Any]) -> bool:
    """One readiness check, as the kubelet does it, against 127.0.0.1 (the host network)."""
    if probe.get("exec"):
        command = [str(a) for a in probe["exec"].get("command") or []]
        try:
            done = subprocess.run(command, capture_output=True, timeout=_timeout(probe), check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0
    if probe.get("tcpSocket"):
        try:
            with socket.create_connection(("127.0.0.1", int(probe["tcpSocket"]["port"])), timeout=_timeout(probe)):
                return True
        except OSError:
            return False
    if probe.get("httpGet"):
        get = probe["httpGet"]
        scheme = str(get.get("scheme") or "HTTP").lower()
        path = str(get.get("path") or "/")
        url = f"{scheme}://127.0.0.1:{int(get['port'])}{path if path.startswith('/') else '/' + path}"
        try:
            # Kubernetes' httpGet probe: any status from 200 to 399 is ready, a redirect is not followed
            # (https certificates are not checked, as the kubelet does not check them)
            response = httpx.get(url, timeout=_timeout(probe), follow_redirects=False, verify=False)
        except (httpx.HTTPError, OSError, ValueError):
            return False
        return 200 <= response.status_code < 400
    return True  # no handler given: ready once started


def _timeout(probe: dict[str, Any]) -> float:
    return float(probe.get("timeoutSeconds") or PROBE_TIMEOUT_SECONDS)


class Daemons:
    """The daemons of one workflow run, by the boundary (steps/DAG node) that must stop them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_node: dict[str, _Daemon] = {}

    def start(self, ex: Any, node: dict[str, Any], template: dict[str, Any], run: Any) -> dict[str, Any]:
        """Run ``run(stop_reason)`` (the pod) in the background; return the node once it is daemoned, or the
        finished node if it ended (or was never ready) first."""
        daemon = _Daemon(node.get("boundaryID"))
        with self._lock:
            self._by_node[node["id"]] = daemon

        def stop_reason() -> str | None:
            return DAEMON_STOPPED if daemon.stop.is_set() else None

        def run_then_finish_followers() -> None:
            try:
                run(stop_reason)
            finally:
                with ex.book.lock:
                    for follower in daemon.followers:
                        ex.book.finish(follower, node.get("phase", "Error"), node.get("message"), daemoned=None)
                    daemon.followers.clear()

        daemon.thread = threading.Thread(target=run_then_finish_followers, daemon=True, name=f"daemon-{node['id']}")
        daemon.thread.start()
        probe = template.get("readinessProbe") or {}
        if not self._wait(ex, node, lambda: node.get("phase") != "Pending", None):
            return self._ended(node, daemon)
        time.sleep(float(probe.get("initialDelaySeconds") or 0))
        period = float(probe.get("periodSeconds") or DEFAULT_PERIOD_SECONDS)
        while not probe_once(probe):
            if not self._wait(ex, node, lambda: False, period):
                return self._ended(node, daemon)
        with ex.book.lock:
            if node.get("phase") in COMPLETED:
                return self._ended(node, daemon)
            ex.book.update(node, daemoned=True)
        return node

    def follow(self, ex: Any, node: dict[str, Any], follower: dict[str, Any]) -> None:
        """``follower`` (a Retry node around the daemon ``node``) takes the daemon's final phase when it ends."""
        with self._lock:
            daemon = self._by_node.get(node["id"])
        with ex.book.lock:  # the daemon's thread finishes its followers under this lock, after the node
            if daemon is not None and node.get("phase") not in COMPLETED:
                daemon.followers.append(follower)
            else:
                ex.book.finish(follower, node.get("phase", "Error"), node.get("message"), daemoned=None)

    def _wait(self, ex: Any, node: dict[str, Any], condition: Any, seconds: float | None) -> bool:
        """Wait (on node changes, no polling loop) until ``condition`` or ``seconds`` pass; False once the pod
        has ended or the run is shutting down."""
        until = None if seconds is None else time.monotonic() + seconds
        with ex.book.changed:
            while True:
                if node.get("phase") in COMPLETED or ex.shutdown_reason() is not None:
                    return False
                if condition():
                    return True
                left = None if until is None else until - time.monotonic()
                if left is not None and left <= 0:
                    return True
                ex.book.changed.wait(0.5 if left is None else min(left, 0.5))

    def _ended(self, node: dict[str, Any], daemon: _Daemon) -> dict[str, Any]:
        daemon.stop.set()
        if daemon.thread is not None:
            daemon.thread.join()
        with self._lock:
            self._by_node.pop(node["id"], None)
        return node

    def stop_within(self, boundary_id: str | None) -> None:
        """Kill the daemons a finishing steps/DAG template started (``None``: all of them, at the workflow's end)
        and wait until their nodes are final."""
        with self._lock:
            chosen = [
                (node_id, d)
                for node_id, d in self._by_node.items()
                if boundary_id is None or d.boundary_id == boundary_id
            ]
            for node_id, _ in chosen:
                self._by_node.pop(node_id)
        for _, daemon in chosen:
            daemon.stop.set()
        for _, daemon in chosen:
            if daemon.thread is not None:
                daemon.thread.join()
