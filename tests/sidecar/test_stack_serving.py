"""`driftloop stack up sidecar` before any champion: everything runs, and the status says why nothing scores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from driftloop.stack import stack_down, stack_up
from tests._support import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def stack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in ("MLFLOW_URI", "MODEL_SERVER_URL", "SERVING_URL")}
    monkeypatch.setenv("DRIFTLOOP_HOME", str(tmp_path / "home"))
    for name, url in urls.items():
        monkeypatch.setenv(f"DRIFTLOOP_{name}", url)
    try:
        yield urls
    finally:
        stack_down(("sidecar", "model-server", "mlflow"))


def test_serving_waits_for_a_champion_with_a_clear_status(stack_env: dict[str, str]) -> None:
    states = stack_up(("sidecar",))
    assert [(s.name, s.status) for s in states] == [("mlflow", "running"), ("model-server", "running"),
                                                    ("sidecar", "running")]  # fmt: skip
    ready = httpx.get(f"{stack_env['SERVING_URL']}/readyz", timeout=10)
    assert ready.status_code == 503 and "NO_CHAMPION" in ready.json()["problems"][0]
    scored = httpx.post(f"{stack_env['SERVING_URL']}/invocations", json={"inputs": [{"age": 1}]}, timeout=10)
    assert scored.status_code == 503 and "driftloop submit training" in scored.json()["hint"]
