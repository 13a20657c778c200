"""Helpers shared by the drift tests: deterministic data and the comparison with Evidently."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitors.drift._compute import DriftOptions, DriftResult


def scores_match(ours: float, theirs: float) -> bool:
    """Equal within 1e-9 (relative for scores above 1); NaN only matches NaN."""
    if math.isnan(theirs) or math.isnan(ours):
        return math.isnan(theirs) and math.isnan(ours)
    return abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs))


def assert_same_as_evidently(
    ours: DriftResult, reference: pd.DataFrame, current: pd.DataFrame, options: DriftOptions | None = None
) -> dict[str, Any]:
    """Run Evidently's DataDriftPreset on the raw frames and compare every verdict with ours."""
    from monitors.drift._evidently import evidently_drift

    kinds = {name: column.kind for name, column in ours.columns.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = evidently_drift(reference, current, options, kinds)
    assert set(theirs["columns"]) == set(ours.columns)
    for name, expected in theirs["columns"].items():
        got = ours.columns[name]
        context = f"column {name}: ours {got}, Evidently {expected}"
        assert got.method == expected["method"], context
        assert got.threshold == expected["threshold"], context
        assert scores_match(got.score, expected["score"]), context
        assert got.drifted == expected["drifted"], context
    assert ours.drifted_share == pytest.approx(theirs["drifted_share"], abs=1e-12)
    assert ours.dataset_drift == theirs["dataset_drift"]
    return theirs


def make_column(kind: str, rng: np.random.Generator, size: int, shift: float, null_share: float) -> pd.Series:
    """One synthetic column of the given kind; ``shift`` moves its distribution (0 = same as reference)."""
    if kind == "numeric":
        values = pd.Series(rng.normal(shift, 1.0 + abs(shift), size))
    elif kind == "rounded":  # numeric with ties: many repeated values
        values = pd.Series(np.round(rng.normal(shift, 1.0, size), 1))
    elif kind == "binary":
        values = pd.Series(rng.binomial(1, min(0.9, 0.3 + shift / 4), size).astype(np.int64))
    elif kind == "few":  # a numeric column with at most 5 distinct values
        values = pd.Series(rng.integers(0, 3 + int(shift > 0.5), size).astype(np.float64))
    elif kind == "categorical":
        letters = np.array(list("abcdefg"))
        weights = np.linspace(1.0, 1.0 + shift, letters.size)
        values = pd.Series(rng.choice(letters, size, p=weights / weights.sum()), dtype=object)
    elif kind == "boolean":
        values = pd.Series(rng.random(size) < 0.5 + shift / 10)
    else:
        raise ValueError(kind)
    if null_share and kind in ("numeric", "rounded", "few", "categorical"):
        mask = rng.random(size) < null_share
        values = values.where(~mask, None if kind == "categorical" else np.nan)
    return values
