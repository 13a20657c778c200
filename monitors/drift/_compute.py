"""Per-column drift and the dataset verdict, with Evidently's option precedence.

Option names mirror ``evidently.presets.DataDriftPreset`` (method / cat_method / num_method /
per_column_method, threshold / cat_threshold / num_threshold / per_column_threshold, drift_share), and so
does their precedence: per column > per type > all columns > the test's default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from driftloop.errors import ConfigError, DataContractError, SchemaMismatchError
from monitors.drift._columns import NUMERICAL, clean_values
from monitors.drift._stattests import STAT_TESTS, default_method
from monitors.drift.reference import ColumnProfile, ReferenceProfile

if TYPE_CHECKING:  # the current data is a DataFrame, or numpy columns from the CLI's pandas-free path
    import pandas as pd

    from monitors.drift._arrays import ArrayFrame

__all__ = ["ColumnDrift", "DriftOptions", "DriftResult", "check_column_options", "columns_listing", "compute_drift"]


@dataclass(frozen=True)
class DriftOptions:
    """What DataDriftPreset lets you configure, with the same defaults."""

    drift_share: float = 0.5
    method: str | None = None
    num_method: str | None = None
    cat_method: str | None = None
    per_column_method: Mapping[str, str] = field(default_factory=dict)
    threshold: float | None = None
    num_threshold: float | None = None
    cat_threshold: float | None = None
    per_column_threshold: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        methods = [self.method, self.num_method, self.cat_method, *self.per_column_method.values()]
        unknown = sorted({m for m in methods if m is not None and m not in STAT_TESTS})
        if unknown:
            raise ConfigError(f"unknown drift method(s) {unknown}", hint=f"choose among {sorted(STAT_TESTS)}")
        if not 0 < self.drift_share <= 1:
            raise ConfigError(f"drift share {self.drift_share} is not in (0, 1]", hint="e.g. 0.5 (Evidently's default)")

    def method_for(self, column: str, kind: str) -> str | None:
        chosen = self.method
        by_kind = self.num_method if kind == NUMERICAL else self.cat_method
        chosen = by_kind if by_kind is not None else chosen
        return self.per_column_method.get(column, chosen)

    def threshold_for(self, column: str, kind: str) -> float | None:
        if column in self.per_column_threshold:
            return self.per_column_threshold[column]
        by_kind = self.num_threshold if kind == NUMERICAL else self.cat_threshold
        return by_kind if by_kind is not None else self.threshold


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict: Evidently's method name, its score (p-value or distance) and threshold."""

    name: str
    kind: str
    method: str
    score: float
    threshold: float
    drifted: bool
    current_rows: int  # finite, non-null values the test used

    def to_dict(self) -> dict[str, Any]:
        score = self.score if math.isfinite(self.score) else None
        return {"method": self.method, "score": score, "threshold": self.threshold, "drifted": self.drifted}


@dataclass(frozen=True)
class DriftResult:
    """The per-column verdicts plus Evidently's dataset-level ``DriftedColumnsCount`` verdict."""

    columns: dict[str, ColumnDrift]
    reference_rows: int
    current_rows: int
    drift_share_threshold: float
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.drifted]

    @property
    def drifted_share(self) -> float | None:
        """Share of tested columns that drifted; None when no column could be tested."""
        if not self.columns:
            return None
        return len(self.drifted_columns) / len(self.columns)

    @property
    def dataset_drift(self) -> bool:
        share = self.drifted_share
        return share is not None and share >= self.drift_share_threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
            "drifted_share": self.drifted_share,
            "dataset_drift": self.dataset_drift,
            "rows": {"reference": self.reference_rows, "current": self.current_rows},
            "skipped": dict(self.skipped),
        }


def columns_listing(profile: ReferenceProfile) -> str:
    """'columns with a drift test: a, b; skipped: c (why)' — what an error about columns should show."""
    text = f"columns with a drift test: {', '.join(profile.columns) or 'none'}"
    if profile.skipped:
        text += "; skipped: " + "; ".join(f"{name} ({why})" for name, why in profile.skipped.items())
    return text


