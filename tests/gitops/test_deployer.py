"""`driftloop deployer` end to end: real git, MLflow server, sidecar, deployer process and model server processes.

As in `driftloop stack up`, the sidecar only routes (``capture=False``) and each model server captures in process
(`driftloop scoring-server --ship`): the lake must hold every answered request once, whichever version answered it,
through canaries, swaps and a killed deployer.

One stack for the module (the tests run in order and build on each other, like the life of one environment):
first deployment -> canary under traffic with no failed request -> crash in the middle of a canary and restart
(both servers adopted) -> planted digest mismatch refused -> failing smoke test rolled back by a commit -> `driftloop
rollback` restores registry, git and serving -> `history` shows every event.

The drift monitor is its own exporter (``MonitorMetrics`` on ``start_http_server``, what ``driftloop monitor``
serves) reporting a window too small to score: the canary analysis reads it like the sidecar's metrics.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import start_http_server

from monitors.drift._metrics import MonitorMetrics
from monitors.payloads import parse_predictions
from monitors.sidecar import SidecarConfig
from monitors.sidecar.testing import BackgroundRouter
from monitors.traffic import encode_body, replay, scenario_records
from tests._support import driftloop, free_port
from tests.gitops.conftest import MODEL
from workflows.gitops import ModelPin, gitops_repo, history, pin_path
from workflows.steps._registry import connect, version_by_alias
from workflows.steps.promote import promote

pytestmark = pytest.mark.slow

PIN = str(pin_path("production"))


@dataclass
class Stack:
    sidecar: str
    deployer: str
    env: dict[str, str]
    home: Path
    lake: str
    process: subprocess.Popen[bytes] | None = None
    versions: dict[str, str] = field(default_factory=dict)

    def start_deployer(self) -> None:
        log = (self.home / "deployer-test.log").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "driftloop", "deployer", "-v"], env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        wait(lambda: _get(f"{self.deployer}/healthz") is not None, "the deployer's /healthz", 120)

    def status(self) -> dict[str, Any]:
        return _get(f"{self.deployer}/status") or {}

    def log(self) -> str:
        return (self.home / "deployer-test.log").read_text()[-3000:]


def _get(url: str) -> Any:
    try:
        answer = httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


def wait(predicate: Callable[[], Any], what: str, timeout_s: float = 300, log: Stack | None = None) -> Any:
    """Generous timeouts: each model server start costs a python + MLflow import, slow on a loaded machine."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}" + (f"; deployer log:\n{log.log()}" if log else ""))


