"""Drift of a dataset against the champion's reference sample, with Evidently's DataDriftPreset.

Evidently picks the test per column (Wasserstein / Jensen-Shannon for large samples, K-S / chi-square for small
ones); a p-value test drifts below its threshold, a distance drifts at or above it. The dataset fails only when the
share of drifted columns exceeds ``max_drift_share``; the HTML report is written either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from features.contract import FeatureSchema
from workflows.steps._checks import Finding

__all__ = ["column_drift", "drift_findings"]


def _drifted(method: str, value: float, threshold: float) -> bool:
    return value < threshold if "p_value" in method.lower() else value >= threshold


def column_drift(
    reference: pd.DataFrame, current: pd.DataFrame, schema: FeatureSchema, html_path: Path | None
) -> dict[str, Any]:
    """Per-column method, score, threshold and verdict; saves the Evidently HTML report when a path is given."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [name for name in schema.names if name in reference.columns and name in current.columns]
    definition = DataDefinition(
        numerical_columns=[spec.name for spec in schema.numeric if spec.name in columns],
        categorical_columns=[spec.name for spec in schema.categorical if spec.name in columns],
    )
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
    result: dict[str, Any] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            method, threshold, value = config["method"], float(config["threshold"]), float(metric["value"])
            result[config["column"]] = {
                "method": method,
                "score": value,
                "threshold": threshold,
                "drifted": _drifted(method, value, threshold),
            }
    return result


def drift_findings(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: FeatureSchema,
    max_drift_share: float,
    html_path: Path | None,
) -> tuple[dict[str, Any], list[Finding]]:
    """The drift section of the validation report, and one finding per drifted column when the share is too high."""
    columns = column_drift(reference, current, schema, html_path)
    drifted = [name for name, entry in columns.items() if entry["drifted"]]
    share = len(drifted) / len(columns) if columns else 0.0
    summary = {"share": share, "max_share": max_drift_share, "drifted": drifted, "columns": columns}
    if share <= max_drift_share:
        return summary, []
    return summary, [
        Finding(
            "drift",
            name,
            f"{name!r} drifted ({columns[name]['method']} = {columns[name]['score']:.3g}); "
            f"{share:.0%} of columns drifted, tolerated {max_drift_share:.0%}",
        )
        for name in drifted
    ]
