"""`driftloop sidecar` refuses bad input with a message that says what to do, and never leaves a mess."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from driftloop.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0), capsys.readouterr().err


def test_bad_listen_and_upstream_are_explained(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["sidecar", "--upstream", "http://127.0.0.1:1", "--listen", "localhost"], capsys)
    assert code == 2 and "is not HOST:PORT" in err and "hint: e.g. --listen" in err
    code, err = _run(["sidecar", "--upstream", "127.0.0.1:5001", "--listen", "127.0.0.1:1"], capsys)
    assert code == 2 and "is not an http(s) URL" in err


def test_a_busy_port_is_a_clear_error_and_releases_the_spool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = ["sidecar", "--listen", f"127.0.0.1:{port}", "--upstream", "http://127.0.0.1:1",
                "--lake", str(tmp_path / "lake"), "--spool", str(tmp_path / "spool")]  # fmt: skip
        code, err = _run(argv, capsys)
        assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err
        code, err = _run(argv, capsys)  # the spool lock was released by the failed start
        assert f"cannot listen on 127.0.0.1:{port}" in err and "in use by another sidecar" not in err
