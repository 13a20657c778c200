"""A real ``driftloop engine serve`` subprocess on a random free port, with its own home.

Auth is on, as by default: the engine generates its token into ``<home>/engine/token`` and the fixtures read it
from there (``EngineProcess.token``, ``.http`` and ``.service()`` send it), as every driftloop command does.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hera.workflows.models import Workflow
from hera.workflows.service import WorkflowsService

from tests._support import free_port

NAMESPACE = "driftloop"


class EngineProcess:
    """Start, kill -9 and restart an engine on one home and port."""

    def __init__(self, home: Path, token: str = "", *, serve_args: tuple[str, ...] = ()) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token  # empty: the one the engine generates (read after start)
        self.serve_args = serve_args
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_ARGO_TOKEN")},
            "DRIFTLOOP_HOME": str(home),
            "DRIFTLOOP_ARGO_SERVER": self.url,
            "DRIFTLOOP_NAMESPACE": NAMESPACE,
        }
        if token:
            self.env["DRIFTLOOP_ARGO_TOKEN"] = token
        self.http = requests.Session()
        self.process: subprocess.Popen[bytes] | None = None
        self._orphan_groups: list[int] = []
        self.log = home / "serve-test.log"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "driftloop", "engine", "serve", "--port", str(self.port), *self.serve_args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"engine exited: {self.log.read_text()[-2000:]}")
            try:
                requests.get(self.url + "/api/v1/version", timeout=1)
                self._use_token()
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"engine did not answer: {self.log.read_text()[-2000:]}")

    def _use_token(self) -> None:
        token_file = self.home / "engine" / "token"
        if not self.token and "none" not in self.serve_args and token_file.exists():
            self.token = token_file.read_text().strip()
        if self.token:
            self.http.headers["Authorization"] = f"Bearer {self.token}"

    def kill9(self) -> None:
        """SIGKILL the engine process only, as a crash would; its steps may outlive it."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._orphan_groups.append(self.process.pid)

    def reap_orphans(self) -> None:
        for group in self._orphan_groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def service(self) -> WorkflowsService:
        return WorkflowsService(host=self.url + "/", namespace=NAMESPACE, token=self.token or None)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[EngineProcess]:
    """An engine of its own (for tests that kill or restart it)."""
    process = EngineProcess(tmp_path / "home")
    process.start()
    yield process
    process.stop()
    process.reap_orphans()


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """One engine per test module (starting one costs seconds); tests keep apart by namespace."""
    process = EngineProcess(tmp_path_factory.mktemp("engine") / "home")
    process.start()
    yield process
    process.stop()


class Api:
    """A test's view of the shared engine: its own namespace, Hera's service, and raw URLs."""

    def __init__(self, engine: EngineProcess, namespace: str) -> None:
        self.engine = engine
        self.namespace = namespace
        self.url = engine.url
        self.service = WorkflowsService(host=engine.url + "/", namespace=namespace, token=engine.token or None)
        self.http = engine.http  # requests with the engine's token

    def workflows_url(self, suffix: str = "") -> str:
        return f"{self.url}/api/v1/workflows/{self.namespace}{suffix}"


@pytest.fixture
def api(shared_engine: EngineProcess, request: pytest.FixtureRequest) -> Api:
    namespace = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:50].strip("-")
    return Api(shared_engine, namespace)


def wait_phase(service: WorkflowsService, name: str, timeout: float = 60) -> str:
    """Poll until the workflow finished; returns its phase."""
    deadline = time.monotonic() + timeout
    phase = ""
    while time.monotonic() < deadline:
        status = service.get_workflow(name).status
        phase = (status.phase if status else None) or ""
        if phase in {"Succeeded", "Failed", "Error"}:
            return phase
        time.sleep(0.2)
    raise AssertionError(f"workflow {name} still {phase!r} after {timeout}s")


def nodes_by_display_name(workflow: Workflow) -> dict[str, dict]:
    status = workflow.dict(by_alias=True)["status"] or {}
    return {node["displayName"]: node for node in (status.get("nodes") or {}).values()}


def wait_node_phase(service: WorkflowsService, name: str, display_name: str, phase: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        node = nodes_by_display_name(service.get_workflow(name)).get(display_name)
        if node and node.get("phase") == phase:
            return
        time.sleep(0.1)
    raise AssertionError(f"node {display_name} of {name} never reached {phase}")


def shell_workflow(
    name: str, *scripts: str, labels: dict[str, str] | None = None, host_dir: Path | None = None
) -> dict:
    """A steps workflow whose steps each run one shell command in busybox (the host's sh).

    ``host_dir`` is mounted at /shared in every step (a hostPath volume): steps see and leave files there
    (each step's own writes elsewhere are private to it, as in a container).
    """
    templates: list[dict] = [
        {"name": f"step{index}", "container": {"image": "busybox", "command": ["sh", "-c"], "args": [script]}}
        for index, script in enumerate(scripts)
    ]
    if host_dir is not None:
        for template in templates:
            template["container"]["volumeMounts"] = [{"name": "shared", "mountPath": "/shared"}]
    steps = [[{"name": f"s{index}", "template": f"step{index}"}] for index in range(len(scripts))]
    spec: dict = {"entrypoint": "main", "templates": [{"name": "main", "steps": steps}, *templates]}
    if host_dir is not None:
        spec["volumes"] = [{"name": "shared", "hostPath": {"path": str(host_dir)}}]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }
