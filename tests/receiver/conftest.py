"""Real processes for the receiver tests: ``driftloop engine serve`` whose ``training`` WorkflowTemplate is a no-op
(so a submitted retrain runs in a second), and ``driftloop trigger serve`` in front of it, sharing one home."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._support import free_port

MODEL = "credit-risk"
TOKEN = "storm-test-token-0123456789"
NOOP_TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "training"},
    "spec": {
        "entrypoint": "main",
        "arguments": {"parameters": [{"name": n, "value": ""} for n in ("model-name", "trigger", "trigger-ref")]},
        "templates": [
            {"name": "main", "container": {"image": "busybox", "command": ["sh", "-c"], "args": ["sleep 1"]}}
        ],
    },
}


class Proc:
    """One driftloop server subprocess that can be stopped (SIGTERM), killed (SIGKILL) and started again."""

    def __init__(self, args: list[str], env: dict[str, str], health: str, log: Path) -> None:
        self.args, self.env, self.health, self.log = args, env, health, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, **extra_env: str) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "driftloop", *self.args], env={**self.env, **extra_env},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args} exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.health, timeout=1).status_code < 500:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.args} did not answer: {self.log.read_text()[-3000:]}")

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGTERM)


class Loop:
    """The engine and the receiver of one home; ``post`` sends a webhook as Alertmanager does."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.engine_url = f"http://127.0.0.1:{free_port()}"
        self.url = f"http://127.0.0.1:{free_port()}"
        self.env = {
            **os.environ,
            "DRIFTLOOP_HOME": str(home),
            "DRIFTLOOP_ARGO_SERVER": self.engine_url,
            "DRIFTLOOP_TRIGGER_URL": self.url,
            "DRIFTLOOP_TRIGGER_TOKEN": TOKEN,
            "DRIFTLOOP_MODEL_NAME": MODEL,
            "DRIFTLOOP_PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}",  # nothing there: no drifted features
            "DRIFTLOOP_TRIGGER_COOLDOWN": "600",
        }
        self.engine = Proc(["engine", "serve", "--port", self.engine_url.rsplit(":", 1)[1]], self.env,
                           self.engine_url + "/api/v1/version", home / "engine-test.log")  # fmt: skip
        self.receiver = Proc(["trigger", "serve"], self.env, self.url + "/healthz", home / "trigger-test.log")

    def client(self) -> Any:
        from driftloop.config import get_settings
        from workflows.client import ArgoClient

        return ArgoClient(get_settings(self.env), autostart=False)

    def install_noop_template(self) -> None:
        self.client().apply_template(NOOP_TEMPLATE)

    def drift_workflows(self) -> list[dict[str, Any]]:
        return self.client().list_workflows(label_selector="driftloop.io/trigger=drift")

    def post(self, body: Any, *, token: str = TOKEN, client: httpx.Client | None = None, **kw: Any) -> httpx.Response:
        headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **kw.pop("headers", {})}
        sender = client or httpx
        return sender.post(self.url + "/alertmanager", json=body, headers=headers, timeout=30, **kw)

    def history(self, limit: int = 1000) -> list[dict[str, Any]]:
        answer = httpx.get(
            self.url + "/triggers", params={"limit": limit}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        answer.raise_for_status()
        return list(answer.json()["decisions"])


def alert(fingerprint: str, starts_at: datetime, *, status: str = "firing", **labels: str) -> dict[str, Any]:
    merged = {"alertname": "DriftloopFeatureDrift", "model": MODEL, "version": "1", "retrain": "true",
              "severity": "warning", **labels}  # fmt: skip
    return {
        "status": status,
        "labels": merged,
        "annotations": {"summary": "drift"},
        "startsAt": starts_at.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=driftloop_drift_share",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any], group_key: str = '{}:{alertname="DriftloopFeatureDrift"}') -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "version": "4", "groupKey": group_key, "truncatedAlerts": 0, "status": status,
        "receiver": "driftloop-trigger", "groupLabels": {"alertname": "DriftloopFeatureDrift"},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093", "alerts": list(alerts),
    }  # fmt: skip


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@contextlib.contextmanager
def running_loop(home: Path) -> Iterator[Loop]:
    """An engine with the no-op retraining template and a receiver, both stopped afterwards."""
    running = Loop(home)
    running.engine.start()
    running.install_noop_template()
    running.receiver.start()
    try:
        yield running
    finally:
        running.receiver.stop()
        running.engine.stop()


@pytest.fixture(scope="package")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    with running_loop(tmp_path_factory.mktemp("trigger") / "home") as running:
        yield running
