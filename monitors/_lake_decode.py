"""Decoding the lake's JSON columns (``_inputs``, ``_prediction``) into what :func:`monitors.lake.read_window` returns.

The reference behaviour is Python's: ``DataFrame.from_records(json.loads(...))`` for the features and
``pd.to_numeric`` of ``json.loads`` for predictions. Big windows whose values pyarrow renders identically take
pyarrow's C++ JSON reader and casts instead; everything else the Python path (``tests/sidecar/test_lake.py``).
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["TEXT_DTYPE", "as_text", "decode_inputs", "decode_predictions", "decode_predictions_arrow", "flat_numbers"]

# The dtype of a window's text metadata (request ids, versions, errors): strings backed by arrow buffers, so a day's
# 8.6M request ids cost no Python object each (pandas' object strings took 2.4 s of that read, docs/benchmarks.md).
TEXT_DTYPE = pd.StringDtype("pyarrow")

_ARROW_DECODE_FROM = 2000  # rows from which JSON is decoded by pyarrow (C++, threads) when the values allow it
_INT64_LIMIT = 2.0**63  # a float column reaching it may hold an integer json.loads keeps exact (arrow: rounded)
_FLAT_TYPES = (pa.types.is_int64, pa.types.is_float64)  # arrow types whose pandas columns equal json.loads' own


def as_text(frame: pd.DataFrame, columns: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """``frame`` with those of ``columns`` it has as :data:`TEXT_DTYPE` (None becomes ``<NA>``)."""
    return frame.astype({name: TEXT_DTYPE for name in columns if name in frame.columns})


def decode_inputs(texts: pd.Series) -> pd.DataFrame:
    """The ``_inputs`` JSON objects as one column per feature, as ``DataFrame.from_records(json.loads…)`` builds it.

    Big windows of flat numeric records (the usual payload) are parsed by pyarrow's JSON reader instead (about twice
    as fast); anything it could render differently (strings, booleans, nested values, integers beyond int64, a type
    changing across records, missing numbers in an integer column) takes the Python path: the frame is the same.
    """
    fast = _inputs_with_arrow(texts) if len(texts) >= _ARROW_DECODE_FROM else None
    if fast is not None:
        return fast
    decoded = [json.loads(text) for text in texts]
    return pd.DataFrame.from_records(decoded, index=texts.index) if decoded else pd.DataFrame(index=texts.index)


def _inputs_with_arrow(texts: pd.Series) -> pd.DataFrame | None:
    import pyarrow.json as pa_json

    body = "\n".join(texts).encode()
    if body.count(b"\n") != len(texts) - 1:  # a record on two lines
        return None
    try:
        table = pa_json.read_json(pa.BufferReader(body))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(texts) or not flat_numbers(table):
        return None
    frame = table.to_pandas()
    frame.index = texts.index
    return frame


def flat_numbers(table: pa.Table, *, check_range: bool = True, text: bool = False) -> bool:
    """Whether pandas renders every column of ``table`` (from arrow's JSON reader) as ``from_records`` of
    ``json.loads`` would: int64 without gaps or float64 short of int64's range (``check_range=False``: a caller that
    knows every value passed that check already, skipping a pass over each column); with ``text``, also strings
    (an object column of ``str``, ``None`` for gaps, in both; the typed columns, whose records hold no escape)."""
    for column in table.columns:
        if text and _is_text(column.type):
            continue
        if not any(check(column.type) for check in _FLAT_TYPES):
            return False
        if pa.types.is_int64(column.type) and column.null_count:
            return False  # json.loads + from_records gives float64 NaN here too, but keep the proven path for it
        if check_range and pa.types.is_float64(column.type) and _reaches_int64_limit(column):
            return False
    return True


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):  # the typed columns' text features (``_lake_typed``): categories
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _reaches_int64_limit(column: pa.ChunkedArray) -> bool:
    bounds = pc.min_max(column).as_py()  # one pass; the exact rule below only when a bound is large or not finite
    low, high = bounds["min"], bounds["max"]
    if low is None or (abs(low) < _INT64_LIMIT and abs(high) < _INT64_LIMIT):
        return False
    largest = pc.max(pc.abs(pc.if_else(pc.is_finite(column), column, 0.0))).as_py()
    return largest is not None and largest >= _INT64_LIMIT


def _predictions_with_arrow(texts: pd.Series) -> pd.Series | None:
    """JSON numbers (the usual prediction) parsed by arrow's casts: int64 when every one is an integer, as
    ``pd.to_numeric`` of ``json.loads`` gives, else float64; anything else (labels, lists, all null): None."""
    strings = pa.array(texts.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    return _predictions_from_strings(strings, texts.index)


def _predictions_from_strings(strings: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series | None:
    if strings.null_count == len(strings):
        return None
    for target in (pa.int64(), pa.float64()):
        try:
            parsed = pc.cast(strings, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if pa.types.is_float64(target) and _reaches_int64_limit(
            parsed if isinstance(parsed, pa.ChunkedArray) else pa.chunked_array([parsed])
        ):
            return None
        return pd.Series(parsed.to_numpy(zero_copy_only=False), index=index)
    return None


def decode_predictions(texts: pd.Series) -> pd.Series:
    fast = _predictions_with_arrow(texts) if len(texts) >= _ARROW_DECODE_FROM else None
    if fast is not None:
        return fast
    values = [None if text is None else json.loads(text) for text in texts]
    series = pd.Series(values, index=texts.index, dtype=object)
    numeric = pd.to_numeric(series, errors="coerce")
    return numeric if numeric.notna().sum() == series.notna().sum() else series


def decode_predictions_arrow(strings: pa.ChunkedArray) -> pd.Series:
    """:func:`decode_predictions` of an arrow column (the typed reader's), without building a Python string per row
    when arrow's casts apply; a ``RangeIndex``."""
    index = pd.RangeIndex(len(strings))
    fast = _predictions_from_strings(strings, index) if len(strings) >= _ARROW_DECODE_FROM else None
    if fast is not None:
        return fast
    return decode_predictions(pd.Series(strings.to_pandas().to_numpy(dtype=object), index=index))
