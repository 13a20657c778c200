"""Step ``register``: a model version with full lineage tags, reference data and a model card; alias challenger.

Lineage tags (see ``LINEAGE_TAGS``): git commit, data snapshot id, feature schema fingerprint, feature service,
workflow name/uid, trigger and trigger ref, the drifted features a drift retrain was started for (a JSON list, the
alert receiver's ``drifted-features`` parameter), parent champion version.

    python -m workflows.steps.register --model-name credit-risk --run-id <run> --snapshot-id <id> \\
        --trigger manual --trigger-ref cli --git-commit <sha> --workflow-name local --workflow-uid local
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from driftloop.registry_contract import EVALUATION_AUC_METRIC, REFERENCE_DIR, REFERENCE_TAG, TRIGGERS, run_model_uri
from workflows.steps._io import run_step
from workflows.steps.contract import StepContract

log = logging.getLogger("driftloop.steps.register")

__all__ = [
    "DRIFTED_FEATURES_MAX_CHARS",
    "FEATURE_NAME",
    "LINEAGE_TAGS",
    "RegisterResult",
    "main",
    "parse_drifted_features",
    "register",
]

LINEAGE_TAGS = (
    "git_commit",
    "git_dirty",  # "true" when trained from uncommitted changes (submit --allow-dirty), with their hash:
    "git_diff_sha256",
    "data_snapshot_id",
    "feature_schema_fingerprint",
    "feature_service",
    "workflow_name",
    "workflow_uid",
    "trigger",
    "trigger_ref",
    "drifted_features",
    "parent_champion_version",
)
DRIFTED_FEATURES_MAX_CHARS = 4000  # characters of the JSON list: an MLflow model-version tag value holds 5,000
FEATURE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")


def parse_drifted_features(text: str) -> list[str]:
    """``--drifted-features`` (a JSON list of feature names) -> the list; a DataContractError that names the
    problem otherwise, before anything is registered."""
    from driftloop.errors import DataContractError

    hint = 'pass a JSON list of feature names, e.g. --drifted-features \'["age","annual_income"]\' (or [])'
    try:
        value = json.loads(text or "[]")
    except ValueError:
        raise DataContractError(f"--drifted-features {text[:80]!r} is not JSON", hint=hint) from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DataContractError(f"--drifted-features {text[:80]!r} is not a list of strings", hint=hint)
    bad = [item for item in value if not FEATURE_NAME.fullmatch(item)]
    if bad:
        raise DataContractError(f"--drifted-features: {bad[0][:40]!r} is not a feature name", hint=hint)
    features = list(dict.fromkeys(value))
    if len(json.dumps(features, separators=(",", ":"))) > DRIFTED_FEATURES_MAX_CHARS:
        raise DataContractError(
            f"--drifted-features: {len(features)} names are over {DRIFTED_FEATURES_MAX_CHARS} characters of JSON",
            hint="an MLflow tag holds 5,000 characters; the receiver never sends that many",
        )
    return features


@dataclass(frozen=True)
class RegisterResult:
    version: str
    tags: dict[str, str]
    reference: dict[str, str]


def _log_reference(
    client: Any, run_id: str, schema_json: dict[str, Any], metadata: dict[str, Any] | None = None
) -> dict[str, str]:
    """Reference data from the run's own training set (train portion only: what the model learnt from)."""
    import tempfile
    from pathlib import Path

    from features.contract import FeatureSchema
    from workflows.steps._dataset import read_training_set, split
    from workflows.steps._reference import write_reference
    from workflows.steps._registry import download_artifact
    from workflows.steps.train import TRAINING_SET_ARTIFACT

    with tempfile.TemporaryDirectory() as tmp:
        training_set = read_training_set(download_artifact(client, run_id, TRAINING_SET_ARTIFACT, Path(tmp) / "in"))
        status = write_reference(
            split(training_set.frame)[0], FeatureSchema.from_json(schema_json), Path(tmp) / REFERENCE_DIR, metadata
        )
        client.log_artifacts(run_id, str(Path(tmp) / REFERENCE_DIR), REFERENCE_DIR)
    return status


