"""The fast building blocks against the numpy/scipy functions Evidently calls, and compute_drift's rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import wasserstein_distance

from driftloop.errors import ConfigError, DataContractError, SchemaMismatchError
from monitors.drift import build_profile
from monitors.drift._compute import DriftOptions, compute_drift
from monitors.drift._stattests import _sorted_histogram, sturges_edges
from monitors.drift._wasserstein import wasserstein_sorted
from tests.drift._drift_helpers import scores_match

FAST = settings(max_examples=60, deadline=None, database=None)
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
samples = hnp.arrays(np.float64, st.integers(1, 300), elements=st.one_of(finite, st.sampled_from([0.0, 1.0, 2.5])))


@FAST
@given(u=samples, v=samples)
def test_wasserstein_matches_scipy(u, v):
    expected = float(wasserstein_distance(u, v))
    spread = max(1.0, float(np.std(np.concatenate([u, v]))))  # Evidently divides by the std: compare at that scale
    assert scores_match(wasserstein_sorted(np.sort(u), np.sort(v)) / spread, expected / spread)
    assert scores_match(wasserstein_sorted(np.sort(v), np.sort(u)) / spread, expected / spread)


@FAST
@given(
    size=st.integers(1, 2000),
    other=st.integers(1, 2000),
    offset=st.sampled_from([0.0, 1e6, -3e9]),
    seed=st.integers(0, 2**32 - 1),
)
def test_wasserstein_stays_exact_far_from_zero(size, other, offset, seed):
    """Prefix sums are centred: data around 1e6 or 1e9 loses no precision relative to its spread."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(offset, 1.0, size), rng.normal(offset + 0.1, 1.0, other)
    assert scores_match(wasserstein_sorted(np.sort(u), np.sort(v)), float(wasserstein_distance(u, v)))


@FAST
@given(
    values=hnp.arrays(np.float64, st.integers(2, 200), elements=finite),
    size=st.integers(2, 10**7),
)
def test_sturges_edges_match_numpy(values, size):
    """Same edges as np.histogram_bin_edges(combined, 'sturges') for a combined sample of that size."""
    padded = np.resize(values, size) if size <= 5000 else None
    if padded is None:  # the edges depend only on min, max and size: build a cheap sample with all three
        padded = np.full(size, values[0])
        padded[: values.size] = values
    np.testing.assert_array_equal(
        sturges_edges(padded.min(), padded.max(), size), np.histogram_bin_edges(padded, "sturges")
    )


@FAST
@given(values=hnp.arrays(np.int64, st.integers(1, 300), elements=st.integers(-50, 50)), bins=st.integers(1, 40))
def test_sorted_histogram_matches_numpy(values, bins):
    edges = np.histogram_bin_edges(values.astype(np.float64), bins)
    np.testing.assert_array_equal(_sorted_histogram(np.sort(values), edges), np.histogram(values, edges)[0])


def _frames(rows: int = 200):
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(size=rows), "kind": rng.choice(["a", "b", "c"], rows)})
    current = pd.DataFrame({"x": rng.normal(0.5, size=rows), "kind": rng.choice(["a", "b"], rows)})
    return reference, current


def test_option_precedence_is_evidentlys():
    options = DriftOptions(
        method="jensenshannon",
        num_method="wasserstein",
        per_column_method={"x": "ks"},
        threshold=0.2,
        cat_threshold=0.3,
        per_column_threshold={"x": 0.01},
    )
    assert options.method_for("x", "numerical") == "ks"
    assert options.method_for("y", "numerical") == "wasserstein"
    assert options.method_for("z", "categorical") == "jensenshannon"
    assert options.threshold_for("x", "numerical") == 0.01
    assert options.threshold_for("z", "categorical") == 0.3
    assert options.threshold_for("y", "numerical") == 0.2


def test_invalid_options_are_refused_with_a_hint():
    with pytest.raises(ConfigError) as unknown:
        DriftOptions(method="psi")
    assert "ks" in (unknown.value.hint or "")
    with pytest.raises(ConfigError):
        DriftOptions(drift_share=0)
    reference, current = _frames()
    with pytest.raises(ConfigError, match="does not apply"):
        compute_drift(build_profile(reference), current, DriftOptions(per_column_method={"kind": "ks"}))


def test_strict_mode_names_every_bad_column():
    reference, current = _frames()
    bad = current.drop(columns=["kind"]).assign(x=["oops"] * len(current))
    with pytest.raises(SchemaMismatchError) as error:
        compute_drift(build_profile(reference), bad)
    assert sorted(error.value.columns) == ["kind", "x"]


def test_lenient_mode_skips_bad_columns_and_keeps_the_rest():
    reference, current = _frames()
    result = compute_drift(build_profile(reference), current.drop(columns=["kind"]), strict=False)
    assert list(result.columns) == ["x"]
    assert result.skipped == {"kind": "missing from the current data"}
    assert result.drifted_share == 1.0  # x moved by half a standard deviation
    everything_null = current.assign(x=np.nan)
    result = compute_drift(build_profile(reference), everything_null, strict=False)
    assert "x" in result.skipped and list(result.columns) == ["kind"]


def test_no_rows_no_verdict():
    reference, current = _frames()
    with pytest.raises(DataContractError, match="no rows"):
        compute_drift(build_profile(reference), current.iloc[:0])
    result = compute_drift(build_profile(reference), current.assign(x=np.nan, kind=None), strict=False)
    assert result.columns == {} and result.drifted_share is None and result.dataset_drift is False


def test_json_shape():
    reference, current = _frames()
    document = compute_drift(build_profile(reference), current).to_dict()
    assert set(document) == {"columns", "drifted_share", "dataset_drift", "rows", "skipped"}
    assert document["rows"] == {"reference": 200, "current": 200}
    assert set(document["columns"]["x"]) == {"method", "score", "threshold", "drifted"}
    assert document["columns"]["x"]["method"] == "ks" and document["columns"]["kind"]["method"] == "chisquare"
    assert math.isfinite(document["columns"]["x"]["score"])


def test_threads_do_not_change_results():
    reference, current = _frames(3000)
    profile = build_profile(reference)
    serial = compute_drift(profile, current, workers=1).to_dict()
    assert compute_drift(profile, current, workers=4).to_dict() == serial
