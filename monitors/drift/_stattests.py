"""Evidently 0.7's five default stat tests, fed by a precomputed ``ColumnProfile``.

Each function reproduces ``evidently.legacy.calculations.stattests.<test>`` operation for operation (the
same scipy calls on the same numbers), except that whatever depends only on the reference (sorting,
counting, its standard deviation) comes from the profile. Scores therefore agree with Evidently to
floating-point summation order (far below 1e-9); drift flags use Evidently's own comparisons.

The current values come as a pandas Series or, from the drift CLI's pandas-free path, a numpy array
(``_arrays``); every test reads them through numpy, so both give the same scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from monitors.drift._columns import CATEGORICAL, NUMERICAL, unique_in_order
from monitors.drift._method_names import STAT_TEST_NAMES
from monitors.drift._wasserstein import wasserstein_sorted
from monitors.drift.reference import ColumnProfile

if TYPE_CHECKING:
    from typing import TypeAlias

    import pandas as pd

    Values: TypeAlias = pd.Series | np.ndarray

__all__ = ["STAT_TESTS", "StatTestSpec", "default_method", "union_unique_count"]

# Evidently's cut-offs (stattests/registry.py `_get_default_stattest`).
SMALL_REFERENCE_ROWS = 1000
FEW_VALUES = 5
BINARY_VALUES = 2
# get_binned_data: numerical columns with more distinct reference values than this are binned (Sturges).
BINNED_ABOVE_UNIQUE = 20


@dataclass(frozen=True)
class StatTestSpec:
    """A stat test as Evidently registers it: name, label, kinds it accepts, default threshold, flag rule."""

    name: str
    display_name: str
    kinds: frozenset[str]
    default_threshold: float
    score: Callable[[ColumnProfile, Values], float]
    is_drift: Callable[[float, float], bool]


def _value_counts(current: Values) -> dict[Any, int]:
    if current.dtype.kind in "iuf" or isinstance(current, np.ndarray):
        values, counts = np.unique(np.asarray(current), return_counts=True)
        return dict(zip(values, counts.tolist(), strict=True))
    return {value: int(count) for value, count in current.value_counts(sort=False).items()}


def _keys(reference: ColumnProfile, current: Values) -> list[Any]:
    """Evidently's ``get_unique_not_nan_values_list_from_series``: union of both sides' distinct values."""
    return list(set(reference.value_counts) | set(unique_in_order(current)))


def union_unique_count(reference: ColumnProfile, current: Values, at_most: int | None = None) -> int:
    """``pd.concat([reference, current]).nunique()``; stops early once it exceeds ``at_most``."""
    if at_most is not None and reference.n_unique > at_most:
        return reference.n_unique
    current_unique = unique_in_order(current)
    if at_most is not None and len(current_unique) > at_most:
        return len(current_unique)
    return len(set(reference.value_counts) | set(current_unique))


# scipy is imported by the tests that call it, not at import: the default tests on a big reference (Wasserstein,
# and Jensen-Shannon's scipy.spatial only when used) must not pay seconds of scipy.stats start-up per CLI process.


def _ks(reference: ColumnProfile, current: Values) -> float:
    from scipy.stats import ks_2samp

    assert reference.sorted_values is not None
    return float(ks_2samp(reference.sorted_values, np.asarray(current))[1])


def _chisquare(reference: ColumnProfile, current: Values) -> float:
    from scipy.stats import chisquare

    keys = _keys(reference, current)
    ref_counts, cur_counts = reference.value_counts, _value_counts(current)
    k_norm = current.shape[0] / reference.rows
    f_exp = [ref_counts.get(key, 0) * k_norm for key in keys]
    f_obs = [cur_counts.get(key, 0) for key in keys]
    return float(chisquare(f_obs, f_exp)[1])


def _z(reference: ColumnProfile, current: Values) -> float:
    cur_counts = _value_counts(current)
    if reference.n_unique == 1 and len(cur_counts) == 1 and set(reference.value_counts) == set(cur_counts):
        return 1.0
    key = sorted(_keys(reference, current))[0]
    n1, n2 = reference.rows, current.shape[0]
    # Evidently maps the first (sorted) key to 0 and every other value to 1, then takes proportions of 1s.
    p1 = float(n1 - reference.value_counts.get(key, 0)) / n1
    p2 = float(n2 - cur_counts.get(key, 0)) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    from scipy.stats import norm

    with np.errstate(divide="ignore", invalid="ignore"):
        z_stat = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - norm.cdf(np.abs(z_stat))))


def _wasserstein(reference: ColumnProfile, current: Values) -> float:
    assert reference.std is not None
    scale = max(reference.std, 0.001)
    current_sorted = np.sort(np.asarray(np.asarray(current), dtype=np.float64))
    if current_sorted.size == reference.rows:  # equal sizes need no prefix sums (computing them costs a pass)
        return wasserstein_sorted(reference.values_as_float, current_sorted) / scale
    return wasserstein_sorted(reference.values_as_float, current_sorted, *reference.quantile_prefix) / scale


def _unsigned_subtract(high: Any, low: Any) -> Any:
    """numpy's private ``_unsigned_subtract``: signed integer ranges computed without overflow."""
    dtype = np.result_type(high, low)
    if np.issubdtype(dtype, np.signedinteger):
        unsigned = np.dtype(f"u{dtype.itemsize}")
        return np.subtract(
            np.asarray(high, dtype=dtype), np.asarray(low, dtype=dtype), casting="unsafe", dtype=unsigned
        )
    return np.subtract(high, low, dtype=dtype)


