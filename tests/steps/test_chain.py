"""The six steps as plain functions against a real MLflow server: champion on first pass, lineage tags, a worse
challenger never promoted, the schema-change incident blocked at promote, and an exact CPU reproduction."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from driftloop.errors import ConflictError, NotFoundError, SchemaMismatchError
from features.columns import VIEW_COLUMNS
from features.generator import generate
from workflows.steps._registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, connect, download_artifact
from workflows.steps.build_training_set import build_training_set
from workflows.steps.evaluate import evaluate
from workflows.steps.promote import promote
from workflows.steps.register import LINEAGE_TAGS, register
from workflows.steps.reproduce import reproduce, reproduce_command
from workflows.steps.train import train

pytestmark = pytest.mark.slow
MODEL = "credit-risk-chain"
FLOOR = 0.65  # a few thousand rows and epochs: well above chance (0.5), below a full training's ~0.75
EPOCHS = 3


def _chain(dataset: Path, workdir: Path, *, epochs: int = EPOCHS, seed: int = 42, model: str = MODEL, **build: object):  # type: ignore[no-untyped-def]
    built = build_training_set(model, str(dataset), workdir / "training-set.parquet", **build)  # type: ignore[arg-type]
    trained = train(model, built.snapshot_id, built.path, epochs=epochs, seed=seed, git_commit="0" * 40)
    evaluated = evaluate(model, trained.run_id, built.path, min_auc=FLOOR, max_regression=0.05)
    registered = register(model, trained.run_id, built.snapshot_id, "drift", "alert-fp-1", "0" * 40, "wf-1", "uid-1",
                          drifted_features='["term","age"]')  # fmt: skip
    return built, trained, evaluated, registered


@pytest.fixture(scope="module")
def first(mlflow_server: str, baseline_path: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    built, trained, evaluated, registered = _chain(baseline_path, tmp_path_factory.mktemp("first"))
    promoted = promote(MODEL, registered.version, payload_columns={})
    return built, trained, evaluated, registered, promoted


def test_first_model_passing_the_floor_becomes_champion(first) -> None:  # type: ignore[no-untyped-def]
    _, trained, evaluated, registered, promoted = first
    assert evaluated.passed, evaluated.reason
    assert evaluated.metrics["metrics"]["roc_auc"] >= FLOOR
    assert {"roc_auc", "accuracy", "log_loss", "calibration_error", "p95_batch_latency_ms"} <= set(
        evaluated.metrics["metrics"]
    )
    assert any(name.startswith("term=") for name in evaluated.metrics["segments"])
    assert promoted.champion_version == registered.version and promoted.previous_version is None
    client = connect()
    assert client.get_model_version_by_alias(MODEL, CHAMPION).version == registered.version
    assert trained.device in {"cpu", "cuda"}


def test_every_lineage_tag_is_present_and_correct(first) -> None:  # type: ignore[no-untyped-def]
    built, trained, _, registered, _ = first
    client = connect()
    version = client.get_model_version(MODEL, registered.version)
    assert set(LINEAGE_TAGS) <= set(version.tags)
    expected = {
        "git_commit": "0" * 40,
        "data_snapshot_id": built.snapshot_id,
        "feature_service": f"{MODEL}-v1",
        "workflow_name": "wf-1",
        "workflow_uid": "uid-1",
        "trigger": "drift",
        "trigger_ref": "alert-fp-1",
        "drifted_features": '["term","age"]',
        "parent_champion_version": "none",
    }
    assert {key: version.tags[key] for key in expected} == expected
    from workflows.steps._dataset import read_training_set

    assert version.tags["feature_schema_fingerprint"] == read_training_set(built.path).schema.fingerprint()
    assert version.run_id == trained.run_id
    run = client.get_run(trained.run_id)
    assert {"env.python", "env.torch", "env.cuda_available", "env.gpu_name"} <= set(run.data.tags)
    assert len(client.get_metric_history(trained.run_id, "train_loss")) == EPOCHS


def test_reference_data_and_model_card_are_logged(first) -> None:  # type: ignore[no-untyped-def]
    _, trained, evaluated, registered, _ = first
    client = connect()
    sample = pd.read_parquet(download_artifact(client, trained.run_id, "reference/sample.parquet"))
    schema = json.loads(download_artifact(client, trained.run_id, "reference/schema.json").read_text())
    stats = json.loads(download_artifact(client, trained.run_id, "reference/stats.json").read_text())
    names = [spec.name for specs in VIEW_COLUMNS.values() for spec in specs]
    assert list(sample.columns) == names and len(sample) > 1_000
    assert [item["name"] for item in schema["features"]] == names
    assert schema["features"][-1]["domain"] and set(stats) == set(names)
    card = download_artifact(client, trained.run_id, "model_card.md").read_text()
    assert f"v{registered.version}" in card and "Limitations" in card and "term=" in card
    assert "## Fairness" in card and "## Explainability" in card  # the gates' evidence (docs/feedback.md)
    gates = evaluated.metrics["gates"]
    assert gates["fairness"]["passed"] and gates["explainability"]["passed"], gates
    importance = json.loads(download_artifact(client, trained.run_id, "evaluation/permutation_importance.json").read_text())
    assert set(importance["permutation_importance"]) == set(names)
    profile = json.loads(download_artifact(client, trained.run_id, "reference/profile/profile.json").read_text())
    assert profile["metadata"]["holdout_roc_auc"] == pytest.approx(evaluated.metrics["metrics"]["roc_auc"])
    assert len(profile["metadata"]["score_deciles"]) == 9  # what the monitor's driftloop_prediction_psi compares to


def test_validate_data_checks_drift_against_the_champions_reference(first, scenario_path, baseline_path) -> None:  # type: ignore[no-untyped-def]
    from driftloop.errors import DataContractError
    from workflows.steps.validate_data import validate_data

    with pytest.raises(DataContractError) as caught:
        validate_data(MODEL, str(scenario_path("covariate-shift", 3_000)), max_drift_share=0.2)
    assert {"age", "credit_utilisation"} <= set(caught.value.columns)
    same_world = validate_data(MODEL, str(baseline_path), max_drift_share=0.2)
    assert same_world.drift["share"] <= 0.2 and set(same_world.drift["columns"]) == set(same_world.drift["columns"]) | {
        "age"
    }


def test_worse_challenger_is_registered_but_never_promoted(first, baseline_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    champion = first[3].version
    _, _, evaluated, registered = _chain(baseline_path, tmp_path, epochs=0)  # untrained weights: about chance
    assert not evaluated.passed and "below the floor" in evaluated.reason
    client = connect()
    assert client.get_model_version_by_alias(MODEL, CHALLENGER).version == registered.version
    assert registered.tags["parent_champion_version"] == champion
    with pytest.raises(ConflictError):
        promote(MODEL, registered.version, payload_columns={})
    assert client.get_model_version_by_alias(MODEL, CHAMPION).version == champion


def test_schema_change_model_is_refused_while_serving_expects_the_old_schema(
    first, scenario_path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    champion = first[3].version
    renamed = {
        view: tuple(replace(spec, name="customer_age_years") if spec.name == "age" else spec for spec in specs)
        for view, specs in VIEW_COLUMNS.items()
    }
    _, _, evaluated, registered = _chain(scenario_path("schema-change"), tmp_path, view_columns=renamed)
    assert evaluated.passed, evaluated.reason  # the model itself is fine: only its schema is wrong
    with pytest.raises(SchemaMismatchError) as caught:
        promote(MODEL, registered.version, payload_columns={})
    assert set(caught.value.columns) == {"age", "customer_age_years"}
    assert connect().get_model_version_by_alias(MODEL, CHAMPION).version == champion


def test_payloads_with_the_renamed_column_block_promotion(first) -> None:  # type: ignore[no-untyped-def]
    version = first[3].version
    payloads = {name: "integer" for name in ("customer_age_years", "open_accounts", "delinquencies_2y")}
    with pytest.raises(SchemaMismatchError) as caught:
        promote(MODEL, version, payload_columns=payloads)
    assert "customer_age_years" in caught.value.columns and "age" in caught.value.columns


def test_captured_payloads_in_the_lake_are_part_of_the_gate(first) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from monitors.lake import LakeRow, default_lake_uri, write_rows

    version = first[3].version
    record = generate("schema-change", 1).drop(columns=["applicant_id", "event_timestamp", "default_12m"])
    inputs = {key: (value.item() if hasattr(value, "item") else value) for key, value in record.iloc[0].items()}
    row = LakeRow("req-1", datetime.now(UTC), version, 200, 3.0, inputs=inputs, prediction=0.2)
    written = write_rows(default_lake_uri(), MODEL, [row], "part-test")
    try:
        with pytest.raises(SchemaMismatchError) as caught:
            promote(MODEL, version)  # no payload_columns given: read from the lake
        assert set(caught.value.columns) == {"age", "customer_age_years"}
        assert "recent payloads" in caught.value.message
    finally:
        for path in written:
            Path(path).unlink()


def test_better_challenger_moves_champion_and_keeps_the_previous(first, baseline_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    previous = connect().get_model_version_by_alias(MODEL, CHAMPION).version
    _, _, evaluated, registered = _chain(baseline_path, tmp_path, seed=7)
    assert evaluated.passed, evaluated.reason
    promoted = promote(MODEL, registered.version, payload_columns={})
    client = connect()
    assert promoted.previous_version == previous
    assert client.get_model_version_by_alias(MODEL, CHAMPION).version == registered.version
    assert client.get_model_version_by_alias(MODEL, PREVIOUS_CHAMPION).version == previous


def test_reproduce_matches_exactly_on_cpu(first) -> None:  # type: ignore[no-untyped-def]
    registered = first[3]
    result = reproduce(MODEL, registered.version)
    assert result.matches, result.rows
    assert len(result.rows) == EPOCHS * 3
    shown = CliRunner().invoke(reproduce_command, [MODEL, registered.version, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["matches"] is True
    with pytest.raises(NotFoundError):
        reproduce(MODEL, "999")
