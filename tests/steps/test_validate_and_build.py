"""validate-data and build-training-set without any server: the seeds' incident is caught by name, the snapshot id
is a content hash, and the entry points honour the contract's flags and output files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from driftloop.errors import DataContractError, NotFoundError, ServiceUnavailableError
from features.columns import VIEW_COLUMNS
from features.contract import FeatureSchema
from features.generator import generate, write_dataset
from features.store import code_schema
from workflows.steps import build_training_set as build_module
from workflows.steps._dataset import read_training_set, snapshot_id
from workflows.steps.build_training_set import build_training_set
from workflows.steps.validate_data import validate_data

NO_REFERENCE = pd.DataFrame()


def _validate(path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    return validate_data("credit-risk", str(path), reference=NO_REFERENCE, **kwargs)  # type: ignore[arg-type]


def test_baseline_passes_and_the_report_says_why(baseline_path: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = _validate(baseline_path, report_path=report)
    assert result.passed and result.rows == len(pd.read_parquet(baseline_path))
    assert json.loads(report.read_text())["passed"] is True


def test_schema_change_fails_naming_the_renamed_column(scenario_path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = tmp_path / "report.json"
    with pytest.raises(DataContractError) as caught:
        _validate(scenario_path("schema-change", 500), report_path=report)
    assert {"age", "customer_age_years"} <= set(caught.value.columns)
    assert "'age'" in caught.value.message and "customer_age_years" in caught.value.message
    assert json.loads(report.read_text())["passed"] is False  # the report is written on failure too


@pytest.mark.parametrize(
    ("scenario", "columns"),
    [("missing-spike", {"annual_income", "employment_length"}), ("new-category", {"purpose", "home_ownership"})],
)
def test_quality_failures_name_each_column(scenario_path, scenario: str, columns: set[str]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataContractError) as caught:
        _validate(scenario_path(scenario, 2_000))
    assert set(caught.value.columns) == columns


def test_out_of_range_and_mistyped_values_are_named(tmp_path: Path) -> None:
    frame = generate("baseline", 300)
    frame.loc[3, "credit_utilisation"] = 7.0
    frame["open_accounts"] = frame["open_accounts"].astype(str)
    with pytest.raises(DataContractError) as caught:
        _validate(write_dataset(frame, tmp_path / "bad.parquet"))
    assert caught.value.columns == ["open_accounts"]  # schema first: fail fast before quality checks
    frame["open_accounts"] = 3
    with pytest.raises(DataContractError) as caught:
        _validate(write_dataset(frame, tmp_path / "bad.parquet"))
    assert caught.value.columns == ["credit_utilisation"]


@pytest.mark.slow
def test_drift_against_a_reference_fails_only_above_the_tolerated_share(scenario_path, baseline_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reference = pd.read_parquet(baseline_path).head(2_000)
    shifted = scenario_path("covariate-shift", 2_000)
    html = tmp_path / "drift.html"
    with pytest.raises(DataContractError) as caught:
        validate_data("credit-risk", str(shifted), max_drift_share=0.2, reference=reference, html_path=html)
    assert {"age", "credit_utilisation", "debt_to_income"} <= set(caught.value.columns)
    assert html.stat().st_size > 10_000
    same_world = scenario_path("baseline", 2_000)
    result = validate_data("credit-risk", str(same_world), max_drift_share=0.2, reference=reference)
    assert result.drift["share"] <= 0.2


def test_snapshot_id_is_stable_and_changes_when_one_row_changes(baseline_path: Path, tmp_path: Path) -> None:
    first = build_training_set("credit-risk", str(baseline_path), tmp_path / "a.parquet")
    again = build_training_set("credit-risk", str(baseline_path), tmp_path / "b.parquet")
    assert first.snapshot_id == again.snapshot_id and first.rows == len(pd.read_parquet(baseline_path))
    training = read_training_set(first.path)
    assert snapshot_id(training.frame, training.schema) == first.snapshot_id
    edited = training.frame.copy()
    edited.loc[17, "loan_amount"] += 1.0
    assert snapshot_id(edited, training.schema) != first.snapshot_id
    other_definitions = FeatureSchema(training.schema.service, training.schema.features[::-1])
    assert snapshot_id(training.frame, other_definitions) != first.snapshot_id


def test_build_refuses_unknown_service_and_renamed_columns(scenario_path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFoundError):
        build_training_set("credit-risk", str(scenario_path("baseline", 300)), tmp_path / "x.parquet", "nope-v9")
    with pytest.raises(DataContractError) as caught:
        build_training_set("credit-risk", str(scenario_path("schema-change", 300)), tmp_path / "x.parquet")
    assert caught.value.columns == ["age"]


def test_entry_point_writes_contract_outputs(
    baseline_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_STEP_OUTPUT_DIR", str(tmp_path / "out"))
    build_module.main(["--model-name", "credit-risk", "--dataset", str(baseline_path)])
    outputs = tmp_path / "out"
    assert len((outputs / "snapshot-id").read_text()) == 24
    assert int((outputs / "rows").read_text()) == len(pd.read_parquet(baseline_path))
    assert read_training_set(outputs / "training-set.parquet").schema == code_schema()


@pytest.mark.slow
def test_help_is_fast_to_import_and_a_bad_dataset_exits_with_a_hint(tmp_path: Path) -> None:
    probe = "import sys, runpy; sys.argv=['x','--help']\ntry: runpy.run_module('workflows.steps.train', run_name='__main__')\nexcept SystemExit: pass\nprint('torch' in sys.modules, 'mlflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "--snapshot-id" in done.stdout and done.stdout.strip().endswith("False False")
    env = {**os.environ, "DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_STEP_OUTPUT_DIR": str(tmp_path / "out")}
    failed = subprocess.run(
        [sys.executable, "-m", "workflows.steps.validate_data", "--model-name", "m", "--dataset", "/no/such.parquet"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert failed.returncode == 1 and "hint:" in failed.stderr and "/no/such.parquet" in failed.stderr


def test_declared_columns_are_what_the_contract_reads() -> None:
    assert code_schema().names == [spec.name for specs in VIEW_COLUMNS.values() for spec in specs]


def test_the_declared_schema_is_exactly_what_the_feast_views_give_back(tmp_path: Path) -> None:
    """The steps read the contract without importing Feast; it must hash alike to the one the Feast views carry."""
    from features.contract import schema_from_views
    from features.definitions import build_definitions

    via_feast = schema_from_views("credit-risk-v1", build_definitions(tmp_path / "x.parquet", "credit-risk").views)
    declared = code_schema("credit-risk")
    assert declared == via_feast
    assert declared.to_json() == via_feast.to_json()
    assert declared.definition_hash() == via_feast.definition_hash()  # part of every data snapshot id


def test_steps_needing_mlflow_fail_fast_with_a_hint_when_it_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from workflows.steps._registry import connect

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_URI", f"http://127.0.0.1:{port}")
    with pytest.raises(ServiceUnavailableError) as caught:
        connect()
    assert "driftloop stack up" in (caught.value.hint or "")
