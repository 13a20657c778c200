"""The GPU pool: a node asking for ``nvidia.com/gpu`` gets ``CUDA_VISIBLE_DEVICES`` set to GPUs no other node
holds; it waits when all are taken, and on a machine without GPUs it runs on CPU with a warning (or fails,
with ``DRIFTLOOP_GPU_FALLBACK=error``)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["GpuPool", "detect_gpus", "gpus_requested"]


def detect_gpus() -> list[str]:
    """GPU indices from ``nvidia-smi -L`` ("GPU 0: ..."), or [] when there is none."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.split(":", 1)[0].split()[1] for line in listing.stdout.splitlines() if line.startswith("GPU ")]


def gpus_requested(container: dict[str, Any]) -> int:
    resources = container.get("resources") or {}
    for section in ("limits", "requests"):
        value = (resources.get(section) or {}).get("nvidia.com/gpu")
        if value not in (None, ""):
            return int(str(value))
    return 0


class GpuPool:
    def __init__(self, devices: list[str]) -> None:
        self.devices = list(devices)
        self._free = list(devices)
        self._cond = threading.Condition()

    def acquire(self, count: int, cancelled: Callable[[], bool]) -> list[str] | None:
        """Block until ``count`` GPUs are free; None if cancelled, or if the machine can never satisfy it."""
        if count > len(self.devices):
            return None
        with self._cond:
            while len(self._free) < count:
                if cancelled():
                    return None
                self._cond.wait(0.2)
            taken, self._free = self._free[:count], self._free[count:]
            return taken

    def release(self, devices: list[str]) -> None:
        with self._cond:
            self._free.extend(d for d in devices if d not in self._free)
            self._cond.notify_all()
