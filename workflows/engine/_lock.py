"""One engine per home: an exclusive ``flock`` on ``engine/engine.pid`` that holds the owner's PID.

The kernel drops the lock when the process dies (even by kill -9), so a stale file never blocks a restart; a
clean stop removes the file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from driftloop.errors import ConflictError

__all__ = ["EngineLock", "lock_path"]


def lock_path(home: Path) -> Path:
    return home / "engine" / "engine.pid"


class EngineLock:
    """Held for the lifetime of an ``engine serve`` process."""

    def __init__(self, home: Path) -> None:
        self.path = lock_path(home)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "unknown"
                handle.close()
                raise ConflictError(
                    f"another engine (PID {owner}) already serves the home {self.path.parent.parent}",
                    hint=f"use that engine (it answers on DRIFTLOOP_ARGO_SERVER), stop it with `kill {owner}`, "
                    "or set DRIFTLOOP_HOME to another folder",
                ) from None
            if _same_file(handle, self.path):
                break
            handle.close()  # a stopping engine removed the file after we opened it: lock the new one
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Remove the file (no stale PID after a clean stop), then unlock."""
        if self._file is not None:
            if _same_file(self._file, self.path):
                self.path.unlink(missing_ok=True)
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> EngineLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _same_file(handle: IO[str], path: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
