"""``python -m monitors.receiver.launch prometheus|alertmanager``: write the configs from the settings, then run it.

The stack starts Prometheus and Alertmanager through this so their configuration is regenerated from
``_rules.py`` on every start. It stays the parent (the stack's PID file names this command) and forwards
SIGTERM/SIGINT to the server, then exits with the server's status once it has shut down cleanly.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from types import FrameType

from driftloop.config import get_settings
from monitors.receiver._local import (
    alertmanager_command,
    prometheus_command,
    write_alertmanager_files,
    write_prometheus_files,
)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args not in (["prometheus"], ["alertmanager"]):
        sys.exit("usage: python -m monitors.receiver.launch prometheus|alertmanager")
    settings = get_settings()
    if args[0] == "prometheus":
        write_prometheus_files(settings)
        command = prometheus_command(settings)
    else:
        write_alertmanager_files(settings)
        command = alertmanager_command(settings)
    if shutil.which(command[0]) is None:
        sys.exit(f"error: {command[0]} is not installed\n  hint: run `make system` (Debian packages prometheus, "
                 "prometheus-alertmanager)")  # fmt: skip
    print("$ " + " ".join(command), flush=True)
    server = subprocess.Popen(command)

    def forward(signum: int, frame: FrameType | None) -> None:
        server.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    sys.exit(server.wait())


if __name__ == "__main__":
    main()
