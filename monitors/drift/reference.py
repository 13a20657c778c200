"""The precomputed reference side of every drift test, built once per model version.

Evidently recomputes everything about the reference on each call (sorting, counting, its standard
deviation). All of that depends only on the reference, so ``build_profile`` does it once, ``save`` writes
it next to the model (the ``register`` step logs it as ``reference/profile/``) and the monitor ``load``s
it per champion version. Each evaluation then only touches the current window.

On-disk format (version 1), a directory::

    profile.json          format, version, rows, columns[], skipped{}, metadata{}
    values/<i>.npy        numerical column i: its finite values, sorted, in the reference dtype

``profile.json`` is written last, so a directory without it is an interrupted save, never a valid profile.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from driftloop.errors import DataContractError, NotFoundError
from monitors.drift._columns import (
    CATEGORICAL,
    NUMERICAL,
    clean_values,
    counts_in_order,
    infer_kind,
    normalise_kind,
    python_scalar,
)
from monitors.drift._wasserstein import prefix_over_n

if TYPE_CHECKING:  # pandas is imported where a Series is built or given, not for the CLI's numpy-only path
    import pandas as pd

    from monitors.drift._arrays import ArrayFrame

__all__ = ["PROFILE_FILE", "PROFILE_FORMAT", "PROFILE_VERSION", "ColumnProfile", "ReferenceProfile", "build_profile"]

PROFILE_FORMAT = "driftloop.reference-profile"
PROFILE_VERSION = 1
PROFILE_FILE = "profile.json"
_VALUES_DIR = "values"
_THREADS_FROM_ROWS = 100_000  # references at least this long are profiled a column per thread


@dataclass(frozen=True, eq=False)
class ColumnProfile:
    """Everything the stat tests need from one reference column."""

    name: str
    kind: str  # "numerical" | "categorical"
    dtype: str  # the reference column's dtype, e.g. "float64", "int64", "bool", "object"
    rows: int  # finite, non-null values the tests use
    nulls: int  # NaN / None / ±inf values dropped, as Evidently drops them
    n_unique: int
    std: float | None = None  # numerical: population std (Evidently normalises Wasserstein by max(std, 0.001))
    sorted_values: np.ndarray | None = field(default=None, repr=False)  # numerical
    categories: tuple[Any, ...] = ()  # categorical: distinct values in order of first appearance
    counts: tuple[int, ...] = ()  # categorical: occurrences of each category

    @cached_property
    def value_counts(self) -> dict[Any, int]:
        """Distinct value -> count (numerical columns derive it from the sorted values, once)."""
        if self.kind == CATEGORICAL:
            return dict(zip(self.categories, self.counts, strict=True))
        assert self.sorted_values is not None
        values, counts = np.unique(self.sorted_values, return_counts=True)
        return {value: int(count) for value, count in zip(values, counts, strict=True)}

    @cached_property
    def values_as_float(self) -> np.ndarray:
        """Sorted values as float64, the dtype scipy's distances compute in."""
        assert self.sorted_values is not None
        return np.asarray(self.sorted_values, dtype=np.float64)

    @cached_property
    def quantile_prefix(self) -> tuple[np.ndarray, float]:
        """Prefix sums for the Wasserstein distance (see ``_wasserstein``), once per loaded profile."""
        values = self.values_as_float
        center = float(values[values.size // 2])
        return prefix_over_n(values, center), center

    def to_series(self) -> pd.Series:
        """The reference values as a column (sorted or grouped by category), for Evidently's HTML report."""
        import pandas as pd

        if self.kind == NUMERICAL:
            assert self.sorted_values is not None
            return pd.Series(self.sorted_values, name=self.name)
        repeated = [value for value, count in zip(self.categories, self.counts, strict=True) for _ in range(count)]
        return pd.Series(repeated, name=self.name, dtype=self.dtype if self.dtype != "object" else object)


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """The reference dataset reduced to what drift needs; see the module docstring for the file layout."""

    columns: dict[str, ColumnProfile]
    rows: int
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it has no drift test
    metadata: dict[str, Any] = field(default_factory=dict)

    def schema(self) -> dict[str, str]:
        """Feature name -> reference dtype, for payload schema checks."""
        return {name: column.dtype for name, column in self.columns.items()}

    def reference_frame(self) -> pd.DataFrame:
        """A stand-in for the reference data (each column's values, padded with nulls), for HTML reports.

        Row order and cross-column pairing are not kept (the profile does not store them); every
        per-column distribution, and so every drift test, is exactly that of the original data.
        """
        import pandas as pd

        data = {}
        for name, column in self.columns.items():
            values = column.to_series().reset_index(drop=True)
            if len(values) < self.rows:
                values = values.reindex(range(self.rows))
            data[name] = values
        return pd.DataFrame(data)

    def save(self, directory: str | Path) -> Path:
        """Write the profile under ``directory`` (created if needed); returns the directory."""
        target = Path(directory)
        (target / _VALUES_DIR).mkdir(parents=True, exist_ok=True)
        entries = []
        for index, column in enumerate(self.columns.values()):
            entry: dict[str, Any] = {
                "name": column.name,
                "kind": column.kind,
                "dtype": column.dtype,
                "rows": column.rows,
                "nulls": column.nulls,
                "n_unique": column.n_unique,
            }
            if column.kind == NUMERICAL:
                assert column.sorted_values is not None
                relative = f"{_VALUES_DIR}/{index}.npy"
                np.save(target / relative, column.sorted_values, allow_pickle=False)
                entry.update(std=column.std, values_file=relative)
            else:
                entry.update(categories=list(column.categories), counts=list(column.counts))
            entries.append(entry)
        document = {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "rows": self.rows,
            "columns": entries,
            "skipped": self.skipped,
            "metadata": self.metadata,
        }
        try:
            text = json.dumps(document, indent=1, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise DataContractError(
                f"the reference profile cannot be saved as JSON ({exc})",
                hint="categorical columns must hold strings, integers, booleans or floats; convert the others",
            ) from exc
        _write_atomically(target / PROFILE_FILE, text)
        return target

    @classmethod
    def load(cls, directory: str | Path) -> ReferenceProfile:
        """Read a profile written by ``save`` (any older supported version)."""
        source = Path(directory)
        path = source / PROFILE_FILE
        if not path.is_file():
            raise NotFoundError(
                f"no reference profile at {source} ({PROFILE_FILE} is missing)",
                hint="point at the directory `ReferenceProfile.save` wrote (the model's reference/profile/ artifact)",
            )
        try:
            document = json.loads(path.read_text())
        except ValueError as exc:
            raise DataContractError(f"{path} is not valid JSON ({exc})", hint="rebuild the profile") from exc
        if document.get("format") != PROFILE_FORMAT or document.get("version") != PROFILE_VERSION:
            raise DataContractError(
                f"{path} is not a version-{PROFILE_VERSION} driftloop reference profile "
                f"(format={document.get('format')!r}, version={document.get('version')!r})",
                hint="rebuild it with this driftloop (`monitors.drift.build_profile`) or upgrade driftloop",
            )
        columns = {}
        for entry in document["columns"]:
            sorted_values = None
            if entry["kind"] == NUMERICAL:
                sorted_values = np.load(source / entry["values_file"], allow_pickle=False)
            columns[entry["name"]] = ColumnProfile(
                name=entry["name"],
                kind=entry["kind"],
                dtype=entry["dtype"],
                rows=entry["rows"],
                nulls=entry["nulls"],
                n_unique=entry["n_unique"],
                std=entry.get("std"),
                sorted_values=sorted_values,
                categories=tuple(entry.get("categories", ())),
                counts=tuple(entry.get("counts", ())),
            )
        return cls(columns, document["rows"], dict(document.get("skipped", {})), dict(document.get("metadata", {})))


def _why_untested(series: pd.Series | np.ndarray, kind: str) -> str:
    """Why a column gets no drift test, in words that say what to do (a list column is the usual surprise)."""
    if isinstance(series, np.ndarray):  # numbers or booleans (the CLI's numpy columns): never nested
        return f"{kind} column (dtype {series.dtype}): no drift test"
    values = series.dropna()
    if not values.empty and isinstance(values.iloc[0], (list, tuple, np.ndarray, dict)):
        shape = "dict" if isinstance(values.iloc[0], dict) else "list"
        return f"{shape} values (dtype {series.dtype}): no drift test for nested values; flatten it into columns"
    return f"{kind} column (dtype {series.dtype}): no drift test"


def build_profile(
    df: pd.DataFrame | ArrayFrame,
    column_types: Mapping[str, str] | None = None,
    *,
    columns: list[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ReferenceProfile:
    """Profile the reference ``df``: sorted values of numerical columns, category counts of categorical ones.

    ``df`` is a DataFrame, or the drift CLI's numpy columns (``_arrays.ArrayFrame``): the same profile either way.

    ``column_types`` (name -> 'numerical'/'categorical', or Evidently's 'num'/'cat') overrides Evidently's
    inference for the columns it names — pass the feature schema's kinds so a window's cardinality cannot
    change a feature's test. Columns whose name starts with ``_`` are payload metadata and are left out.
    """
    declared = {name: normalise_kind(kind) for name, kind in (column_types or {}).items()}
    names = columns if columns is not None else [str(name) for name in df.columns if not str(name).startswith("_")]
    missing = [name for name in [*names, *declared] if name not in df.columns]
    if missing:
        raise DataContractError(
            f"the reference data has no column(s) {sorted(set(missing))}",
            columns=sorted(set(missing)),
            hint="build the profile from the same frame the model was trained on, or fix column_types",
        )
    skipped: dict[str, str] = {}

    def profile_one(name: str) -> ColumnProfile | None:
        kind = declared.get(name) or infer_kind(df[name])
        if kind not in (NUMERICAL, CATEGORICAL):
            skipped[name] = _why_untested(df[name], kind)
            return None
        values = clean_values(df[name])
        if len(values) == 0:
            skipped[name] = "no finite, non-null value in the reference"
            return None
        return _profile_column(name, kind, values, nulls=len(df) - len(values))

    # columns are independent and numpy releases the GIL while sorting: a thread per core for big references
    workers = min(len(names), os.cpu_count() or 1, 4) if len(df) >= _THREADS_FROM_ROWS else 1
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            built = dict(zip(names, pool.map(profile_one, names), strict=True))
    else:
        built = {name: profile_one(name) for name in names}
    profiles = {name: column for name, column in built.items() if column is not None}
    skipped = {name: skipped[name] for name in names if name in skipped}  # in column order, whatever thread was first
    info = {"created_at": datetime.now(UTC).isoformat(timespec="seconds"), "rules": "evidently 0.7 DataDriftPreset"}
    info.update(metadata or {})
    return ReferenceProfile(profiles, len(df), skipped, info)


def save_reference(
    frame: pd.DataFrame | ArrayFrame,
    directory: str | Path,
    column_types: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ReferenceProfile:
    """``build_profile`` then ``save``: what the ``register`` step calls for ``reference/profile/``."""
    profile = build_profile(frame, column_types, metadata=metadata)
    profile.save(directory)
    return profile


def _profile_column(name: str, kind: str, values: pd.Series | np.ndarray, nulls: int) -> ColumnProfile:
    # cleaned values always have a numpy dtype (``as_plain_series``), so pandas' dtype tests are these kinds
    if kind == NUMERICAL:
        dtype = str(values.dtype)
        if values.dtype.kind == "b":  # numeric to pandas (and Evidently): tested as 0/1
            values = values.astype(np.int64)
        if values.dtype.kind not in "biufc":  # pd.api.types.is_numeric_dtype
            raise DataContractError(
                f"column {name!r} is declared numerical but holds {values.dtype} values",
                columns=[name],
                hint="declare it 'categorical' or convert it to numbers before building the profile",
            )
        array = np.asarray(values)
        std = _population_std(values, array)  # exactly as Evidently's np.std(series), on the cleaned column
        if not math.isfinite(std):
            raise DataContractError(f"column {name!r} has no finite spread", columns=[name], hint="check its values")
        sorted_values = np.sort(array)
        # distinct values, from the sorted array (what Series.nunique counts: the values are finite and non-null)
        n_unique = 1 + int(np.count_nonzero(sorted_values[1:] != sorted_values[:-1])) if array.size else 0
        return ColumnProfile(name, kind, dtype, len(array), nulls, n_unique, std, sorted_values)
    first_seen, frequencies = counts_in_order(values)
    categories = tuple(python_scalar(value) for value in first_seen)
    dtype = str(values.dtype)
    return ColumnProfile(name, kind, dtype, len(values), nulls, len(categories), None, None, categories, frequencies)


def _population_std(values: pd.Series | np.ndarray, array: np.ndarray) -> float:
    """``np.std(series)`` (pandas' nanstd: the values as float64, their sum, the squared gaps' sum) computed on the
    numpy array when that is the same arithmetic — float64 and integer columns, whose pandas path converts to float64
    and has no NaN left — skipping pandas' copies and masks; other dtypes (float32…) keep pandas' own path."""
    if array.dtype == np.float64 or array.dtype.kind in "iu":
        return float(np.std(array.astype(np.float64, copy=False)))
    return float(np.std(values))


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file in the same directory, then rename: readers never see half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
