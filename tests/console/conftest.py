"""One real engine (in-process, token on, its own home) for the console tests, and helpers to run workflows on it.

The engine serves the console next to its API exactly as ``engine serve`` does (same server class, same checks).
MLflow is pointed at a free port nothing listens on and GitOps at a repository that does not exist yet, so the
model page shows its "not available" states deterministically, whatever else runs on this machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests._support import free_port
from workflows.engine.server import EngineServer
from workflows.gitops.console_sources import RegistrySources

NAMESPACE = "driftloop"
TOKEN = "console-test-token-0123456789abcdefghijklmnop"


@dataclass
class Console:
    server: EngineServer
    url: str
    shared: Path  # a host folder mounted at /shared in the steps: tests gate steps on files they create here

    def api(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        return session

    def submit(self, workflow: dict[str, Any]) -> str:
        answer = self.api().post(f"{self.url}/api/v1/workflows/{NAMESPACE}", json={"workflow": workflow}, timeout=30)
        answer.raise_for_status()
        return str(answer.json()["metadata"]["name"])

    def phase(self, name: str) -> str:
        return str(
            (self.server.store.get("Workflow", NAMESPACE, name, nodes=False).get("status") or {}).get("phase", "")
        )

    def wait_phase(self, name: str, *phases: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (phase := self.phase(name)) in phases:
                return phase
            time.sleep(0.05)
        raise AssertionError(f"{name} is {self.phase(name)!r}, not one of {phases}, after {timeout} s")


def workflow(name: str, tasks: list[tuple[str, str, list[str]]], shared: Path, **meta: Any) -> dict[str, Any]:
    """A DAG workflow: each task (name, shell script, dependencies) runs in busybox with /shared mounted."""
    templates = [
        {"name": f"t-{task}", "container": {"image": "busybox", "command": ["sh", "-c"], "args": [script],
                                            "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}}
        for task, script, _ in tasks
    ]  # fmt: skip
    dag = [
        {"name": task, "template": f"t-{task}", **({"dependencies": deps} if deps else {})} for task, _, deps in tasks
    ]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, **meta},
        "spec": {
            "entrypoint": "main",
            "volumes": [{"name": "shared", "hostPath": {"path": str(shared)}}],
            "templates": [{"name": "main", "dag": {"tasks": dag}}, *templates],
        },
    }


@pytest.fixture(scope="package")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    home = tmp_path_factory.mktemp("console-home")
    shared = tmp_path_factory.mktemp("console-shared")
    saved = {key: os.environ.get(key) for key in ("DRIFTLOOP_MLFLOW_URI", "DRIFTLOOP_GITOPS_REPO", "DRIFTLOOP_HOME")}
    os.environ["DRIFTLOOP_MLFLOW_URI"] = f"http://127.0.0.1:{free_port()}"  # nothing listens: "unreachable"
    os.environ["DRIFTLOOP_GITOPS_REPO"] = str(home / "no-gitops.git")
    os.environ["DRIFTLOOP_HOME"] = str(home)
    server = EngineServer(
        home, host="127.0.0.1", port=free_port(), namespace=NAMESPACE, token=TOKEN, model_sources=RegistrySources()
    )
    server.start_background()
    try:
        yield Console(server, server.url, shared)
    finally:
        server.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
