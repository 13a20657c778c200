"""Numeric parquet files straight into numpy, without pandas: the drift CLI's fast path.

``driftloop drift`` on two parquet files of numbers spent ~0.4-0.5 s of its ~1.1-1.9 s importing pandas,
only to hand each column to numpy again. When every column of a single parquet file is float64, an integer
or a null-free boolean, ``read_parquet_arrays`` reads it with pyarrow and views each column's data buffer
as a numpy array, giving exactly the values ``pd.read_parquet`` would (integers with nulls become float64
with NaN, as pandas makes them). Anything else — CSV, a directory, float32, strings, dates, a pandas index
stored as a column — returns None and the caller keeps the pandas reader, so nothing changes for it.

pyarrow's own ``to_numpy`` is not used: it goes through its pandas conversion layer, which imports pandas.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ArrayFrame", "read_parquet_arrays"]

# arrow type name -> numpy dtype of its data buffer: the types whose values numpy holds exactly as pandas does
_NUMERIC_TYPES = {
    "double": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
}


# numpy_type in pandas' parquet metadata that pandas reads back as the plain numpy columns above; its nullable
# dtypes (Int64, Float64, boolean) come back as extension columns, which drift treats by their own rules
_PANDAS_NUMPY_TYPES = {*(np.dtype(t).name for t in _NUMERIC_TYPES.values()), "bool"}


class ArrayFrame:
    """Named numpy columns of one length: the part of a DataFrame that profiling and drift read.

    ``columns``, ``len()`` and ``frame[name]`` are all ``build_profile`` and ``compute_drift`` use.
    """

    def __init__(self, columns: dict[str, np.ndarray], rows: int) -> None:
        self._data = columns
        self._rows = rows

    @property
    def columns(self) -> list[str]:
        return list(self._data)

    def __len__(self) -> int:
        return self._rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)


def read_parquet_arrays(source: Path) -> ArrayFrame | None:
    """``source``'s columns as numpy arrays, or None when pandas' reader must decide what the values are."""
    if not source.is_file():
        return None
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    schema = parquet.schema_arrow
    if not _plain_columns(schema):
        return None
    table = parquet.read(use_threads=True)
    columns: dict[str, np.ndarray] = {}
    for name, column in zip(schema.names, table.columns, strict=True):
        array = _to_numpy(column)
        if array is None:
            return None
        columns[name] = array
    return ArrayFrame(columns, table.num_rows)


def _plain_columns(schema: Any) -> bool:
    """Every field numeric or boolean with a unique string name, and pandas' metadata (if any) adds no index."""
    names = schema.names
    if len(set(names)) != len(names) or any(str(field.type) not in (*_NUMERIC_TYPES, "bool") for field in schema):
        return False
    metadata = schema.metadata or {}
    if b"pandas" not in metadata:
        return True
    try:
        pandas_meta = json.loads(metadata[b"pandas"])
    except ValueError:
        return False
    # a RangeIndex is stored as a dict; a column name here is an index pandas would not return as a column
    if any(not isinstance(index, dict) for index in pandas_meta.get("index_columns", [])):
        return False
    # pandas restores non-string column labels (ints, tuples) from here, and dtypes: leave anything unusual to it
    levels = pandas_meta.get("column_indexes", [])
    if len(levels) > 1 or any(level.get("pandas_type") not in ("unicode", "string", "empty") for level in levels):
        return False
    for entry in pandas_meta.get("columns", []):
        if entry.get("name") != entry.get("field_name") or entry.get("numpy_type") not in _PANDAS_NUMPY_TYPES:
            return False
    return True


def _to_numpy(column: Any) -> np.ndarray | None:
    """One column's values: the data buffers viewed as numpy (a copy only to join chunks or fill nulls)."""
    type_name = str(column.type)
    parts = [_chunk_values(chunk, type_name) for chunk in column.chunks]
    if any(part is None for part in parts):
        return None
    arrays = [part for part in parts if part is not None]
    if not arrays:
        dtype = np.bool_ if type_name == "bool" else _NUMERIC_TYPES[type_name]
        return np.empty(0, dtype=dtype)
    if column.null_count and type_name != "double":  # integers with nulls: float64 with NaN, as pandas reads them
        arrays = [part.astype(np.float64) if part.dtype != np.float64 else part for part in arrays]
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _chunk_values(chunk: Any, type_name: str) -> np.ndarray | None:
    validity, data = chunk.buffers()[:2]
    length, offset = len(chunk), chunk.offset
    if type_name == "bool":
        if chunk.null_count:  # pandas gives an object column of True/False/None: its own rules apply
            return None
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        return bits[offset : offset + length].astype(np.bool_)
    dtype = np.dtype(_NUMERIC_TYPES[type_name])
    values = np.frombuffer(data, dtype=dtype, count=offset + length)[offset:] if length else np.empty(0, dtype)
    if not chunk.null_count:
        return values
    valid = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")[offset : offset + length]
    filled = values.astype(np.float64)
    filled[valid == 0] = np.nan
    return filled
