"""The console script: every command is listed, loads, and has help that teaches."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from driftloop.cli import COMMANDS, cli


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in [*COMMANDS, "config"]:
        assert f"  {name} " in result.output, name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_loads_and_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_console_script_turns_errors_into_a_message_and_exit_code() -> None:
    env = {"DRIFTLOOP_GPU_FALLBACK": "sometimes", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "driftloop", "config"], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 2
    assert "error: DRIFTLOOP_GPU_FALLBACK='sometimes' is not valid" in proc.stderr
    assert "hint:" in proc.stderr


def test_config_command_shows_sources() -> None:
    result = CliRunner().invoke(cli, ["config"], env={"DRIFTLOOP_MODEL_NAME": "fraud"})
    assert result.exit_code == 0
    assert "DRIFTLOOP_MODEL_NAME=fraud  [env]" in result.output
    assert "DRIFTLOOP_NAMESPACE=driftloop  [default]" in result.output
