"""Step ``build-training-set``: point-in-time correct Feast features for the labelled entity rows.

Output: the training set (parquet, feature schema in its metadata) and a data snapshot id (content hash of the
training set + feature view definitions) that lineage and ``driftloop reproduce`` rely on.

    python -m workflows.steps.build_training_set --model-name credit-risk --dataset baseline
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflows.steps._io import output_artifact, run_step
from workflows.steps.contract import StepContract

__all__ = ["BuildResult", "build_training_set", "main"]


@dataclass(frozen=True)
class BuildResult:
    snapshot_id: str
    rows: int
    path: Path


def build_training_set(
    model_name: str,
    dataset: str,
    out_path: Path,
    feature_service: str = "",
    *,
    view_columns: dict[str, Any] | None = None,
) -> BuildResult:
    """Join features onto the dataset's (applicant_id, event_timestamp, label) rows as of each row's timestamp."""
    import pandas as pd

    from driftloop.errors import NotFoundError
    from features.generator import resolve_dataset
    from features.store import entity_rows, historical_features, open_repo
    from workflows.steps._dataset import write_training_set

    source = resolve_dataset(dataset)
    repo = open_repo(source, model_name, view_columns=view_columns)
    if feature_service and feature_service != repo.service_name:
        raise NotFoundError(
            f"feature service {feature_service!r} is not defined",
            hint=f"leave --feature-service empty to use {repo.service_name!r}",
        )
    raw = pd.read_parquet(source)
    _require_columns(raw, repo.schema())
    rows = entity_rows(raw)
    frame = historical_features(repo, rows)
    snapshot = write_training_set(frame, repo.schema(), out_path)
    return BuildResult(snapshot_id=snapshot, rows=len(frame), path=out_path)


def _require_columns(frame: Any, schema: Any) -> None:
    """Missing or mistyped feature columns fail here, by name, instead of deep inside Feast."""
    from driftloop.errors import DataContractError
    from workflows.steps._checks import schema_findings

    wanted = set(schema.names)
    findings = [f for f in schema_findings(frame, schema) if f.column in wanted or "required" in f.message]
    if findings:
        raise DataContractError(
            "cannot build the training set: " + "; ".join(f.message for f in findings),
            columns=sorted({f.column for f in findings}),
            hint="run validate-data on this dataset; fix the upstream columns or the Feast feature views",
        )


def _body(contract: StepContract, flags: dict[str, Any]) -> dict[str, Any]:
    result = build_training_set(
        flags["model_name"],
        flags["dataset"],
        output_artifact(contract, "training-set"),
        flags["feature_service"],
    )
    return {"snapshot-id": result.snapshot_id, "rows": result.rows}


def main(argv: Sequence[str] | None = None) -> None:
    run_step("build-training-set", argv, _body)


if __name__ == "__main__":
    main()
