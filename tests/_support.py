"""Helpers every test folder shares: a free loopback port, and the console script run as a user would."""

from __future__ import annotations

import socket
import subprocess
import sys

__all__ = ["driftloop", "free_port"]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def driftloop(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``driftloop ARGS`` in a subprocess with ``env``; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "driftloop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
