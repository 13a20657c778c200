"""Help that teaches, and is instant: services listed, examples given, no pandas for `--help`."""

from __future__ import annotations

import re
import subprocess
import sys

from click.testing import CliRunner

from driftloop.cli import cli
from driftloop.stack import SERVICES


def test_stack_up_help_lists_every_service_and_commands_have_examples() -> None:
    runner = CliRunner()
    up = runner.invoke(cli, ["stack", "up", "--help"])
    assert up.exit_code == 0 and "Services, in start order:" in up.output
    for svc in SERVICES:
        assert re.search(rf"^  {re.escape(svc.name)} ", up.output, re.MULTILINE), svc.name
    for command in (["stack"], ["stack", "up"], ["stack", "down"], ["data", "scenarios"], ["features", "apply"]):
        shown = runner.invoke(cli, [*command, "--help"])
        assert shown.exit_code == 0 and re.search(r"Examples?:", shown.output), command
        assert f"driftloop {' '.join(command)}" in shown.output, command


def test_drift_and_monitor_help_import_no_data_library() -> None:
    """The cause of the 2.4-2.7 s help: pandas/numpy/scipy at import. The wall time is in docs/drift.md."""
    for command in ("drift", "monitor"):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "driftloop", command, "--help"],
                              capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
        assert proc.returncode == 0 and "Usage: driftloop" in proc.stdout
        imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
        assert "click" in imported
        assert not imported & {"pandas", "numpy", "scipy", "evidently", "pyarrow"}, command
