"""``python -m monitors.receiver.launch prometheus|alertmanager``: write the configs from the settings, then exec.

The stack starts Prometheus and Alertmanager through this so their configuration is regenerated from
``_rules.py`` on every start and the PID the stack records is the real server's (``os.execvp``).
"""

from __future__ import annotations

import os
import shutil
import sys

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
    sys.stdout.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
