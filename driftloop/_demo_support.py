"""What every stage of `make demo` uses: the settings, a narrated ``driftloop`` call, polling, and the stop signal."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from driftloop.config import get_settings

__all__ = ["MODEL", "SETTINGS", "DemoStopped", "driftloop", "stage", "wait_for"]

SETTINGS = get_settings()
MODEL = SETTINGS.model_name
T = TypeVar("T")


class DemoStopped(Exception):
    """An unexpected outcome: the demo says what and stops."""


def stage(title: str) -> None:
    print(f"\n== {title}", flush=True)


def driftloop(*args: str, expect_ok: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``driftloop ARGS`` as a user would, echoing it (and its output unless ``quiet``)."""
    print(f"$ driftloop {' '.join(args)}", flush=True)
    proc = subprocess.run([sys.executable, "-m", "driftloop", *args], capture_output=True, text=True, check=False)
    if not quiet or (expect_ok and proc.returncode != 0):
        print((proc.stdout + proc.stderr).rstrip(), flush=True)
    if expect_ok and proc.returncode != 0:
        raise DemoStopped(f"`driftloop {' '.join(args)}` exited {proc.returncode} (its output is above)")
    return proc


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float) -> T:
    """Poll until ``probe`` returns something truthy; stop the demo after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (value := probe()) is None:
        if time.monotonic() > deadline:
            raise DemoStopped(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(1)
    return value