def sturges_edges(first: Any, last: Any, size: int) -> np.ndarray:
    """``np.histogram_bin_edges(combined, bins='sturges')`` from the combined sample's min, max and size."""
    width = _unsigned_subtract(last, first) / (np.log2(size) + 1.0)  # the data's range, before any widening
    if first == last:
        first, last = first - 0.5, last + 0.5
    if width:
        if np.issubdtype(np.result_type(first, last), np.integer) and width < 1:
            width = 1
        n_bins = int(np.ceil(_unsigned_subtract(last, first) / width))
    else:
        n_bins = 1
    bin_type = np.result_type(first, last)
    if np.issubdtype(bin_type, np.integer):
        bin_type = np.result_type(bin_type, float)
    return np.linspace(first, last, n_bins + 1, endpoint=True, dtype=bin_type)


def _sorted_histogram(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, edges)[0]`` for sorted values: bins half-open, the last one closed."""
    cumulative = np.concatenate(
        (sorted_values.searchsorted(edges[:-1], "left"), sorted_values.searchsorted(edges[-1:], "right"))
    )
    return np.diff(cumulative)


def _binned_percents(reference: ColumnProfile, current: Values) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's ``get_binned_data(..., n=30, feel_zeroes=False)``."""
    if reference.kind == NUMERICAL and reference.n_unique > BINNED_ABOVE_UNIQUE:
        assert reference.sorted_values is not None
        current_values = np.asarray(current)
        combined = np.result_type(reference.sorted_values.dtype, current_values.dtype)
        first = combined.type(min(reference.sorted_values[0], current_values.min()))
        last = combined.type(max(reference.sorted_values[-1], current_values.max()))
        edges = sturges_edges(first, last, reference.rows + current_values.size)
        ref_histogram = _sorted_histogram(reference.sorted_values, edges)
        return ref_histogram / reference.rows, np.histogram(current_values, edges)[0] / current_values.size
    keys = _keys(reference, current)
    ref_counts, cur_counts = reference.value_counts, _value_counts(current)
    ref_percents = np.array([ref_counts.get(key, 0) / reference.rows for key in keys])
    cur_percents = np.array([cur_counts.get(key, 0) / current.shape[0] for key in keys])
    return ref_percents, cur_percents


def _jensenshannon(reference: ColumnProfile, current: Values) -> float:
    from scipy.spatial import distance

    ref_percents, cur_percents = _binned_percents(reference, current)
    return float(distance.jensenshannon(ref_percents, cur_percents, None))


def _p_value_below(score: float, threshold: float) -> bool:
    return bool(score < threshold)


STAT_TESTS: dict[str, StatTestSpec] = {
    spec.name: spec
    for spec in (
        StatTestSpec("ks", "K-S p_value", frozenset({NUMERICAL}), 0.05, _ks, lambda s, t: bool(s <= t)),
        StatTestSpec("chisquare", "chi-square p_value", frozenset({CATEGORICAL}), 0.05, _chisquare, _p_value_below),
        StatTestSpec("z", "Z-test p_value", frozenset({CATEGORICAL}), 0.05, _z, _p_value_below),
        StatTestSpec(
            "wasserstein",
            "Wasserstein distance (normed)",
            frozenset({NUMERICAL}),
            0.1,
            _wasserstein,
            lambda s, t: bool(s >= t),
        ),
        StatTestSpec(
            "jensenshannon",
            "Jensen-Shannon distance",
            frozenset({NUMERICAL, CATEGORICAL}),
            0.1,
            _jensenshannon,
            lambda s, t: bool(s >= t),
        ),
    )
}


def default_method(reference: ColumnProfile, current: Values) -> str:
    """The test Evidently's ``_get_default_stattest`` picks for this column type, reference size and cardinality."""
    if reference.rows <= SMALL_REFERENCE_ROWS:
        if reference.kind == NUMERICAL:
            n_values = union_unique_count(reference, current, at_most=FEW_VALUES)
            if n_values > FEW_VALUES:
                return "ks"
            return "chisquare" if n_values > BINARY_VALUES else "z"
        n_values = union_unique_count(reference, current)
        return "chisquare" if n_values > BINARY_VALUES else "z"
    if reference.kind == NUMERICAL:
        n_values = union_unique_count(reference, current, at_most=FEW_VALUES)
        return "jensenshannon" if n_values <= FEW_VALUES else "wasserstein"
    return "jensenshannon"


if set(STAT_TESTS) != set(STAT_TEST_NAMES):  # the CLI lists STAT_TEST_NAMES without importing scipy
    raise ImportError(f"_method_names.STAT_TEST_NAMES {STAT_TEST_NAMES} != the registry {sorted(STAT_TESTS)}")
