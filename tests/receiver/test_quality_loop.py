"""Concept drift, label side, through real pieces: the monitor's /metrics (concept-drift traffic in a lake, its true
outcomes in the outcome store) → the stack's Prometheus with the generated rules → Alertmanager → the receiver →
the embedded engine. Live AUC drops while input drift stays quiet; DriftloopLiveQualityDropped fires; exactly one
retrain starts, with trigger=quality and the alert's fingerprint as trigger-ref; Alertmanager's re-sends are
duplicates."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client import start_http_server

from driftloop.config import get_settings
from driftloop.stack import ProcessManager
from driftloop.stack.services import service
from monitors.drift import DriftOptions
from monitors.drift._monitor import Monitor, MonitorConfig
from monitors.drift._sources import LocalReference
from monitors.feedback._store import FeedbackStore
from monitors.feedback.quality import QualityMetrics, QualityWatch
from tests._support import free_port
from tests.drift.test_live_quality import ROWS, _serve_and_label
from tests.drift.test_live_quality import reference_dir as reference_dir  # the fixture
from tests.receiver.conftest import MODEL, Loop

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
                       reason="prometheus / prometheus-alertmanager not installed (`make system`)"),
]  # fmt: skip
T = TypeVar("T")


def _until(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_concept_drift_fires_the_quality_alert_and_starts_exactly_one_retrain(
    tmp_path: Path, reference_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = Loop(tmp_path / "home")
    ports = {name: f"http://127.0.0.1:{free_port()}" for name in ("PROMETHEUS_URL", "ALERTMANAGER_URL", "MONITOR_URL")}
    loop.env.update({f"DRIFTLOOP_{name}": url for name, url in ports.items()})
    for name, value in loop.env.items():
        if name.startswith("DRIFTLOOP_"):
            monkeypatch.setenv(name, value)  # the Prometheus/Alertmanager launcher reads its settings from here
    settings = get_settings(loop.env)

    _serve_and_label(tmp_path, "concept-drift")  # the lake of tmp_path/lake, outcomes in tmp_path/outcomes.db
    config = MonitorConfig(model=MODEL, lake_uri=str(tmp_path / "lake"), reports_dir=tmp_path / "reports",
                           last_rows=ROWS, last_minutes=None, interval_s=1.0, options=DriftOptions(drift_share=0.3),
                           html_reports=False)  # fmt: skip
    monitor = Monitor(config, LocalReference(reference_dir))
    monitor.quality = QualityWatch(FeedbackStore(tmp_path / "outcomes.db"),
                                   QualityMetrics(MODEL, monitor.metrics.registry), last_rows=ROWS, last_minutes=None,
                                   min_rows=settings.monitor_quality_min_rows)  # fmt: skip
    server, thread = start_http_server(int(ports["MONITOR_URL"].rsplit(":", 1)[1]), addr="127.0.0.1",
                                       registry=monitor.metrics.registry)  # fmt: skip
    stop = threading.Event()
    runner = threading.Thread(target=monitor.run, args=(stop,), daemon=True)
    manager = ProcessManager(settings)
    loop.engine.start()
    try:
        loop.install_noop_template()
        loop.receiver.start()
        runner.start()
        for name in ("alertmanager", "prometheus"):
            assert manager.start(service(name)).healthy

        def retrains() -> list[dict[str, Any]]:
            return loop.client().list_workflows(label_selector="driftloop.io/trigger")

        started = _until(retrains, 60, "the quality retrain")
        time.sleep(8)  # Alertmanager re-sends the group (group_interval 5 s): still one retrain
        workflows = retrains()
        assert len(workflows) == 1 and workflows[0]["metadata"]["labels"]["driftloop.io/trigger"] == "quality"
        parameters = {p["name"]: p.get("value") for p in workflows[0]["spec"]["arguments"]["parameters"]}
        alerts = httpx.get(f"{ports['ALERTMANAGER_URL']}/api/v2/alerts", timeout=5).json()
        names = {a["labels"]["alertname"] for a in alerts}
        assert "DriftloopFeatureDrift" not in names  # the inputs did not move
        quality = next(a for a in alerts if a["labels"]["alertname"] == "DriftloopLiveQualityDropped")
        assert parameters["trigger"] == "quality" and parameters["trigger-ref"] == quality["fingerprint"]
        assert (
            parameters["drifted-features"] == "[]"
            and started[0]["metadata"]["name"] == workflows[0]["metadata"]["name"]
        )
        decisions = [d["decision"] for d in loop.history() if d["fingerprint"] == quality["fingerprint"]]
        assert decisions.count("submit") == 1
    finally:
        stop.set()
        for name in ("prometheus", "alertmanager"):
            manager.stop(service(name))
        loop.receiver.stop()
        loop.engine.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