def check_column_options(profile: ReferenceProfile, options: DriftOptions) -> None:
    """Per-column methods/thresholds must name profiled columns: a typo must not silently keep the default."""
    problems = []
    for flag, named in (
        ("--column-method", options.per_column_method),
        ("--column-threshold", options.per_column_threshold),
    ):
        unknown = sorted(name for name in named if name not in profile.columns)
        if unknown:
            problems.append(f"{flag} names unknown column(s) {unknown}")
    if problems:
        raise ConfigError("; ".join(problems), hint=columns_listing(profile))


def _problem(
    reference: ColumnProfile, current: pd.DataFrame | ArrayFrame
) -> tuple[str | None, pd.Series | np.ndarray | None]:
    """Why this column cannot be tested on ``current`` (or None), and its cleaned values."""
    if reference.name not in current.columns:
        return "missing from the current data", None
    values = clean_values(current[reference.name])
    if len(values) == 0:
        return "no finite, non-null value in the current data", None
    if reference.kind == NUMERICAL:  # cleaned values have a numpy dtype: pandas' bool and numeric tests are its kind
        if values.dtype.kind == "b":
            values = values.astype(np.int64)
        if values.dtype.kind not in "biufc":
            return f"expected numbers (reference dtype {reference.dtype}), got {values.dtype}", None
    return None, values


def _column_drift(reference: ColumnProfile, values: pd.Series | np.ndarray, options: DriftOptions) -> ColumnDrift:
    method = options.method_for(reference.name, reference.kind)
    if method is None:
        method = default_method(reference, values)
    elif reference.kind not in STAT_TESTS[method].kinds:
        raise ConfigError(
            f"method {method!r} does not apply to {reference.kind} column {reference.name!r}",
            hint=f"{method} accepts {sorted(STAT_TESTS[method].kinds)} columns; pick another method for this one",
        )
    spec = STAT_TESTS[method]
    threshold = options.threshold_for(reference.name, reference.kind)
    threshold = spec.default_threshold if threshold is None else threshold
    score = spec.score(reference, values)
    return ColumnDrift(
        reference.name, reference.kind, method, score, threshold, spec.is_drift(score, threshold), len(values)
    )


def compute_drift(
    profile: ReferenceProfile,
    current: pd.DataFrame | ArrayFrame,
    options: DriftOptions | None = None,
    *,
    columns: list[str] | None = None,
    strict: bool = True,
    workers: int | None = None,
) -> DriftResult:
    """Drift of ``current`` against the profiled reference, column by column, as Evidently computes it.

    ``strict`` raises ``SchemaMismatchError`` when a profiled column is missing, empty or of the wrong type
    (Evidently raises too); otherwise such columns are reported under ``skipped`` and left out of the share.
    Columns are independent, so they run on ``workers`` threads (numpy releases the GIL while sorting).
    """
    options = options or DriftOptions()
    if len(current) == 0:
        raise DataContractError(
            "the current data has no rows: there is nothing to compare with the reference",
            hint="widen the window (more rows or minutes) or wait for traffic",
        )
    wanted = columns if columns is not None else list(profile.columns)
    unknown = [name for name in wanted if name not in profile.columns]
    if unknown:
        raise DataContractError(
            f"the reference profile has no column(s) {unknown}",
            columns=unknown,
            hint=f"profiled columns: {sorted(profile.columns)}",
        )
    skipped: dict[str, str] = {}
    testable: list[tuple[ColumnProfile, pd.Series | np.ndarray]] = []
    for name in wanted:
        reason, values = _problem(profile.columns[name], current)
        if reason is not None:
            skipped[name] = reason
        else:
            assert values is not None
            testable.append((profile.columns[name], values))
    if skipped and strict:
        raise SchemaMismatchError(
            "the current data does not match the reference: "
            + "; ".join(f"{name}: {reason}" for name, reason in skipped.items()),
            columns=list(skipped),
            hint="fix the data, or restrict the comparison to the good columns (--columns)",
        )
    pool_size = workers if workers is not None else min(len(testable), os.cpu_count() or 1, 4)
    if pool_size > 1 and len(testable) > 1:
        with ThreadPoolExecutor(max_workers=pool_size) as pool:
            results = list(pool.map(lambda item: _column_drift(item[0], item[1], options), testable))
    else:
        results = [_column_drift(reference, values, options) for reference, values in testable]
    return DriftResult(
        {result.name: result for result in results}, profile.rows, len(current), options.drift_share, skipped
    )
