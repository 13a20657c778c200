"""Issue 5 "done when", end to end: the whole local stack on random ports, a real champion, real traffic through
the sidecar into the lake, and the drift monitor's /metrics going from "no drift" on baseline traffic to
"dataset drift" on covariate-shift traffic, with Evidently's HTML report written.

Everything goes through the console script, as a user would type it; /metrics is scraped over HTTP.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftloop.config import get_settings
from driftloop.errors import ConfigError
from driftloop.stack.services import service
from features.generator import generate, write_dataset
from monitors.sidecar.champion import champion_version
from tests._support import driftloop
from tests._support import free_port as _free_port

MODEL = "credit-risk"
INTERVAL_S = 3
WINDOW_ROWS = 600  # small windows are noisy: at 300 rows, 2 of 11 baseline features can 'drift'
TRAINING_ROWS = 6_000  # fewer rows and 2 epochs can miss the evaluate gate's AUC floor (0.70)
# each traffic burst is 60 requests x 12 rows = 720 rows > WINDOW_ROWS: the window then holds only that burst
TRAFFIC = ["--rps", "12", "--duration", "5", "--batch", "12", "--rows", "2000"]

T = TypeVar("T")


def _until(probe: Callable[[], T | None], timeout_s: float, failure: Callable[[], str]) -> T:
    """Poll ``probe`` every half second until it returns something; fail with ``failure()`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(failure())
        time.sleep(0.5)


def _scrape(env: dict[str, str]) -> tuple[str, dict[str, float]]:
    """The monitor's /metrics text and its `name{model=..}` samples (drift series keyed without the version)."""
    try:
        text = httpx.get(env["DRIFTLOOP_MONITOR_URL"] + "/metrics", timeout=5).text
    except httpx.HTTPError as exc:
        return f"<scrape failed: {exc}>", {}
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("model") == MODEL and "feature" not in sample.labels
    }
    return text, samples


def _last_metrics(env: dict[str, str]) -> str:
    text = _scrape(env)[0]
    monitor_log = driftloop(env, "stack", "logs", "monitor", "-n", "15").stdout
    return "last metrics:\n" + "\n".join(line for line in text.splitlines() if "driftloop_" in line) + monitor_log


def _lake_rows_since(env: dict[str, str], since: datetime) -> int:
    from monitors.lake import read_window

    return len(read_window(get_settings(env).lake_uri, MODEL, since=since).frame)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("drift-loop-home")
    env = {
        **os.environ,
        "DRIFTLOOP_HOME": str(home),
        "DRIFTLOOP_LAKE_URI": "",
        "DRIFTLOOP_MODEL_NAME": MODEL,
        "DRIFTLOOP_MONITOR_INTERVAL": str(INTERVAL_S),
        "DRIFTLOOP_MONITOR_WINDOW_ROWS": str(WINDOW_ROWS),
        "DRIFTLOOP_MONITOR_WINDOW_MINUTES": "30",
        "DRIFTLOOP_MONITOR_DRIFT_SHARE": "0.3",
        **{
            f"DRIFTLOOP_{name}": f"http://127.0.0.1:{_free_port()}"
            for name in ("MLFLOW_URI", "ARGO_SERVER", "MODEL_SERVER_URL", "SERVING_URL", "MONITOR_URL")
        },
    }
    try:
        started = driftloop(env, "stack", "up", timeout=400)
        assert started.returncode == 0, started.stdout + started.stderr
        yield env
    finally:
        driftloop(env, "stack", "down", timeout=120)


@pytest.mark.slow
def test_covariate_shift_traffic_turns_the_monitors_dataset_drift_on(stack: dict[str, str]) -> None:
    dataset = write_dataset(generate("baseline", TRAINING_ROWS), Path(stack["DRIFTLOOP_HOME"]) / "inputs" / "b.parquet")
    trained = driftloop(stack, "submit", "training", "--wait", "-p", f"dataset={dataset}", "-p", "epochs=2")
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    assert champion_version(stack["DRIFTLOOP_MLFLOW_URI"], MODEL), (
        "training did not promote:\n" + trained.stdout[-3000:]
    )

    # the model server answers /ping 200 only once `mlflow models serve` has loaded the champion
    def ready() -> bool | None:
        try:
            return httpx.get(stack["DRIFTLOOP_MODEL_SERVER_URL"] + "/ping", timeout=5).status_code == 200 or None
        except httpx.HTTPError:
            return None

    _until(
        ready,
        180,
        lambda: "model server never served the champion:\n" + driftloop(stack, "stack", "logs", "model-server").stdout,
    )

    def traffic(scenario: str) -> datetime:
        sent_from = datetime.now(UTC)
        replay = driftloop(stack, "traffic", "--scenario", scenario, *TRAFFIC, timeout=120)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        # the sidecar seals its spool every few seconds: wait until the lake holds the whole burst
        _until(lambda: _lake_rows_since(stack, sent_from) >= WINDOW_ROWS or None, 60, lambda: "lake never got the rows")
        return sent_from

    traffic("baseline")

    def evaluated(drift: float) -> dict[str, float] | None:
        samples = _scrape(stack)[1]
        full_window = samples.get("driftloop_window_rows") == WINDOW_ROWS
        return samples if full_window and samples.get("driftloop_dataset_drift") == drift else None

    # one or two monitor intervals, plus a generous margin for a loaded machine
    baseline = _until(lambda: evaluated(0.0), 2 * INTERVAL_S + 60, lambda: _last_metrics(stack))
    assert not list(Path(stack["DRIFTLOOP_HOME"], "reports").glob("*.html"))

    traffic("covariate-shift")
    shifted = _until(lambda: evaluated(1.0), INTERVAL_S + 60, lambda: _last_metrics(stack))
    assert shifted["driftloop_drift_share"] > baseline["driftloop_drift_share"]
    assert shifted["driftloop_drift_share"] >= 0.3

    reports = _until(
        lambda: list(Path(stack["DRIFTLOOP_HOME"], "reports").glob(f"{MODEL}-v*.html")) or None,
        60,
        lambda: "no HTML report under $DRIFTLOOP_HOME/reports\n" + _last_metrics(stack),
    )
    report = reports[0].read_text(errors="replace")
    assert "Data Drift" in report and "credit_utilisation" in report, f"{reports[0]} is not a data drift report"


def test_the_stack_runs_the_monitor_with_the_monitor_settings() -> None:
    settings = get_settings(
        {"DRIFTLOOP_MONITOR_URL": "http://127.0.0.1:19308", "DRIFTLOOP_MONITOR_INTERVAL": "2.5"}
        | {"DRIFTLOOP_MONITOR_WINDOW_ROWS": "300", "DRIFTLOOP_MONITOR_WINDOW_MINUTES": "5"}
    )
    monitor = service("monitor")
    command = " ".join(monitor.command(settings))
    assert "--metrics-port 19308" in command and "--interval 2.5" in command
    assert "--last-rows 300" in command and "--last-minutes 5.0" in command and "--drift-share 0.3" in command
    assert monitor.health_url(settings) == "http://127.0.0.1:19308/metrics"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MONITOR_INTERVAL", "0"),
        ("MONITOR_INTERVAL", "soon"),
        ("MONITOR_WINDOW_ROWS", "1.5"),
        ("MONITOR_WINDOW_MINUTES", "-1"),
        ("MONITOR_DRIFT_SHARE", "0"),
    ],
)
def test_a_bad_monitor_setting_names_the_variable_and_an_example(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        get_settings({f"DRIFTLOOP_{name}": value})
    assert f"DRIFTLOOP_{name}" in caught.value.message
    assert caught.value.hint and f"export DRIFTLOOP_{name}=" in caught.value.hint
