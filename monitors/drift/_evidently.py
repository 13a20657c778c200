"""Evidently itself: the oracle our scores are tested against, and the HTML report operators look at.

Imported lazily (Evidently takes seconds to import), only when a report is written or a comparison runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from monitors.drift._compute import DriftOptions
from monitors.drift._stattests import STAT_TESTS

__all__ = ["evidently_drift", "evidently_report", "write_html_report"]

_NAME_BY_DISPLAY = {spec.display_name: spec.name for spec in STAT_TESTS.values()}


def evidently_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    options: DriftOptions | None = None,
    column_kinds: Mapping[str, str] | None = None,
) -> Any:
    """Run ``Report([DataDriftPreset(...)])``; ``column_kinds`` (name -> 'numerical'/'categorical') pins types."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    options = options or DriftOptions()
    preset = DataDriftPreset(
        drift_share=options.drift_share,
        method=options.method,
        num_method=options.num_method,
        cat_method=options.cat_method,
        per_column_method=dict(options.per_column_method) or None,
        threshold=options.threshold,
        num_threshold=options.num_threshold,
        cat_threshold=options.cat_threshold,
        per_column_threshold=dict(options.per_column_threshold) or None,
    )
    if column_kinds is not None:
        definition = DataDefinition(
            numerical_columns=[name for name, kind in column_kinds.items() if kind == "numerical"],
            categorical_columns=[name for name, kind in column_kinds.items() if kind == "categorical"],
        )
        columns = list(column_kinds)
        current = Dataset.from_pandas(current[columns], data_definition=definition)
        reference = Dataset.from_pandas(reference[columns], data_definition=definition)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Report([preset], include_tests=True).run(current, reference)


def evidently_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    options: DriftOptions | None = None,
    column_kinds: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Evidently's verdict in ``DriftResult.to_dict()``'s shape (without ``skipped``)."""
    snapshot = evidently_report(reference, current, options, column_kinds).dict()
    columns: dict[str, dict[str, Any]] = {}
    share = None
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            columns[config["column"]] = {
                "method": _NAME_BY_DISPLAY.get(config["method"], config["method"]),
                "score": float(metric["value"]),
                "threshold": config["threshold"],
            }
        elif config["type"].endswith("DriftedColumnsCount"):
            share = metric["value"]["share"]
    dataset_drift = False
    for test in snapshot["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith("ValueDrift"):
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
        elif params["type"].endswith("DriftedColumnsCount"):
            dataset_drift = test["status"] == "FAIL"
    return {
        "columns": columns,
        "drifted_share": share,
        "dataset_drift": dataset_drift,
        "rows": {"reference": len(reference), "current": len(current)},
    }


def write_html_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    path: str | Path,
    options: DriftOptions | None = None,
    column_kinds: Mapping[str, str] | None = None,
) -> Path:
    """Evidently's interactive HTML drift report for this window, written to ``path``.

    Written to a temporary name and renamed, so whoever watches the reports folder never reads a half-written file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        evidently_report(reference, current, options, column_kinds).save_html(str(partial))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
