"""Payload columns versus the model's reference: missing, unexpected or wrongly typed values.

This is how the seeds' incident (a client sending a string where the model expects a number) shows up
live: each such record increments ``driftloop_payload_schema_mismatch_total{column}``, and the bad values
are kept out of the drift computation instead of crashing it or masquerading as drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from monitors.drift.reference import ReferenceProfile

__all__ = ["SchemaCheck", "check_payloads"]


@dataclass
class SchemaCheck:
    counts: dict[str, int] = field(default_factory=dict)  # column -> records with a problem
    reasons: dict[str, str] = field(default_factory=dict)  # column -> what the problem is
    cleaned: pd.DataFrame = field(default_factory=pd.DataFrame)  # features, wrong-typed values set to null

    def add(self, column: str, count: int, reason: str) -> None:
        if count:
            self.counts[column] = self.counts.get(column, 0) + count
            self.reasons[column] = reason


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)


def _wrong_type(values: pd.Series, dtype: str) -> pd.Series:
    """True where a non-null value is not of the kind the reference column holds."""
    kind = np.dtype(dtype).kind if dtype != "object" else "O"
    present = values.notna()
    if kind in "iuf":
        if values.dtype.kind in "iuf":
            return pd.Series(False, index=values.index)
        return present & ~values.map(_is_number).astype(bool)
    if kind == "b":
        if values.dtype.kind == "b":
            return pd.Series(False, index=values.index)
        return present & ~values.map(lambda v: isinstance(v, bool | np.bool_)).astype(bool)
    if values.dtype.kind != "O":
        return present
    return present & ~values.map(lambda v: isinstance(v, str)).astype(bool)


def check_payloads(profile: ReferenceProfile, frame: pd.DataFrame, fresh: pd.Series) -> SchemaCheck:
    """Compare the window's feature columns with the profile; count only ``fresh`` (not yet seen) records."""
    check = SchemaCheck()
    features = [str(c) for c in frame.columns if not str(c).startswith("_")]
    cleaned = frame[features].copy()
    for name, column in profile.columns.items():
        if name not in frame.columns:
            check.add(name, int(fresh.sum()), "missing from the payloads")
            continue
        values = frame[name]
        wrong = _wrong_type(values, column.dtype)
        check.add(name, int((wrong & fresh).sum()), f"wrong type (expected {column.dtype})")
        if wrong.any():
            cleaned[name] = values.where(~wrong, None)
            if column.kind == "numerical":
                cleaned[name] = pd.to_numeric(cleaned[name], errors="coerce")
        if column.nulls == 0:  # the reference never lacks this feature, so a null is a missing field
            check.add(name, int((values.isna() & ~wrong & fresh).sum()), "missing in some payloads")
    for name in features:
        if name not in profile.columns and name not in profile.skipped:
            check.add(name, int((frame[name].notna() & fresh).sum()), "not a feature of the model")
    check.cleaned = cleaned
    return check
