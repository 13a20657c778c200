"""`make submit`, end to end: the compiled pipeline runs in the embedded engine behind its Argo API, every pod is a
real step against a real MLflow server, and the seeds' incident (a renamed column) is stopped at the data gate.

Everything goes through the console script, as a user would type it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from features.generator import generate, write_dataset
from tests._support import driftloop
from tests._support import free_port as _free_port

pytestmark = pytest.mark.slow

ROWS = 6_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("e2e-home")
    env = {
        **os.environ,
        "DRIFTLOOP_HOME": str(home),
        "DRIFTLOOP_MLFLOW_URI": f"http://127.0.0.1:{_free_port()}",
        "DRIFTLOOP_ARGO_SERVER": f"http://127.0.0.1:{_free_port()}",
    }
    started = driftloop(env, "stack", "up", "mlflow", "engine", timeout=300)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield env
    finally:
        driftloop(env, "stack", "down", timeout=120)


def _dataset(env: dict[str, str], scenario: str) -> str:
    path = Path(env["DRIFTLOOP_HOME"]) / "inputs" / f"{scenario}.parquet"
    return str(write_dataset(generate(scenario, ROWS), path))


def _submit(env: dict[str, str], dataset: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    submitted = driftloop(env, "submit", "training", "--wait", "-p", f"dataset={dataset}", "-p", "epochs=2")
    latest = driftloop(env, "runs", "get", "@latest", "-o", "json")
    assert latest.returncode == 0, latest.stderr
    return submitted, json.loads(latest.stdout)


def _phases(workflow: dict[str, Any]) -> dict[str, str]:
    """Task name -> phase; a retried task's Retry node (its final word) wins over its attempts `task(0)`…"""
    nodes = sorted(workflow["status"]["nodes"].values(), key=lambda node: node["type"] == "Retry")
    return {
        re.sub(r"\(\d+\)$", "", node["displayName"]): node["phase"]
        for node in nodes
        if node["type"] in {"Pod", "Retry", "Skipped"}
    }


def _champion(env: dict[str, str]) -> Any:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["DRIFTLOOP_MLFLOW_URI"], registry_uri=env["DRIFTLOOP_MLFLOW_URI"])
    return client.get_model_version_by_alias("credit-risk", "champion")


def test_submit_runs_all_six_steps_and_ends_with_a_champion_carrying_its_lineage(stack: dict[str, str]) -> None:
    submitted, workflow = _submit(stack, _dataset(stack, "baseline"))
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    assert workflow["status"]["phase"] == "Succeeded"
    phases = _phases(workflow)
    steps = ["validate-data", "build-training-set", "train", "evaluate", "register", "promote"]
    assert all(phases.get(step) == "Succeeded" for step in steps), phases
    assert workflow["metadata"]["labels"]["driftloop.io/model"] == "credit-risk"
    assert workflow["metadata"]["labels"]["driftloop.io/trigger"] == "manual"

    champion = _champion(stack)
    assert champion.tags["workflow_name"] == workflow["metadata"]["name"]
    assert champion.tags["workflow_uid"] == workflow["metadata"]["uid"]
    assert champion.tags["trigger"] == "manual"
    assert len(champion.tags["data_snapshot_id"]) >= 12
    assert champion.tags["git_commit"] not in {"", "unknown"}
    outcomes = Path(stack["DRIFTLOOP_HOME"], "outcomes.jsonl").read_text().splitlines()
    assert json.loads(outcomes[-1])["status"] == "Succeeded"


def test_a_renamed_column_is_stopped_at_the_data_gate_and_the_champion_stays(stack: dict[str, str]) -> None:
    before = _champion(stack).version
    submitted, workflow = _submit(stack, _dataset(stack, "schema-change"))
    assert submitted.returncode == 1
    assert workflow["status"]["phase"] == "Failed"
    phases = _phases(workflow)
    assert phases["validate-data"] in {"Failed", "Error"}
    assert "train" not in phases or phases["train"] in {"Omitted", "Skipped"}
    logs = driftloop(stack, "runs", "logs", workflow["metadata"]["name"])
    assert "customer_age_years" in logs.stdout + logs.stderr
    assert _champion(stack).version == before
