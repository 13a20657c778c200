"""Step ``validate-data``: the data gate. Schema, quality, then drift against the champion's reference data.

The contract comes from the Feast feature views. The JSON report is always written (also on failure) so the
operator sees every finding; the error names each offending column.

    python -m workflows.steps.validate_data --model-name credit-risk --dataset baseline
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.registry_contract import REFERENCE_SAMPLE_ARTIFACT
from workflows.steps._io import output_artifact, run_step
from workflows.steps.contract import StepContract

__all__ = ["ValidationResult", "main", "validate_data"]


@dataclass
class ValidationResult:
    dataset: str
    rows: int
    findings: list[Any] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "passed": self.passed,
            "findings": [finding.to_json() for finding in self.findings],
            "drift": self.drift,
        }


def _champion_reference(model_name: str) -> Any | None:
    """The champion's ``reference/sample.parquet``, or None when there is no champion yet."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from workflows.steps._registry import CHAMPION, connect, download_artifact, version_by_alias

    client = connect()
    champion = version_by_alias(client, model_name, CHAMPION)
    if champion is None or not champion.run_id:
        return None
    try:
        return pd.read_parquet(download_artifact(client, champion.run_id, REFERENCE_SAMPLE_ARTIFACT))
    except (MlflowException, OSError):  # a champion registered without reference data: nothing to compare with
        return None


def validate_data(
    model_name: str,
    dataset: str,
    max_null_share: float = 0.05,
    max_drift_share: float = 0.5,
    *,
    schema: Any = None,
    reference: Any = None,
    report_path: Path | None = None,
    html_path: Path | None = None,
) -> ValidationResult:
    """Check ``dataset`` against the contract; raises DataContractError naming every offending column.

    ``reference`` (a DataFrame) defaults to the champion's reference sample from MLflow; pass an empty DataFrame to
    skip the drift check (no MLflow needed).
    """
    import pandas as pd

    from driftloop.config import get_settings
    from driftloop.errors import DataContractError
    from features.columns import declared_schema
    from features.generator import resolve_dataset
    from workflows.steps._checks import quality_findings, schema_findings

    frame = pd.read_parquet(resolve_dataset(dataset))  # a bad dataset fails before Feast is even imported
    contract = schema or declared_schema(model_name or get_settings().model_name)
    result = ValidationResult(dataset=dataset, rows=len(frame))
    result.findings = schema_findings(frame, contract)
    if not result.findings:
        result.findings = quality_findings(frame, contract, max_null_share)
    if not result.findings:
        baseline = _champion_reference(model_name) if reference is None else reference
        if baseline is not None and len(baseline):
            from workflows.steps._drift import drift_findings

            result.drift, drifted = drift_findings(baseline, frame, contract, max_drift_share, html_path)
            result.findings = drifted
        else:
            result.drift = {"skipped": "no champion reference data yet"}
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(result.to_json(), indent=2))
    if result.findings:
        columns = sorted({finding.column for finding in result.findings})
        details = "; ".join(f"{finding.check}: {finding.message}" for finding in result.findings[:20])
        raise DataContractError(
            f"dataset {dataset!r} violates the data contract of {contract.service!r} in column(s) {columns}: {details}",
            columns=columns,
            hint="fix the upstream data, or change the Feast feature views (features/definitions.py) and retrain",
        )
    return result


def _body(contract: StepContract, flags: dict[str, Any]) -> dict[str, Any]:
    result = validate_data(
        flags["model_name"],
        flags["dataset"],
        flags["max_null_share"],
        flags["max_drift_share"],
        report_path=output_artifact(contract, "validation-report"),
        html_path=output_artifact(contract, "drift-report"),
    )
    return {"rows": result.rows}


def main(argv: Sequence[str] | None = None) -> None:
    run_step("validate-data", argv, _body)


if __name__ == "__main__":
    main()
