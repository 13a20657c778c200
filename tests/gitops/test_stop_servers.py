"""Stopping model servers the deployer started: the group leader is the deployer's own child, so its zombie must not
count as a running server (it did: every stop waited out its deadline, and `stack down` took 44 s)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from monitors.deployer._servers import ModelServer, stop_servers


def test_a_stopped_child_server_is_reaped_not_waited_for() -> None:
    children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
                for _ in range(2)]  # fmt: skip
    servers = [ModelServer(str(n), 1, child.pid, "/nonexistent") for n, child in enumerate(children)]
    started = time.monotonic()
    stop_servers(servers, timeout_s=10.0)
    assert time.monotonic() - started < 5.0  # SIGTERM ends both at once; nothing waits for the 10 s deadline
    assert all(not Path(f"/proc/{child.pid}").exists() for child in children)  # reaped, not left as zombies