def _pinned() -> str:
    text = subprocess.run(["git", f"--git-dir={os.environ['DRIFTLOOP_GITOPS_REPO']}", "show", f"main:{PIN}"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    return ModelPin.from_yaml(text).model_version


def _champion() -> str | None:
    held = version_by_alias(connect(), MODEL, "champion")
    return str(held.version) if held is not None else None


class Traffic:
    """`driftloop traffic`'s replay, in 1-second bursts on a thread until stopped; every answer is counted."""

    def __init__(self, target: str) -> None:
        self.target, self.statuses, self.errors = target, Counter[int](), Counter[str]()
        self.frame = scenario_records("baseline", rows=50, seed=5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            report = replay(self.frame, self.target, rps=20, duration_s=1.0, batch=1)
            self.statuses.update(report.statuses)
            self.errors.update(report.errors)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _score(stack: Stack) -> list[float]:
    frame = scenario_records("baseline", rows=2, seed=9)
    answer = httpx.post(f"{stack.sidecar}/invocations", content=encode_body(frame, "dataframe_split"),
                        headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return [float(p) for p in parse_predictions(answer.content)] + [float(a) for a in frame["age"]]


@pytest.fixture(scope="module")
def stack(gitops_env: Path, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    os.environ["DRIFTLOOP_GITOPS_REPO"] = str(tmp_path_factory.mktemp("deployer-gitops") / "gitops.git")
    lake = tmp_path_factory.mktemp("deployer-lake")
    config = SidecarConfig(upstream=f"http://127.0.0.1:{free_port()}", lake_uri=str(lake / "unused"),
                           spool_dir=lake / "spool", model=MODEL, model_version=None,
                           routes_file=gitops_env / "deployer" / "routes.json", capture=False)  # fmt: skip
    sidecar = BackgroundRouter(config).start()
    monitor = MonitorMetrics(MODEL)
    monitor.publish_empty(rows=0)
    exporter, exporter_thread = start_http_server(0, addr="127.0.0.1", registry=monitor.registry)
    deployer_url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "DRIFTLOOP_SERVING_URL": sidecar.url, "DRIFTLOOP_DEPLOYER_URL": deployer_url,
           "DRIFTLOOP_LAKE_URI": str(lake / "lake"),  # where the model servers' shippers write
           "DRIFTLOOP_MONITOR_URL": f"http://127.0.0.1:{exporter.server_port}",
           "DRIFTLOOP_DEPLOYER_CANARY_STEPS": "50", "DRIFTLOOP_DEPLOYER_CANARY_WINDOW": "1",
           "DRIFTLOOP_DEPLOYER_ANALYSIS_TIMEOUT": "60", "DRIFTLOOP_DEPLOYER_POLL": "0.3",
           "DRIFTLOOP_DEPLOYER_MIN_P99_REQUESTS": "20"}  # swaps, not sample sizes (test_analysis)  # fmt: skip
    running = Stack(sidecar.url, deployer_url, env, gitops_env, lake=str(lake / "lake"))
    running.start_deployer()
    try:
        yield running
    finally:
        if running.process is not None and running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)  # a clean stop stops its model servers
            running.process.wait(timeout=60)
        sidecar.stop()
        exporter.shutdown()
        exporter_thread.join(timeout=5)
        os.environ.pop("DRIFTLOOP_GITOPS_REPO", None)


def test_first_promotion_is_served_through_the_deployer(stack: Stack, register: Callable[[float], str]) -> None:
    stack.versions["v1"] = v1 = register(100.0)
    promote(MODEL, v1, payload_columns={})
    wait(lambda: stack.status().get("serving") == v1, f"v{v1} served", log=stack)
    predictions = _score(stack)
    assert predictions[:2] == pytest.approx([predictions[2] / 100, predictions[3] / 100])
    routes = _get(f"{stack.sidecar}/readyz")["routing"]["routes"]
    assert [(r["name"], r["weight"]) for r in routes] == [(f"v{v1}", 100.0)]  # the sidecar's --upstream is gone
    port = stack.status()["servers"][v1]["port"]  # the local Prometheus scrapes it (file_sd)
    targets = json.loads((stack.home / "deployer" / "scrape-targets.json").read_text())
    assert targets == [{"targets": [f"127.0.0.1:{port}"], "labels": {"version": v1}}]


def test_promotion_canaries_and_swaps_with_no_failed_request(stack: Stack, register: Callable[[float], str]) -> None:
    v1, v2 = stack.versions["v1"], register(50.0)
    stack.versions["v2"] = v2
    old_pid = stack.status()["servers"][v1]["pid"]
    with Traffic(f"{stack.sidecar}/invocations") as traffic:
        time.sleep(1.0)
        promote(MODEL, v2, payload_columns={})
        wait(lambda: stack.status().get("serving") == v2, f"v{v2} served", log=stack)
        time.sleep(1.0)
    assert sum(traffic.statuses.values()) > 40 and set(traffic.statuses) == {200}, traffic.statuses
    assert not traffic.errors  # zero failed requests across smoke test, canary, promotion and the old one's stop
    analysis = stack.status()["analysis"]
    assert analysis["route"] == f"v{v2}" and analysis["verdict"] == "pass" and analysis["requests"] >= 20
    answered = sum(traffic.statuses.values())
    predictions = _score(stack)
    assert predictions[:2] == pytest.approx([predictions[2] / 50, predictions[3] / 50])
    wait(lambda: not Path(f"/proc/{old_pid}").exists(), "the old model server stopped", 30)
    # each one-row request the traffic sent was answered once and is in the lake once, stamped with the version
    # that answered it (the smoke tests score 8 rows, _score 2): nothing lost when the old server stopped
    singles = wait(lambda: sum((n := _one_row_requests(stack.lake)).values()) >= answered and n,
                   "the traffic in the lake", 60)  # fmt: skip
    assert sum(singles.values()) == answered and set(singles) == {v1, v2}, singles
    assert not list((stack.home / "deployer" / "spool").glob(f"v{v1}-*")), "the old server's spool was left behind"


def _one_row_requests(lake: str) -> dict[str, int]:
    """Per model version, how many captured requests hold exactly one row (the traffic's, not the smoke tests')."""
    from monitors.lake import read_window

    frame = read_window(lake, MODEL).frame
    if frame.empty:
        return {}
    assert not frame.duplicated(["_request_id", "_row"]).any(), "a captured row is in the lake twice"
    rows = frame.groupby("_request_id").agg(rows=("_row", "size"), version=("_model_version", "first"))
    return {str(k): int(v) for k, v in rows[rows["rows"] == 1].groupby("version").size().items()}


def _model_servers(home: Path) -> list[int]:
    """PIDs of every model server of this stack still running (``driftloop scoring-server`` on a dir under home)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"scoring-server" in cmdline and any(str(home).encode() in part for part in cmdline):
            found.append(int(proc.name))
    return found


def test_a_deployer_killed_mid_canary_adopts_both_servers_and_converges(
    stack: Stack, register: Callable[[float], str]
) -> None:
    v2 = stack.versions["v2"]
    stack.versions["v3"] = v3 = register(25.0)
    old_pid = stack.status()["servers"][v2]["pid"]
    promote(MODEL, v3, payload_columns={})
    # no traffic yet: the canary step has too few requests for a verdict and waits -- the moment to crash
    status = wait(lambda: (s := stack.status()).get("phase", "").startswith("canary") and s, "the canary", log=stack)
    canary_pid = status["servers"][v3]["pid"]
    assert stack.process is not None
    os.killpg(stack.process.pid, signal.SIGKILL)  # a crash: no clean-up at all
    stack.process.wait()
    assert sorted(_model_servers(stack.home)) == sorted([old_pid, canary_pid])  # both outlive the deployer
    with Traffic(f"{stack.sidecar}/invocations") as traffic:
        assert _score(stack)  # the sidecar still splits between the two: serving goes on
        stack.start_deployer()
        status = wait(lambda: (s := stack.status()).get("serving") == v3 and s.get("phase") == "idle" and s,
                      f"v{v3} served after the restart", log=stack)  # fmt: skip
    assert set(traffic.statuses) == {200} and not traffic.errors, (traffic.statuses, traffic.errors)
    assert f"adopted v{v2} (pid {old_pid})" in (stack.home / "deployer-test.log").read_text()  # kept until the swap
    assert list(status["servers"]) == [v3] and status["servers"][v3]["pid"] == canary_pid  # the canary adopted
    assert status["analysis"]["verdict"] == "pass" and status["last_event"]["event"] == "deployed"
    wait(lambda: _model_servers(stack.home) == [canary_pid], "no orphan model server", 30)
    assert _pinned() == v3 and _champion() == v3
    events = [(e.event, e.version) for e in history(gitops_repo(), MODEL, "production")]
    assert events[:2] == [("promote", v3), ("promote", v2)]  # one promotion: no second commit, no rollback


def test_a_planted_digest_mismatch_is_refused(stack: Stack, register: Callable[[float], str]) -> None:
    from workflows.gitops.promotion import build_pin

    stack.versions["bad"] = bad = register(0.0)  # predicts age / 0 = inf: fails the smoke test later
    planted = replace(build_pin(connect(), MODEL, bad, "production"), sha256="0" * 64)

    def edit_by_hand(work: Path) -> str:
        (work / PIN).write_text(planted.to_yaml())
        return f"hand-edited pin: v{bad}"

    gitops_repo().change(edit_by_hand, author="mallory")
    status = wait(lambda: (s := stack.status()).get("phase") == "refused" and s, "the refusal", log=stack)
    assert status["last_event"]["event"] == "digest_mismatch" and "0" * 16 in status["last_event"]["message"]
    metrics = httpx.get(f"{stack.deployer}/metrics").text
    assert 'driftloop_deployer_events_total{event="digest_mismatch"} 1.0' in metrics
    assert status["serving"] == stack.versions["v3"] and list(status["servers"]) == [stack.versions["v3"]]


def test_a_failing_smoke_test_keeps_the_old_version_and_commits_a_rollback(stack: Stack) -> None:
    v3, bad = stack.versions["v3"], stack.versions["bad"]
    promote(MODEL, bad, payload_columns={})  # the right digest this time: verified, started, smoke-tested
    wait(lambda: _pinned() == v3, "the deployer's rollback commit", log=stack)
    wait(lambda: _champion() == v3, "the registry alias to follow the rollback commit (git first, then the alias)")
    status = stack.status()
    assert status["last_event"]["event"] == "smoke_failed" and status["serving"] == v3
    assert list(status["servers"]) == [v3]
    top = history(gitops_repo(), MODEL, "production")[0]
    assert (top.event, top.version, top.previous_version, top.actor) == ("deployer-rollback", v3, bad,
                                                                        "driftloop-deployer")  # fmt: skip
    assert "smoke test failed" in top.reason


def test_cli_rollback_restores_registry_git_and_serving_and_history_shows_it(stack: Stack) -> None:
    v1, v2, v3, bad = stack.versions["v1"], stack.versions["v2"], stack.versions["v3"], stack.versions["bad"]
    with Traffic(f"{stack.sidecar}/invocations") as traffic:
        rolled = driftloop(stack.env, "rollback", MODEL, "--to", v1, "--reason", "drill", timeout=120)
        assert rolled.returncode == 0, rolled.stderr
        wait(lambda: stack.status().get("serving") == v1, f"v{v1} served again", log=stack)
    assert set(traffic.statuses) == {200} and not traffic.errors, (traffic.statuses, traffic.errors)
    assert _champion() == v1 and _pinned() == v1  # the CLI returned after both writes
    predictions = _score(stack)
    assert predictions[:2] == pytest.approx([predictions[2] / 100, predictions[3] / 100])
    shown = driftloop(stack.env, "history", MODEL, "--env", "production", "--json", timeout=60)
    events = [(e["event"], e["version"]) for e in json.loads(shown.stdout)]
    assert events == [("rollback", v1), ("deployer-rollback", v3), ("promote", bad), ("promote", v3),
                      ("promote", v2), ("promote", v1)]  # fmt: skip


def test_a_clean_stop_stops_every_model_server_and_leaves_no_spool(stack: Stack) -> None:
    """SIGTERM (what `driftloop stack down` sends): the deployer stops its servers at once, each drains its spool to
    the lake, and it exits within the stack's grace for it; nothing keeps running in its own session."""
    assert stack.process is not None and _model_servers(stack.home)
    started = time.monotonic()
    stack.process.send_signal(signal.SIGTERM)
    stack.process.wait(timeout=60)
    assert time.monotonic() - started < 60  # driftloop/stack/services.py gives the deployer 60 s before SIGKILL
    assert _model_servers(stack.home) == []
    assert not list((stack.home / "deployer" / "spool").glob("v*")), "a spool was left behind"