def _monitor_metadata(report: dict[str, Any]) -> dict[str, Any]:
    """What the monitor holds live traffic to: the evaluation's ROC AUC and holdout score deciles (when evaluated)."""
    out: dict[str, Any] = {}
    auc = (report.get("metrics") or {}).get("roc_auc")
    if isinstance(auc, int | float):
        out[EVALUATION_AUC_METRIC] = float(auc)
    if report.get("score_deciles"):
        out["score_deciles"] = list(report["score_deciles"])
    return out


def register(
    model_name: str,
    run_id: str,
    snapshot_id: str,
    trigger: str,
    trigger_ref: str,
    git_commit: str,
    workflow_name: str,
    workflow_uid: str,
    drifted_features: str = "[]",
) -> RegisterResult:
    """Register ``runs:/<run_id>/model`` as a new version of ``model_name`` and alias it ``challenger``."""
    features = parse_drifted_features(drifted_features)  # a malformed list fails before MLflow is even imported
    if trigger not in TRIGGERS:
        from driftloop.errors import DataContractError

        raise DataContractError(f"--trigger {trigger[:40]!r} is not a trigger", hint=f"one of: {' | '.join(TRIGGERS)}")
    import mlflow
    from mlflow.exceptions import MlflowException

    from driftloop.errors import DataContractError
    from workflows.steps._lineage import commit_tags
    from workflows.steps._model_card import model_card
    from workflows.steps._registry import CHALLENGER, CHAMPION, connect, download_artifact, version_by_alias
    from workflows.steps.evaluate import METRICS_ARTIFACT
    from workflows.steps.train import SCHEMA_ARTIFACT

    client = connect()
    run = client.get_run(run_id)
    params = run.data.params
    if params.get("snapshot_id") != snapshot_id:
        raise DataContractError(
            f"run {run_id} was trained on snapshot {params.get('snapshot_id')}, not {snapshot_id}",
            hint="pass the snapshot id that build-training-set produced in the same workflow run",
        )
    parent = version_by_alias(client, model_name, CHAMPION)
    tags = {
        **commit_tags(git_commit),  # "<sha>+dirty.<hash>" -> git_commit, git_dirty=true, git_diff_sha256
        "data_snapshot_id": snapshot_id,
        "feature_schema_fingerprint": params.get("feature_schema_fingerprint", ""),
        "feature_service": params.get("feature_service", ""),
        "workflow_name": workflow_name,
        "workflow_uid": workflow_uid,
        "trigger": trigger,
        "trigger_ref": trigger_ref,
        "drifted_features": json.dumps(features, separators=(",", ":")),
        "parent_champion_version": parent.version if parent is not None else "none",
    }
    schema_json = json.loads(download_artifact(client, run_id, SCHEMA_ARTIFACT).read_text())
    try:
        report = json.loads(download_artifact(client, run_id, METRICS_ARTIFACT).read_text())
    except (MlflowException, OSError, ValueError) as exc:  # not evaluated yet: a model card without metrics
        log.warning("run %s has no readable %s (%s): the model card lists no metrics", run_id, METRICS_ARTIFACT, exc)
        report = {}
    reference = _log_reference(client, run_id, schema_json, _monitor_metadata(report))
    model_uri = run_model_uri(run_id, run.data.tags)
    registered = mlflow.register_model(model_uri, model_name, tags=tags)
    version = str(registered.version)
    client.log_text(run_id, model_card(model_name, version, tags, params, report), "model_card.md")
    client.set_model_version_tag(model_name, version, REFERENCE_TAG, json.dumps(reference))
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    return RegisterResult(version=version, tags=tags, reference=reference)


def _body(contract: StepContract, flags: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "model_name",
        "run_id",
        "snapshot_id",
        "trigger",
        "trigger_ref",
        "git_commit",
        "workflow_name",
        "workflow_uid",
        "drifted_features",
    )
    return {"version": register(*(flags[key] for key in keys)).version}


def main(argv: Sequence[str] | None = None) -> None:
    run_step("register", argv, _body)


if __name__ == "__main__":
    main()
