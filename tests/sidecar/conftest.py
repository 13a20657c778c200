"""Real servers for the sidecar tests: the stub model server and sidecars on random free ports."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitors.lake import read_window
from monitors.sidecar import Sidecar, SidecarConfig
from monitors.sidecar.testing import BackgroundRouter, BackgroundServer, stub_model_app

MODEL = "credit-risk"


@pytest.fixture
def upstream() -> Iterator[BackgroundServer]:
    with BackgroundServer(stub_model_app) as server:
        yield server


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., SidecarConfig]:
    def make(upstream_url: str, **overrides: Any) -> SidecarConfig:
        base = SidecarConfig(
            upstream=upstream_url,
            lake_uri=str(tmp_path / "lake"),
            spool_dir=tmp_path / "spool",
            model=MODEL,
            model_version="7",
            segment_age_s=0.2,
            fsync_interval_s=0.05,
            lake_poll_s=0.05,
        )
        return replace(base, **overrides)

    return make


@pytest.fixture
def run_sidecar() -> Iterator[Callable[[SidecarConfig], tuple[Any, Any]]]:
    started: list[BackgroundServer | BackgroundRouter] = []

    def start(config: SidecarConfig) -> tuple[Any, Any]:
        """A capturing sidecar (``Sidecar``) or, for ``capture=False``, the route-only router (``RouteOnly``)."""
        if not config.capture:
            router = BackgroundRouter(config).start()
            started.append(router)
            return router, router.router
        sidecar = Sidecar(config)
        server = BackgroundServer(sidecar.app).start()
        started.append(server)
        return server, sidecar

    yield start
    for server in started:
        server.stop()


def wait_until(predicate: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    """Poll until ``predicate()`` is truthy; fail saying what never happened."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def lake_rows(lake: str) -> int:
    window = read_window(lake, MODEL)
    return len(window.frame) + len(window.malformed)


def metric(client: httpx.Client, base_url: str, name: str, labels: str = "") -> float:
    """The value of one sample of the sidecar's /metrics (0 when absent)."""
    text = client.get(f"{base_url}/metrics").text
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.e+-]+)"
    match = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0
