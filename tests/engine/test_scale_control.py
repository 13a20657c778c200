"""Big runs and control, against a real ``driftloop engine serve``: reads that only grow, terminate / stop /
DELETE that take effect at once (and a deleted run that stays deleted across a restart), a clean SIGTERM that
resumes on restart, and a project cloned under /tmp whose steps still see their checkout and interpreter.

Sizes are a few hundred nodes; the 10,000-node figures live in ``bench/engine_scale.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from driftloop.config import get_settings, repo_root
from tests.engine.conftest import processes_running
from tests.engine_api.conftest import NAMESPACE, EngineProcess
from workflows.engine._pods import isolation_available

pytestmark = pytest.mark.skipif(not isolation_available(), reason="needs the node sandbox (root + unshare + overlayfs)")

DONE = {"Succeeded", "Failed", "Error"}


class _Client:
    def __init__(self, engine: EngineProcess) -> None:
        self.engine = engine
        self.session = requests.Session()
        if engine.token:
            self.session.headers["Authorization"] = f"Bearer {engine.token}"

    def url(self, suffix: str = "") -> str:
        return f"{self.engine.url}/api/v1/workflows/{NAMESPACE}{suffix}"

    def create(self, workflow: dict[str, Any]) -> str:
        answer = self.session.post(self.url(), json={"workflow": workflow}, timeout=30)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["metadata"]["name"])

    def get(self, name: str) -> dict[str, Any] | None:
        answer = self.session.get(self.url(f"/{name}"), timeout=30)
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def put(self, name: str, verb: str) -> dict[str, Any]:
        answer = self.session.put(self.url(f"/{name}/{verb}"), json={}, timeout=30)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait(self, name: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workflow = self.get(name) or {}
            if (workflow.get("status") or {}).get("phase") in DONE:
                return workflow
            time.sleep(0.1)
        raise AssertionError(f"{name} did not finish within {timeout}s")

    def wait_running_pods(self, name: str, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            nodes = ((self.get(name) or {}).get("status") or {}).get("nodes") or {}
            if sum(1 for n in nodes.values() if n.get("type") == "Pod" and n.get("phase") == "Running") >= count:
                return
            time.sleep(0.1)
        raise AssertionError(f"{name} never had {count} running pods")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """One engine for the module (its first submission loads the linter's schemas: seconds); the tests that
    restart it leave it running."""
    process = EngineProcess(tmp_path_factory.mktemp("scale") / "home")
    process.start()
    yield process
    process.stop()


def _fan_out(name: str, count: int, script: str, shared: Path | None = None, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"image": "busybox", "command": ["sh", "-c", script]}
    if shared is not None:
        container["volumeMounts"] = [{"name": "shared", "mountPath": "/shared"}]
        spec["volumes"] = [{"name": "shared", "hostPath": {"path": str(shared)}}]
    templates = [
        {"name": "main", "steps": [[{"name": "item", "template": "item", "withSequence": {"count": str(count)}}]]},
        {"name": "item", "container": container},
    ]
    if spec.get("onExit"):
        exit_container: dict[str, Any] = {"image": "busybox", "command": ["sh", "-c", "echo exit >> /shared/exit"]}
        exit_container["volumeMounts"] = [{"name": "shared", "mountPath": "/shared"}]
        templates.append({"name": spec["onExit"], "container": exit_container})
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"entrypoint": "main", "templates": templates, **spec},
    }


def _pods(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in ((workflow.get("status") or {}).get("nodes") or {}).values() if n.get("type") == "Pod"]


def test_a_fan_out_is_read_consistently_while_it_runs(engine: EngineProcess) -> None:
    client = _Client(engine)
    name = client.create(_fan_out("wide", 200, "true"))
    counts: list[int] = []
    finished: set[str] = set()
    while True:
        workflow = client.get(name) or {}
        nodes = (workflow.get("status") or {}).get("nodes") or {}
        counts.append(len(nodes))
        now_finished = {i for i, n in nodes.items() if n.get("phase") in DONE}
        assert finished <= now_finished, "a node that a GET showed finished was later unfinished or gone"
        finished = now_finished
        if (workflow.get("status") or {}).get("phase") in DONE:
            break
        time.sleep(0.05)
    assert counts == sorted(counts), f"node counts shrank between reads: {counts}"
    assert len(set(counts)) > 2, "the run was never seen in progress"
    assert workflow["status"]["phase"] == "Succeeded"
    assert workflow["status"]["progress"] == "200/200"
    assert len(_pods(workflow)) == 200 and all(p["phase"] == "Succeeded" for p in _pods(workflow))


def test_terminate_kills_the_pods_skips_exit_handlers_and_fails_as_argo(engine: EngineProcess, tmp_path: Path) -> None:
    client = _Client(engine)
    workflow = _fan_out("big", 200, "sleep 41.5", tmp_path, parallelism=20, onExit="bye")
    name = client.create(workflow)
    client.wait_running_pods(name, 20)
    answer = client.put(name, "terminate")
    assert answer["status"]["phase"] == "Failed"  # the answer shows the effect, not "Running"
    assert answer["status"]["message"] == "Stopped with strategy 'Terminate'"
    assert answer["spec"]["shutdown"] == "Terminate"
    assert processes_running("sleep 41.5") == []
    final = client.wait(name)
    assert len(_pods(final)) < 200, "nodes that had not started were created after terminate"
    assert {p["phase"] for p in _pods(final)} == {"Failed"}
    assert not (tmp_path / "exit").exists(), "terminate must not run exit handlers"
    retried = client.put(name, "retry")  # a retry clears spec.shutdown, as Argo's does, and runs again
    assert "shutdown" not in retried["spec"]
    client.wait_running_pods(name, 20)
    assert client.put(name, "terminate")["status"]["phase"] == "Failed"


def test_stop_kills_the_pods_and_still_runs_exit_handlers(engine: EngineProcess, tmp_path: Path) -> None:
    client = _Client(engine)
    name = client.create(_fan_out("stopme", 200, "sleep 42.5", tmp_path, parallelism=20, onExit="bye"))
    client.wait_running_pods(name, 20)
    client.put(name, "stop")
    final = client.wait(name)
    assert final["status"]["phase"] == "Failed"
    assert final["status"]["message"] == "Stopped with strategy 'Stop'"
    assert final["spec"]["shutdown"] == "Stop"
    assert processes_running("sleep 42.5") == []
    assert (tmp_path / "exit").read_text().splitlines() == ["exit"]


def test_a_deleted_run_is_gone_at_once_and_never_resumes(engine: EngineProcess, tmp_path: Path) -> None:
    client = _Client(engine)
    name = client.create(_fan_out("doomed", 200, "echo x >> /shared/started; sleep 43.5", tmp_path, parallelism=20))
    client.wait_running_pods(name, 20)
    assert client.session.delete(client.url(f"/{name}"), timeout=30).status_code == 200
    assert client.get(name) is None
    assert processes_running("sleep 43.5") == []  # its pods were killed before DELETE answered
    started = len((tmp_path / "started").read_text().splitlines())

    engine.stop()
    engine.start()
    time.sleep(1.5)  # a resumed run would have started pods by now
    assert client.get(name) is None
    listed = client.session.get(client.url(), timeout=30).json()["items"] or []
    assert name not in [w["metadata"]["name"] for w in listed]
    assert len((tmp_path / "started").read_text().splitlines()) == started
    assert processes_running("sleep 43.5") == []


def test_sigterm_mid_run_stops_cleanly_and_the_run_resumes_on_restart(engine: EngineProcess, tmp_path: Path) -> None:
    client = _Client(engine)
    steps = [[{"name": "first", "template": "first"}], [{"name": "slow", "template": "slow"}]]
    mount = [{"name": "shared", "mountPath": "/shared"}]
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "interrupted"},
        "spec": {
            "entrypoint": "main",
            "volumes": [{"name": "shared", "hostPath": {"path": str(tmp_path)}}],
            "templates": [
                {"name": "main", "steps": steps},
                {"name": "first", "container": {"image": "busybox", "command": ["sh", "-c", "echo ran >> /shared/first"],
                                                "volumeMounts": mount}},
                {"name": "slow", "container": {"image": "busybox", "volumeMounts": mount,
                                               "command": ["sh", "-c", "echo go >> /shared/slow; sleep 2.5"]}},
            ],
        },
    }  # fmt: skip
    name = client.create(workflow)
    client.wait_running_pods(name, 1)
    while not (tmp_path / "slow").exists():
        time.sleep(0.05)
    assert engine.process is not None
    log_start = engine.log.stat().st_size
    engine.process.send_signal(signal.SIGTERM)
    assert engine.process.wait(15) == 0
    log = engine.log.read_text()[log_start:]
    assert "Traceback" not in log and "ProgrammingError" not in log, log[-3000:]
    assert not (engine.home / "engine" / "engine.pid").exists(), "a clean stop leaves no stale engine.pid"
    assert processes_running("sleep 2.5") == []

    engine.start()
    final = client.wait(name)
    assert final["status"]["phase"] == "Succeeded", final["status"].get("message")
    assert (tmp_path / "first").read_text().splitlines() == ["ran"]  # finished steps are not re-run
    assert (tmp_path / "slow").read_text().splitlines() == ["go", "go"]  # the killed one ran again, whole
    assert all(p["phase"] == "Succeeded" for p in _pods(final))


def test_a_project_cloned_under_tmp_runs_its_steps(tmp_path: Path) -> None:
    """Cloned to /tmp/…/main with its interpreter under /tmp too: the node's private /tmp must not hide them."""
    assert str(tmp_path).startswith("/tmp/"), "this test is about a project that lives under /tmp"
    clone = tmp_path / "x" / "main"
    subprocess.run(["git", "clone", "-q", str(repo_root()), str(clone)], check=True, timeout=120)
    venv = tmp_path / "venv"  # an interpreter under /tmp, no pip install: it borrows our packages via a .pth
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    (next(venv.glob("lib/python*/site-packages")) / "borrowed.pth").write_text(f"{purelib}\n")
    probe = "import os, sys, driftloop; print(os.getcwd()); print(sys.prefix); print(driftloop.__file__)"
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "from-tmp"},
        "spec": {
            "entrypoint": "probe",
            "templates": [{"name": "probe", "container": {"image": get_settings().image, "command": ["python", "-c", probe]}}],
        },
    }  # fmt: skip
    manifest = tmp_path / "wf.yaml"
    manifest.write_text(yaml.safe_dump(workflow))
    env = {**os.environ, "PYTHONPATH": str(clone), "DRIFTLOOP_HOME": str(tmp_path / "home"),
           "DRIFTLOOP_SHARED_DIR": str(get_settings().shared_dir)}  # the clone has no ../shared beside it  # fmt: skip
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "driftloop", "engine", "run", str(manifest), "-o", "json"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    node = next(n for n in json.loads(done.stdout)["status"]["nodes"].values() if n["type"] == "Pod")
    cwd, prefix, module = node["outputs"]["result"].splitlines()
    assert Path(cwd) == clone.resolve()
    assert Path(prefix) == venv.resolve()
    assert Path(module).is_relative_to(clone.resolve())
