"""Property-based: our scores, methods, thresholds and flags equal Evidently's DataDriftPreset (within 1e-9).

Evidently runs in each example as the oracle, on random numeric, tied, binary, few-valued, boolean and
categorical columns, at reference sizes on both sides of its 1000-row switch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitors.drift import build_profile
from monitors.drift._compute import DriftOptions, compute_drift
from tests.drift._drift_helpers import assert_same_as_evidently, make_column, scores_match

KINDS = ["numeric", "rounded", "binary", "few", "categorical", "boolean"]
ORACLE = settings(max_examples=4, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _frames(seed: int, ref_rows: int, cur_rows: int, kinds: list[str], shift: float, nulls: float):
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame(
        {f"{kind}_{i}": make_column(kind, rng, ref_rows, 0.0, nulls) for i, kind in enumerate(kinds)}
    )
    current = pd.DataFrame(
        {f"{kind}_{i}": make_column(kind, rng, cur_rows, shift, nulls) for i, kind in enumerate(kinds)}
    )
    return reference, current


def scenarios(ref_sizes: list[int], max_current: int, null_shares: list[float]) -> st.SearchStrategy:
    """(seed, reference rows, current rows, column kinds, shift, null share) of one random comparison."""
    return st.tuples(
        st.integers(0, 2**32 - 1),
        st.sampled_from(ref_sizes),
        st.integers(20, max_current),
        st.lists(st.sampled_from(KINDS), min_size=1, max_size=3),
        st.sampled_from([0.0, 0.05, 0.3, 1.0]),
        st.sampled_from(null_shares),
    )


def _check_scenario(scenario: tuple) -> None:
    reference, current = _frames(*scenario)
    assert_same_as_evidently(compute_drift(build_profile(reference), current), reference, current)


@ORACLE
@given(scenarios([30, 400, 999, 1000], 1500, [0.0, 0.1]))
def test_small_reference_matches_evidently(scenario):
    """≤1000 reference rows: K-S, chi-square and Z tests (p-values)."""
    _check_scenario(scenario)


@ORACLE
@given(scenarios([1001, 1500, 2500], 2500, [0.0, 0.02]))
def test_large_reference_matches_evidently(scenario):
    """>1000 reference rows: normed Wasserstein and Jensen-Shannon (distances)."""
    _check_scenario(scenario)


@ORACLE
@given(
    seed=st.integers(0, 2**32 - 1),
    ref_rows=st.sampled_from([300, 2000]),
    threshold=st.floats(0.001, 0.3),
    column_threshold=st.floats(0.001, 0.3),
    drift_share=st.sampled_from([0.25, 0.5, 1.0]),
    method=st.sampled_from([None, "jensenshannon"]),
)
def test_options_match_evidently(seed, ref_rows, threshold, column_threshold, drift_share, method):
    """Thresholds per type and per column, forced methods and the drift share, like DataDriftPreset's."""
    reference, current = _frames(seed, ref_rows, 700, ["numeric", "categorical", "rounded"], 0.2, 0.0)
    options = DriftOptions(
        drift_share=drift_share,
        num_threshold=threshold,
        per_column_threshold={"categorical_1": column_threshold},
        num_method=method,  # Jensen-Shannon on a numeric column exercises the Sturges-binned path
    )
    profile = build_profile(reference)
    assert_same_as_evidently(compute_drift(profile, current, options), reference, current, options)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    seed=st.integers(0, 2**32 - 1),
    ref_rows=st.sampled_from([12, 999, 1000, 1001, 20_000]),
    cur_rows=st.sampled_from([7, 1000, 30_000]),
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=6),
    shift=st.floats(0, 2),
)
def test_extremes_match_evidently(seed, ref_rows, cur_rows, kinds, shift):
    """Tiny and large samples, the exact 1000/1001 boundary, through a saved-and-loaded profile."""
    reference, current = _frames(seed, ref_rows, cur_rows, kinds, shift, 0.0)
    assert_same_as_evidently(compute_drift(build_profile(reference), current), reference, current)


@pytest.mark.parametrize("ref_rows", [600, 3000])
def test_infinities_and_booleans_like_value_drift(ref_rows):
    """±inf is dropped like Evidently's per-column ValueDrift; a bool declared numerical is tested as its 0/1.

    Only per-column results are compared: with ±inf but no NaN in a column, Evidently's own
    DriftedColumnsCount keeps the infinities (see docs/drift.md), so its share can disagree with its columns.
    """
    from monitors.drift._evidently import evidently_drift

    rng = np.random.default_rng(ref_rows)
    reference = pd.DataFrame({"x": rng.normal(size=ref_rows), "flag": rng.random(ref_rows) < 0.3})
    current = pd.DataFrame({"x": rng.normal(0.2, size=500), "flag": rng.random(500) < 0.4})
    reference.loc[::50, "x"] = np.inf
    current.loc[::7, "x"] = -np.inf
    kinds = {"x": "numerical", "flag": "numerical"}
    ours = compute_drift(build_profile(reference, kinds), current)
    as_numbers = {"flag": np.int64}  # Evidently itself crashes on a bool column declared numerical
    theirs = evidently_drift(reference.astype(as_numbers), current.astype(as_numbers), None, kinds)["columns"]
    for name, expected in theirs.items():
        got = ours.columns[name]
        assert (got.method, got.drifted) == (expected["method"], expected["drifted"]), name
        assert scores_match(got.score, expected["score"]), (name, got, expected)
    assert ours.columns["x"].current_rows == 500 - len(range(0, 500, 7))
