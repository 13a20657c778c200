"""`make submit` and issues 5 and 8 "done when", end to end, in one stack (one start, one first training for all).

The compiled pipeline runs in the embedded engine behind its Argo API, every pod a real step against a real MLflow
server: six steps end with a champion carrying its lineage, and the seeds' incident (a renamed column) is stopped at the
data gate. Then the whole local stack on random ports, that real champion, real traffic through
the sidecar into the lake, and the drift monitor's /metrics going from "no drift" on baseline traffic to
"dataset drift" on covariate-shift traffic, with Evidently's HTML report written.

Issue 8 continues in the same stack: the drift alert fires in Prometheus, Alertmanager delivers it to the receiver,
exactly one retraining workflow runs with the trigger labels, and it registers a model version whose `trigger` is
`drift` and whose `trigger_ref` is the alert's fingerprint as Alertmanager's API shows it; then schema-change traffic
fires the schema alert, which the receiver records and does not act on.

Everything goes through the console script, as a user would type it; /metrics is scraped over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftloop.config import get_settings
from driftloop.errors import ConfigError
from driftloop.stack.services import service
from features.columns import VIEW_COLUMNS
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

ALERTING = ("PROMETHEUS_URL", "ALERTMANAGER_URL", "TRIGGER_URL")
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
        # no person in this loop: runs promote without waiting for `driftloop approve`, an explicit opt-out; the
        # approval gate itself (approve, reject, timeout on the real engine) is tests/gitops/test_approval.py
        "DRIFTLOOP_APPROVAL_ENVIRONMENTS": "",
        "DRIFTLOOP_MONITOR_INTERVAL": str(INTERVAL_S),
        "DRIFTLOOP_MONITOR_WINDOW_ROWS": str(WINDOW_ROWS),
        "DRIFTLOOP_MONITOR_WINDOW_MINUTES": "30",
        "DRIFTLOOP_MONITOR_DRIFT_SHARE": "0.3",
        "DRIFTLOOP_MONITOR_MIN_ROWS": str(WINDOW_ROWS),  # the first seconds of a burst are never scored
        **{
            f"DRIFTLOOP_{name}": f"http://127.0.0.1:{_free_port()}"
            for name in (
                "MLFLOW_URI",
                "ARGO_SERVER",
                "MODEL_SERVER_URL",
                "SERVING_URL",
                "MONITOR_URL",
                "DEPLOYER_URL",
                *ALERTING,
            )
        },
        # the drift retrain trains like the first model (small and quick), on the data the test writes
        "DRIFTLOOP_TRIGGER_PARAMETERS": f"dataset={home / 'inputs' / 'baseline.parquet'},epochs=2",
    }
    try:
        started = driftloop(env, "stack", "up", timeout=400)
        assert started.returncode == 0, started.stdout + started.stderr
        yield env
    finally:
        driftloop(env, "stack", "down", timeout=120)


def _traffic(env: dict[str, str], scenario: str) -> datetime:
    """One burst of ``scenario`` traffic through the serving URL; returns once the lake holds the whole burst."""
    sent_from = datetime.now(UTC)
    replay = driftloop(env, "traffic", "--scenario", scenario, *TRAFFIC, timeout=120)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    # the sidecar seals its spool every few seconds: wait until the lake holds the whole burst
    _until(lambda: _lake_rows_since(env, sent_from) >= WINDOW_ROWS or None, 60, lambda: "lake never got the rows")
    return sent_from


def _evaluated(env: dict[str, str], drift: float) -> dict[str, float] | None:
    """The monitor's samples once it has scored a full window with ``dataset_drift == drift``."""
    samples = _scrape(env)[1]
    full_window = samples.get("driftloop_window_rows") == WINDOW_ROWS
    return samples if full_window and samples.get("driftloop_dataset_drift") == drift else None


def _champion(env: dict[str, str]) -> Any:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["DRIFTLOOP_MLFLOW_URI"], registry_uri=env["DRIFTLOOP_MLFLOW_URI"])
    return client.get_model_version_by_alias(MODEL, "champion")


