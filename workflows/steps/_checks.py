"""The data contract checks of ``validate-data``: schema first (fail fast), then quality per column.

Every finding names its column, so the error a user sees says exactly which column to fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd
from pandas.api import types as ptypes

from features.columns import ENTITY_KEY, LABEL, TIMESTAMP
from features.contract import FeatureSchema, FeatureSpec

__all__ = ["Finding", "quality_findings", "schema_findings"]

REQUIRED_COLUMNS = (ENTITY_KEY, TIMESTAMP, LABEL)


@dataclass(frozen=True)
class Finding:
    check: str  # schema | nulls | range | categories | drift
    column: str
    message: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def _dtype_of(series: pd.Series) -> str:
    if ptypes.is_bool_dtype(series):
        return "bool"
    if ptypes.is_integer_dtype(series):
        return "int64"
    if ptypes.is_float_dtype(series):
        return "float64"
    if ptypes.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"


def _compatible(expected: str, actual: str) -> bool:
    return expected == actual or (expected == "float64" and actual == "int64")


def schema_findings(frame: pd.DataFrame, schema: FeatureSchema) -> list[Finding]:
    """Missing, unexpected and mistyped columns."""
    findings = [
        Finding("schema", name, f"required column {name!r} is missing")
        for name in REQUIRED_COLUMNS
        if name not in frame.columns
    ]
    expected = set(schema.names) | set(REQUIRED_COLUMNS)
    for spec in schema.features:
        if spec.name not in frame.columns:
            findings.append(Finding("schema", spec.name, f"feature column {spec.name!r} ({spec.dtype}) is missing"))
        elif not _compatible(spec.dtype, actual := _dtype_of(frame[spec.name])):
            findings.append(
                Finding("schema", spec.name, f"column {spec.name!r} is {actual}, the contract says {spec.dtype}")
            )
    findings += [
        Finding("schema", str(name), f"unexpected column {name!r} is not in feature service {schema.service!r}")
        for name in frame.columns
        if name not in expected
    ]
    return findings


def _column_findings(series: pd.Series, spec: FeatureSpec, max_null_share: float) -> list[Finding]:
    findings = []
    null_share = float(series.isna().mean()) if len(series) else 0.0
    tolerated = max_null_share if spec.nullable else 0.0
    if null_share > tolerated:
        findings.append(
            Finding("nulls", spec.name, f"{null_share:.1%} of {spec.name!r} is null (tolerated: {tolerated:.1%})")
        )
    present = series.dropna()
    if spec.categorical:
        unseen = sorted(set(present.astype(str)) - set(spec.domain))
        if unseen:
            findings.append(Finding("categories", spec.name, f"unseen categories in {spec.name!r}: {unseen[:10]}"))
        return findings
    values = pd.to_numeric(present, errors="coerce")
    low, high = spec.minimum, spec.maximum
    outside = ((values < low) if low is not None else False) | ((values > high) if high is not None else False)
    count = int(pd.Series(outside).sum())
    if count:
        findings.append(Finding("range", spec.name, f"{count} value(s) of {spec.name!r} outside [{low}, {high}]"))
    return findings


def quality_findings(frame: pd.DataFrame, schema: FeatureSchema, max_null_share: float) -> list[Finding]:
    """Null share, range and unseen categories for every feature column (and nulls in the label)."""
    findings: list[Finding] = []
    for spec in schema.features:
        findings += _column_findings(frame[spec.name], spec, max_null_share)
    if frame[LABEL].isna().any():
        findings.append(Finding("nulls", LABEL, f"the label {LABEL!r} has nulls"))
    return findings
