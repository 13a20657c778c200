"""Reference data a registered version carries for the drift monitor and the sidecar.

``reference/sample.parquet`` (training features), ``reference/stats.json`` (per-column statistics),
``reference/schema.json`` (names, dtypes, domains) and ``reference/profile/`` (the drift monitor's precomputed
profile, via ``monitors.drift.reference`` when that module is installed).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.registry_contract import REFERENCE_PROFILE, REFERENCE_SAMPLE
from features.contract import FeatureSchema

__all__ = ["SAMPLE_ROWS", "column_stats", "write_reference"]

log = logging.getLogger("driftloop.steps.register")

SAMPLE_ROWS = 5_000


def column_stats(frame: pd.DataFrame, schema: FeatureSchema) -> dict[str, Any]:
    """Null share and distribution summary per feature: quantiles for numerics, frequencies for categoricals."""
    stats: dict[str, Any] = {}
    for spec in schema.features:
        column = frame[spec.name]
        entry: dict[str, Any] = {"dtype": spec.dtype, "null_share": float(column.isna().mean()), "rows": len(column)}
        if spec.categorical:
            entry["frequencies"] = {str(k): float(v) for k, v in column.value_counts(normalize=True).items()}
        else:
            values = pd.to_numeric(column, errors="coerce").dropna()
            quantiles = values.quantile([0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0])
            entry.update(mean=float(values.mean()), std=float(values.std(ddof=0)))
            entry["quantiles"] = {f"{q:g}": float(v) for q, v in quantiles.items()}
        stats[spec.name] = entry
    return stats


def _save_profile(
    sample: pd.DataFrame, schema: FeatureSchema, directory: Path, metadata: dict[str, Any] | None = None
) -> str:
    """The drift monitor's precomputed profile of the same sample, so its drift tests match Evidently's on it."""
    try:
        from monitors.drift.reference import save_reference
    except ImportError:
        return "skipped: monitors.drift.reference is not installed"
    column_types = {spec.name: "categorical" if spec.categorical else "numerical" for spec in schema.features}
    info = {**(metadata or {}), "feature_schema_fingerprint": schema.fingerprint()}
    save_reference(sample, directory, column_types, metadata=info)
    return "saved"


def write_reference(
    training_rows: pd.DataFrame, schema: FeatureSchema, directory: Path, metadata: dict[str, Any] | None = None
) -> dict[str, str]:
    """Write sample, stats, schema and profile under ``directory``; returns a status line per part. ``metadata``
    goes into the profile (the evaluation's ROC AUC and score deciles, which the monitor holds live traffic to)."""
    directory.mkdir(parents=True, exist_ok=True)
    features = training_rows[schema.names]
    sample = features.sample(n=min(SAMPLE_ROWS, len(features)), random_state=0).sort_index()
    sample.to_parquet(directory / REFERENCE_SAMPLE, index=False)
    (directory / "stats.json").write_text(json.dumps(column_stats(features, schema), indent=2))
    (directory / "schema.json").write_text(json.dumps(schema.to_json(), indent=2))
    try:
        profile = _save_profile(sample, schema, directory / REFERENCE_PROFILE, metadata)
    except Exception as exc:  # the model still registers; the monitor then refuses this version, naming why
        profile = f"failed: {exc.__class__.__name__}: {exc}"
        log.warning("the drift profile of the reference could not be built (%s): the monitor cannot watch it", profile)
    return {"sample": f"{len(sample)} rows", "stats": "saved", "schema": "saved", "profile": profile}
