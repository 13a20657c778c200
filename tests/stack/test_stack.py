"""The process manager with real processes: a tiny HTTP server stands in for a service (fast), started detached,
health-checked, reported, stopped by process group; crashes and stale PID files are handled with clear errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftloop.config import get_settings
from driftloop.errors import NotFoundError, ServiceUnavailableError
from driftloop.stack import ProcessManager, ordered, stack_group
from driftloop.stack.services import SERVICES, Service, service
from tests._support import free_port as _free_port


def _http_service(port: int, name: str = "web", command: list[str] | None = None) -> Service:
    return Service(
        name=name,
        description="python -m http.server",
        command=lambda s: command or [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        health_url=lambda s: f"http://127.0.0.1:{port}/",
        start_timeout_s=30,
    )


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProcessManager]:
    monkeypatch.setenv("DRIFTLOOP_HOME", str(tmp_path / "home"))
    pm = ProcessManager(get_settings())
    yield pm
    for pid_file in pm.state_dir.glob("*.pid"):  # never leave a process behind, even when a test fails
        pm.stop(_http_service(0, name=pid_file.stem))


def test_start_status_idempotent_start_and_stop(manager: ProcessManager) -> None:
    web = _http_service(_free_port())
    state = manager.start(web)
    assert state.status == "running" and state.healthy and state.pid
    record = json.loads(manager.pid_file(web).read_text())
    assert record["pid"] == state.pid and "http.server" in record["command"]
    assert manager.start(web).pid == state.pid  # already running: not started twice
    assert manager.stop(web)
    assert manager.state(web).status == "stopped" and not manager.pid_file(web).exists()
    with pytest.raises(ProcessLookupError):
        os.kill(state.pid, 0)
    assert "starting:" in manager.log_file(web).read_text()


def test_a_service_that_dies_at_start_fails_with_its_log(manager: ProcessManager) -> None:
    broken = _http_service(
        _free_port(), command=[sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"]
    )
    with pytest.raises(ServiceUnavailableError) as caught:
        manager.start(broken)
    assert "boom: bad config" in caught.value.message and str(manager.log_file(broken)) in (caught.value.hint or "")
    assert manager.state(broken).status == "stopped"


def test_stale_pid_file_is_reported_and_replaced(manager: ProcessManager) -> None:
    web = _http_service(_free_port())
    manager.state_dir.mkdir(parents=True)
    manager.pid_file(web).write_text(json.dumps({"pid": 2**22 + 7, "command": ["gone"], "started": 0}))
    assert manager.state(web).status == "stale"
    assert manager.start(web).status == "running"
    assert manager.stop(web)


def test_a_foreign_process_on_the_port_is_not_adopted(manager: ProcessManager) -> None:
    port = _free_port()
    other = ProcessManager(
        get_settings().__class__(**{**get_settings().as_dict(), "home": manager.state_dir.parent / "other"})
    )
    web = _http_service(port)
    other.start(web)
    try:
        with pytest.raises(ServiceUnavailableError) as caught:
            manager.start(web)
        assert "already answers" in caught.value.message
    finally:
        other.stop(web)


def test_ordering_follows_dependencies_and_rejects_unknown_names() -> None:
    assert [s.name for s in ordered(["engine"])] == ["mlflow", "engine"]
    names = [s.name for s in ordered()]
    assert set(names) == {s.name for s in SERVICES}
    assert all(names.index(dep) < names.index(s.name) for s in SERVICES for dep in s.depends_on)
    with pytest.raises(NotFoundError):
        ordered(["nope"])


def test_mlflow_service_uses_sqlite_home_artifacts_and_no_job_runners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_HOME", str(tmp_path))
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_URI", "http://127.0.0.1:5123")
    settings = get_settings()
    mlflow = service("mlflow")
    command = mlflow.command(settings)
    assert command[command.index("--port") + 1] == "5123"
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    assert command[command.index("--artifacts-destination") + 1].startswith(str(tmp_path))
    assert mlflow.env(settings) == {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def test_status_and_down_commands(manager: ProcessManager) -> None:
    result = CliRunner().invoke(stack_group, ["status"])
    assert result.exit_code == 0 and all(s.name in result.output for s in SERVICES)
    assert "stopped" in result.output
    down = CliRunner().invoke(stack_group, ["down"])
    assert down.exit_code == 0 and "nothing was running" in down.output


def test_stop_all_gives_each_service_its_own_grace(manager: ProcessManager) -> None:
    """`stack down`: the deployer gets a minute (it stops its model servers first), the others keep 15 s; one
    service's longer grace must not let another that ignores SIGTERM run on past its own."""
    import dataclasses
    import time

    stubborn = ("import signal, sys, http.server; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(sys.argv[1]), "
                "bind='127.0.0.1')")  # fmt: skip
    quick_port, slow_port = _free_port(), _free_port()
    quick = dataclasses.replace(_http_service(quick_port, "quick", [sys.executable, "-c", stubborn, str(quick_port)]),
                                stop_timeout_s=1.0)  # fmt: skip
    slow = dataclasses.replace(_http_service(slow_port, "slow", [sys.executable, "-c", stubborn, str(slow_port)]),
                               stop_timeout_s=4.0)  # fmt: skip
    pids = {svc.name: manager.start(svc).pid for svc in (quick, slow)}
    started = time.monotonic()
    gone: dict[str, float] = {}

    def watch() -> None:
        while len(gone) < 2 and time.monotonic() - started < 20:
            for name, pid in pids.items():
                if name not in gone and not _running(pid):
                    gone[name] = time.monotonic() - started
            time.sleep(0.05)

    import threading

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert [svc.name for svc in manager.stop_all([quick, slow])] == ["quick", "slow"]
    watcher.join()
    assert gone["quick"] < 3.0 <= gone["slow"] < 8.0, gone  # SIGKILLed each after its own grace


