"""Drift of a dataset against the champion's reference sample: the drift monitor's own code, so the two agree.

The gate profiles the reference with the feature schema's kinds and runs ``monitors.drift.compute_drift`` — the
per-column tests Evidently 0.7's DataDriftPreset picks (Wasserstein / Jensen-Shannon for large samples, K-S /
chi-square for small ones), scored and judged exactly as the monitor judges a window (tested against Evidently
itself in tests/drift). The dataset fails only when the share of drifted columns exceeds ``max_drift_share``;
Evidently's HTML report is written either way when a path is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from features.contract import FeatureSchema
from workflows.steps._checks import Finding

__all__ = ["column_drift", "drift_findings"]


def column_drift(
    reference: pd.DataFrame, current: pd.DataFrame, schema: FeatureSchema, html_path: Path | None
) -> dict[str, Any]:
    """Per-column method, score, threshold and verdict; saves the Evidently HTML report when a path is given."""
    from monitors.drift import build_profile, compute_drift
    from monitors.drift._evidently import write_html_report

    columns = [name for name in schema.names if name in reference.columns and name in current.columns]
    kinds = {spec.name: ("categorical" if spec.categorical else "numerical") for spec in schema.features}
    kinds = {name: kinds[name] for name in columns}
    profile = build_profile(reference, kinds, columns=columns)
    result = compute_drift(profile, current, columns=[name for name in columns if name in profile.columns])
    if html_path is not None:
        write_html_report(reference, current, html_path, column_kinds=kinds)
    return {name: column.to_dict() for name, column in result.columns.items()}


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


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
            f"{name!r} drifted ({columns[name]['method']} = {_score(columns[name]['score'])}); "
            f"{share:.0%} of columns drifted, tolerated {max_drift_share:.0%}",
        )
        for name in drifted
    ]
