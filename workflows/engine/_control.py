"""RunControl: how a controller stops, terminates, suspends and resumes a running workflow (thread-safe)."""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["RunControl", "matches_selector"]


def matches_selector(node: dict[str, Any], selector: str | None) -> bool:
    """Argo's ``--node-field-selector``: comma-separated ``field=value`` / ``field!=value`` over node fields
    (``displayName``, ``name``, ``id``, ``templateName``, ``phase``, ``type``); None matches every node."""
    if not selector:
        return True
    for clause in selector.split(","):
        clause = clause.strip()
        if not clause:
            continue
        negate = "!=" in clause
        field, _, wanted = clause.partition("!=" if negate else "=")
        value = node.get(field.strip().removeprefix("status."), "")
        if (str(value) == wanted.strip()) == negate:
            return False
    return True


class RunControl:
    """Flags the controller flips and the runner obeys promptly (its loops poll every 50-200 ms)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stop_message: str | None = None
        self.terminate_message: str | None = None
        self.suspended = False
        self._resumes: list[tuple[float, str | None]] = []

    def stop(self, message: str = "") -> None:
        """Like ``argo stop``: running nodes are killed, no new ones start, exit handlers still run."""
        with self._lock:
            self.stop_message = message or "Stopped with strategy 'Stop'"

    def terminate(self, message: str = "") -> None:
        """Like ``argo terminate``: like stop, but exit handlers do not run."""
        with self._lock:
            self.terminate_message = message or "Stopped with strategy 'Terminate'"

    def suspend(self) -> None:
        with self._lock:
            self.suspended = True

    def resume(self, node_field_selector: str | None = None) -> None:
        """Resume the workflow (no selector) and/or the suspend nodes the selector matches."""
        with self._lock:
            if node_field_selector is None:
                self.suspended = False
            self._resumes.append((time.monotonic(), node_field_selector))

    @property
    def stopping(self) -> bool:
        return self.stop_message is not None or self.terminate_message is not None

    def resumed_since(self, since: float, node: dict[str, Any]) -> bool:
        with self._lock:
            return any(at >= since and matches_selector(node, sel) for at, sel in self._resumes)
