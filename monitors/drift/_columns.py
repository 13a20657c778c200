"""Column kinds and value cleaning, exactly as Evidently 0.7 decides and cleans them.

Evidently infers a column's type from its dtype and cardinality (``evidently.core.datasets.infer_column_type``)
and drops NaN and ±inf before any stat test (``get_one_column_drift``). Both rules live here so the profile
builder and the per-evaluation code cannot disagree.

Every function takes a pandas Series or, on the drift CLI's pandas-free path (``_arrays``), a plain numpy
array of numbers or booleans; pandas is imported only when a Series is what came.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CATEGORICAL",
    "INTEGER_CARDINALITY_LIMIT",
    "NUMERICAL",
    "TEXT",
    "UNSUPPORTED",
    "as_plain_series",
    "clean_values",
    "counts_in_order",
    "infer_kind",
    "normalise_kind",
    "python_scalar",
    "unique_in_order",
]

NUMERICAL = "numerical"
CATEGORICAL = "categorical"
TEXT = "text"
UNSUPPORTED = "unsupported"

# Evidently: an integer column with at most this many distinct values is categorical.
INTEGER_CARDINALITY_LIMIT = 10

_KIND_ALIASES = {"numerical": NUMERICAL, "num": NUMERICAL, "categorical": CATEGORICAL, "cat": CATEGORICAL}


def normalise_kind(kind: str) -> str:
    """Accept Evidently's short names ('num', 'cat') as well as ours."""
    try:
        return _KIND_ALIASES[kind.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown column type {kind!r}: use 'numerical' or 'categorical'") from None


def as_plain_series(series: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
    """Nullable extension dtypes (Int64, Float64, boolean, string) become plain numpy/object columns.

    Parquet readers produce them depending on options; Evidently does not recognise them, and treating
    ``Int64`` differently from ``int64`` would make drift depend on how a file was read.
    """
    if isinstance(series, np.ndarray):
        return series
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return series.astype(object)
    if not isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return series
    if pd.api.types.is_bool_dtype(dtype):
        return series.astype(object) if series.isna().any() else series.astype(bool)
    if pd.api.types.is_integer_dtype(dtype):
        return series.astype("float64") if series.isna().any() else series.astype(dtype.numpy_dtype)
    if pd.api.types.is_float_dtype(dtype):
        return series.astype(dtype.numpy_dtype)
    return series.astype(object).where(series.notna(), None)


def infer_kind(series: pd.Series | np.ndarray) -> str:
    """Evidently's ``infer_column_type`` restricted to the kinds drift is computed for.

    One deliberate difference: unsigned integers are treated like signed ones (Evidently leaves them
    'unknown' and silently skips them, which would hide drift on a uint feature).
    """
    name = series.dtype.name
    if name.startswith("float"):
        return NUMERICAL
    if name.startswith("int") or name.startswith("uint"):
        return CATEGORICAL if _distinct_count(series) <= INTEGER_CARDINALITY_LIMIT else NUMERICAL
    if isinstance(series, np.ndarray):  # numpy columns (the CLI's pandas-free path) hold numbers or booleans
        return CATEGORICAL if name == "bool" else UNSUPPORTED
    if name in ("string", "str"):
        return TEXT if series.nunique() > series.count() * 0.5 else CATEGORICAL
    if name == "object":
        values = series.dropna()
        if values.empty:
            return UNSUPPORTED
        if isinstance(values.iloc[0], str) and isinstance(values.iloc[-1], str):
            return TEXT if series.nunique() > series.count() * 0.5 else CATEGORICAL
        return UNSUPPORTED
    if name in ("bool", "category"):
        return CATEGORICAL
    return UNSUPPORTED


def _distinct_count(values: pd.Series | np.ndarray) -> int:
    """``Series.nunique()``; an integer array has no null to leave out."""
    return len(np.unique(values)) if isinstance(values, np.ndarray) else int(values.nunique())


def unique_in_order(values: pd.Series | np.ndarray) -> np.ndarray:
    """``pd.unique(values)``: distinct values in order of first appearance (the order pandas' counts come in)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return counts_in_order(values)[0]
    import pandas as pd

    return np.asarray(pd.unique(values))


def counts_in_order(values: pd.Series | np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Distinct values in order of first appearance (``pd.unique``) and how often each occurs."""
    if isinstance(values, np.ndarray):  # the CLI's numbers or booleans: sorted by numpy, put back in first-seen order
        distinct, first, counts = np.unique(values, return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")
        return distinct[order], tuple(int(count) for count in counts[order])
    counts_by_value = values.value_counts(sort=False).to_dict()
    first_seen = unique_in_order(values)
    return first_seen, tuple(int(counts_by_value[value]) for value in first_seen)


def clean_values(series: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
    """Drop NaN/None and ±inf, like Evidently does before every stat test."""
    series = as_plain_series(series)
    if series.dtype.kind == "f":
        finite = np.isfinite(np.asarray(series))
        return series if finite.all() else series[finite]
    if series.dtype.kind in "iub" or isinstance(series, np.ndarray):
        return series
    return series.replace([-np.inf, np.inf], np.nan).dropna()


def python_scalar(value: Any) -> Any:
    """numpy scalars become plain Python values, so categories survive a JSON round trip unchanged."""
    return value.item() if isinstance(value, np.generic) else value