def _submit(env: dict[str, str], scenario: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``driftloop submit training --wait`` on a fresh ``scenario`` dataset, and the run as ``runs get`` shows it."""
    dataset = write_dataset(
        generate(scenario, TRAINING_ROWS), Path(env["DRIFTLOOP_HOME"]) / "inputs" / f"{scenario}.parquet"
    )
    submitted = driftloop(env, "submit", "training", "--wait", "-p", f"dataset={dataset}", "-p", "epochs=2")
    latest = driftloop(env, "runs", "get", "@latest", "-o", "json")
    assert latest.returncode == 0, (
        latest.stderr + "\nsubmit said:\n" + submitted.stdout[-3000:] + submitted.stderr[-3000:]
    )
    return submitted, json.loads(latest.stdout)


def _phases(workflow: dict[str, Any]) -> dict[str, str]:
    """Task name -> phase; a retried task's Retry node (its final word) wins over its attempts `task(0)`…"""
    nodes = sorted(workflow["status"]["nodes"].values(), key=lambda node: node["type"] == "Retry")
    return {
        re.sub(r"\(\d+\)$", "", node["displayName"]): node["phase"]
        for node in nodes
        if node["type"] in {"Pod", "Retry", "Skipped"}
    }


# The loop's stages are module fixtures, each built on the one before, and the tests assert on them: a stage runs once,
# a failed stage fails every test after it with its own message, and each test gets its own timeout.


@pytest.fixture(scope="module")
def trained(stack: dict[str, str]) -> dict[str, Any]:
    """`make submit`, as a user types it: the first champion, trained on baseline data (the drift reference)."""
    submitted, workflow = _submit(stack, "baseline")
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    assert champion_version(stack["DRIFTLOOP_MLFLOW_URI"], MODEL), (
        "training did not promote:\n" + submitted.stdout[-3000:]
    )
    return workflow


@pytest.fixture(scope="module")
def baseline(stack: dict[str, str], trained: dict[str, Any]) -> dict[str, float]:
    """The champion served, one burst of baseline traffic, and the monitor's samples once it scored that window."""
    # the model server answers /ping 200 only once `mlflow models serve` has loaded the champion
    _until(lambda: _ready(stack), 180, lambda: "model server never served the champion:\n" + _server_log(stack))
    _traffic(stack, "baseline")
    # one or two monitor intervals, plus a generous margin for a loaded machine
    return _until(lambda: _evaluated(stack, 0.0), 2 * INTERVAL_S + 60, lambda: _last_metrics(stack))


@pytest.fixture(scope="module")
def shifted(stack: dict[str, str], baseline: dict[str, float]) -> dict[str, float]:
    """One burst of covariate-shift traffic, and the monitor's samples once it scored that window as drifted."""
    _traffic(stack, "covariate-shift")
    return _until(lambda: _evaluated(stack, 1.0), INTERVAL_S + 60, lambda: _last_metrics(stack))


@pytest.mark.slow
def test_submit_runs_all_six_steps_and_ends_with_a_champion_carrying_its_lineage(
    stack: dict[str, str], trained: dict[str, Any]
) -> None:
    assert trained["status"]["phase"] == "Succeeded"
    phases = _phases(trained)
    steps = ["validate-data", "build-training-set", "train", "evaluate", "register", "promote"]
    assert all(phases.get(step) == "Succeeded" for step in steps), phases
    assert trained["metadata"]["labels"]["driftloop.io/model"] == MODEL
    assert trained["metadata"]["labels"]["driftloop.io/trigger"] == "manual"

    champion = _champion(stack)
    assert champion.tags["workflow_name"] == trained["metadata"]["name"]
    assert champion.tags["workflow_uid"] == trained["metadata"]["uid"]
    assert champion.tags["trigger"] == "manual"
    assert len(champion.tags["data_snapshot_id"]) >= 12
    assert champion.tags["git_commit"] not in {"", "unknown"}
    outcomes = Path(stack["DRIFTLOOP_HOME"], "outcomes.jsonl").read_text().splitlines()
    assert json.loads(outcomes[-1])["status"] == "Succeeded"


@pytest.mark.slow
def test_a_renamed_column_is_stopped_at_the_data_gate_and_the_champion_stays(
    stack: dict[str, str], trained: dict[str, Any]
) -> None:
    before = _champion(stack).version
    submitted, workflow = _submit(stack, "schema-change")
    assert submitted.returncode == 1
    assert workflow["status"]["phase"] == "Failed"
    phases = _phases(workflow)
    assert phases["validate-data"] in {"Failed", "Error"}
    assert "train" not in phases or phases["train"] in {"Omitted", "Skipped"}
    logs = driftloop(stack, "runs", "logs", workflow["metadata"]["name"])
    assert "customer_age_years" in logs.stdout + logs.stderr
    assert _champion(stack).version == before


@pytest.mark.slow
def test_baseline_traffic_raises_no_drift_no_report_no_alert_and_no_retrain(
    stack: dict[str, str], baseline: dict[str, float]
) -> None:
    assert baseline["driftloop_dataset_drift"] == 0.0
    assert not list(Path(stack["DRIFTLOOP_HOME"], "reports").glob("*.html"))
    time.sleep(3)  # a few rule evaluations (1 s) on the baseline window: no alert, no retrain
    assert _firing(stack, "DriftloopFeatureDrift") is None and not _drift_runs(stack)


@pytest.mark.slow
def test_covariate_shift_traffic_turns_the_monitors_dataset_drift_on(
    stack: dict[str, str], baseline: dict[str, float], shifted: dict[str, float]
) -> None:
    assert shifted["driftloop_drift_share"] > baseline["driftloop_drift_share"]
    assert shifted["driftloop_drift_share"] >= 0.3
    reports = _until(
        lambda: list(Path(stack["DRIFTLOOP_HOME"], "reports").glob(f"{MODEL}-v*.html")) or None,
        60,
        lambda: "no HTML report under $DRIFTLOOP_HOME/reports\n" + _last_metrics(stack),
    )
    report = reports[0].read_text(errors="replace")
    assert "Data Drift" in report and "credit_utilisation" in report, f"{reports[0]} is not a data drift report"


def _firing(env: dict[str, str], alertname: str) -> str | None:
    """The fingerprint of the active ``alertname`` alert of our model in Alertmanager's API, if any."""
    try:
        alerts = httpx.get(f"{env['DRIFTLOOP_ALERTMANAGER_URL']}/api/v2/alerts",
                           params={"filter": f'alertname="{alertname}"', "active": "true"}, timeout=5).json()  # fmt: skip
    except (httpx.HTTPError, ValueError):
        return None
    return next((str(a["fingerprint"]) for a in alerts if a["labels"].get("model") == MODEL), None)


def _drift_runs(env: dict[str, str]) -> list[dict[str, Any]]:
    from workflows.client import ArgoClient

    return ArgoClient(get_settings(env), autostart=False).list_workflows(label_selector="driftloop.io/trigger=drift")


def _alerting_state(env: dict[str, str]) -> str:
    rules = httpx.get(f"{env['DRIFTLOOP_PROMETHEUS_URL']}/api/v1/alerts", timeout=5).text
    history = driftloop(env, "trigger", "history").stdout
    return f"prometheus alerts: {rules[:2000]}\nreceiver:\n{history}\n" + _last_metrics(env)


@pytest.fixture(scope="module")
def retrain(stack: dict[str, str], shifted: dict[str, float]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The drift alert's fingerprint in Alertmanager, the one retraining run it started, and that run once finished."""
    from workflows.client import ArgoClient

    fingerprint = _until(lambda: _firing(stack, "DriftloopFeatureDrift"), 90, lambda: _alerting_state(stack))
    runs = _until(lambda: _drift_runs(stack) or None, 60, lambda: _alerting_state(stack))
    assert len(runs) == 1, [run["metadata"]["name"] for run in runs]
    name = runs[0]["metadata"]["name"]
    final = ArgoClient(get_settings(stack), autostart=False).wait(name, timeout=900, poll_seconds=2)
    return fingerprint, runs[0], final


@pytest.mark.slow
def test_the_drift_alert_retrains_exactly_once_with_the_alerts_fingerprint_as_lineage(
    stack: dict[str, str], retrain: tuple[str, dict[str, Any], dict[str, Any]]
) -> None:
    from mlflow.tracking import MlflowClient

    fingerprint, run, final = retrain
    name = run["metadata"]["name"]
    assert run["metadata"]["labels"]["driftloop.io/alert-fingerprint"] == fingerprint
    parameters = {p["name"]: p.get("value") for p in run["spec"]["arguments"]["parameters"]}
    assert parameters["trigger"] == "drift" and parameters["trigger-ref"] == fingerprint
    assert stack["DRIFTLOOP_ALERTMANAGER_URL"] in run["metadata"]["annotations"]["driftloop.io/alertmanager-url"]
    assert final["status"]["phase"] == "Succeeded", driftloop(stack, "runs", "get", name).stdout
    versions = MlflowClient(stack["DRIFTLOOP_MLFLOW_URI"]).search_model_versions(f"name='{MODEL}'")
    retrained = [v for v in versions if v.tags.get("trigger") == "drift"]
    assert [v.tags.get("trigger_ref") for v in retrained] == [fingerprint]
    assert retrained[0].tags.get("workflow_name") == name
    # the features the alert named reach the retrain as a parameter and the new version as a tag
    drifted = json.loads(retrained[0].tags.get("drifted_features", "[]"))
    assert drifted and set(drifted) <= {spec.name for specs in VIEW_COLUMNS.values() for spec in specs}, drifted
    # Alertmanager keeps re-sending the firing group every group_interval: still exactly one run
    assert len(_drift_runs(stack)) == 1


@pytest.mark.slow
def test_schema_change_traffic_fires_the_schema_alert_and_starts_no_retrain(
    stack: dict[str, str], retrain: tuple[str, dict[str, Any], dict[str, Any]]
) -> None:
    """The seeds' incident seen live: renamed columns page a human and never retrain."""
    # the retrain above promoted a new champion: the model server restarts on it
    _until(lambda: _ready(stack), 180, lambda: _server_log(stack))
    _traffic(stack, "schema-change")
    schema = _until(lambda: _firing(stack, "DriftloopPayloadSchemaMismatch"), 90, lambda: _alerting_state(stack))

    def recorded() -> list[dict[str, Any]] | None:
        rows = json.loads(driftloop(stack, "trigger", "history", "--json").stdout)
        return [row for row in rows if row["fingerprint"] == schema] or None

    rows = _until(recorded, 60, lambda: _alerting_state(stack))
    assert {row["decision"] for row in rows} == {"ignored"} and 'retrain="true"' in rows[0]["reason"]
    assert len(_drift_runs(stack)) == 1


def _server_log(env: dict[str, str]) -> str:
    return driftloop(env, "stack", "logs", "model-server").stdout


def _ready(env: dict[str, str]) -> bool | None:
    try:
        return httpx.get(env["DRIFTLOOP_MODEL_SERVER_URL"] + "/ping", timeout=5).status_code == 200 or None
    except httpx.HTTPError:
        return None


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