def _running(pid: int) -> bool:
    """Alive and not a zombie (the manager's children stay in /proc until they are reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stack_down_stops_model_servers_a_killed_deployer_left(manager: ProcessManager) -> None:
    """Found in CI: a deployer blocked in a registry call was SIGKILLed by `stack down` before it stopped its model
    servers, which lead their own sessions and kept running. The stack now stops what the deployer's state records
    (the servers still running our `scoring-server` on that model), and nothing else."""
    import subprocess
    import time

    home = manager.settings.home
    model_dir = str(home / "deployer" / "models" / "v1")
    sleeper = "import sys, time; time.sleep(120)"  # argv names the server and its model, as the real one's does
    server = subprocess.Popen([sys.executable, "-c", sleeper, "scoring-server", "--model-uri", model_dir],
                              start_new_session=True)  # fmt: skip
    stranger = subprocess.Popen([sys.executable, "-c", sleeper, "not-ours"], start_new_session=True)
    try:
        state = {"serving": "1", "generation": 1, "servers": [
            {"version": "1", "port": 1, "pid": server.pid, "model_dir": model_dir, "spool_dir": ""},
            {"version": "2", "port": 2, "pid": stranger.pid, "model_dir": model_dir, "spool_dir": ""},  # a reused PID
        ]}  # fmt: skip
        (home / "deployer").mkdir(parents=True)
        (home / "deployer" / "state.json").write_text(json.dumps(state))
        started = time.monotonic()
        manager.stop_all([service("deployer")])  # no deployer runs: it was killed (or crashed) earlier
        # gone (reaped by the manager, which is its parent here), well before the SIGKILL 30 s after the SIGTERM
        assert not _running(server.pid) and time.monotonic() - started < 10
        assert stranger.poll() is None  # the recorded PID runs something else now: left alone
    finally:
        for process in (server, stranger):
            if process.poll() is None:
                process.kill()
                process.wait()
