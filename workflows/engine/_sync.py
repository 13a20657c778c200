"""``synchronization``: mutexes and semaphores shared by every workflow of one engine process.

Semaphore sizes come from the ConfigMap the semaphore names (the engine's ConfigMap store), else from
``<home>/semaphores.yaml`` (``configmap-name: {key: size}``), else from ``DRIFTLOOP_SEMAPHORE_SIZE``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SyncManager", "lock_names"]


def lock_names(synchronization: dict[str, Any] | None, namespace: str) -> list[tuple[str, str | None]]:
    """(lock key, semaphore configmap/key or None for a mutex), in a fixed order to avoid deadlocks."""
    if not synchronization:
        return []
    names: list[tuple[str, str | None]] = []
    mutexes = list(synchronization.get("mutexes") or [])
    if synchronization.get("mutex"):
        mutexes.append(synchronization["mutex"])
    for mutex in mutexes:
        names.append((f"{mutex.get('namespace') or namespace}/Mutex/{mutex['name']}", None))
    semaphores = list(synchronization.get("semaphores") or [])
    if synchronization.get("semaphore"):
        semaphores.append(synchronization["semaphore"])
    for semaphore in semaphores:
        ref = semaphore.get("configMapKeyRef") or {}
        ident = f"{ref.get('name', semaphore.get('name', 'default'))}/{ref.get('key', 'default')}"
        names.append((f"{semaphore.get('namespace') or namespace}/ConfigMap/{ident}", ident))
    return sorted(names)


class SyncManager:
    def __init__(self, home: Path, default_size: int, configmaps: Any = None) -> None:
        self._sizes_file = home / "semaphores.yaml"
        self._configmaps = configmaps
        self._default = default_size
        self._held: dict[str, list[str]] = {}
        self._cond = threading.Condition()

    def _size(self, semaphore: str | None) -> int:
        if semaphore is None:
            return 1
        name, key = semaphore.split("/", 1)
        if self._configmaps is not None:
            from_configmap = self._configmaps.get(name, key)
            if from_configmap is not None and from_configmap.strip().isdigit():
                return max(1, int(from_configmap))
        if self._sizes_file.exists():
            configured = yaml.safe_load(self._sizes_file.read_text()) or {}
            value = (configured.get(name) or {}).get(key)
            if value is not None:
                return max(1, int(value))
        return self._default

    def acquire(
        self,
        holder: str,
        names: list[tuple[str, str | None]],
        cancelled: Callable[[], bool],
        on_wait: Callable[[str], None],
    ) -> bool:
        """Take every lock (all or nothing); False if ``cancelled`` became true while waiting."""
        if not names:
            return True
        with self._cond:
            announced = False
            while True:
                blocked = next((n for n, sem in names if len(self._held.get(n, [])) >= self._size(sem)), None)
                if blocked is None:
                    for name, _ in names:
                        self._held.setdefault(name, []).append(holder)
                    return True
                if cancelled():
                    return False
                if not announced:
                    on_wait(f"Waiting for {blocked} lock")
                    announced = True
                self._cond.wait(0.2)

    def release(self, holder: str, names: list[tuple[str, str | None]]) -> None:
        with self._cond:
            for name, _ in names:
                holders = self._held.get(name, [])
                if holder in holders:
                    holders.remove(holder)
            self._cond.notify_all()

    def holders(self, name: str) -> list[str]:
        with self._cond:
            return list(self._held.get(name, []))
