"""Typed features: an hour's ``_inputs`` JSON decoded once, at compaction, and stored as typed parquet columns.

Why: decoding the JSON costs ~11 µs a row, so reading every row of a day written at 100 req/s (8.6M rows) took 92 s.
Compaction now also stores the features as a ``_features`` struct column (one typed parquet column per feature),
and the reader assembles the window in arrow (filter, sort, tail) and converts only what it returns.

Exactness. The frame must be the one the JSON path builds (``DataFrame.from_records`` of ``json.loads``, see
:mod:`monitors._lake_decode`), column order included. So a struct is written only when every record of the hour has
the same keys in the same order and every value is a plain JSON number that arrow and pandas render alike; the
reader takes the typed path only when every hour it reads has such a struct with the same keys in the same order
and the values still pass those rules after the window is cut. Anything else (a schema change inside the window,
strings, nested values, ``NaN``) takes the JSON path, and compacted files keep ``_inputs`` for it: nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from monitors._lake_decode import decode_predictions_arrow, flat_numbers
from monitors._lake_partitions import COMPACTED_PREFIX, ROW_ORDER

__all__ = ["FEATURES_COLUMN", "Untyped", "compacted_compression", "typed_features", "typed_hour_reader", "typed_window"]

FEATURES_COLUMN = "_features"
# A record's text with its numbers removed: equal for two records exactly when they have the same keys in the same
# order (text with a backslash, where a key could hide '":1', is never typed).
_NUMBER_AFTER_KEY = r'"\s*:\s*-?[0-9][0-9.eE+-]*'
_TEXT_COLUMNS = ("_request_id", "_model_version", "_inputs", "_prediction", "_error", "_raw")
_SORT_GOOD = [(name, "ascending") for name in ROW_ORDER]
_SORT_MALFORMED = _SORT_GOOD[:2]  # one row per malformed request


class Untyped(Exception):
    """The window cannot be read typed with the same result as the JSON path: the caller reads it as JSON."""


def typed_features(inputs: pa.ChunkedArray | pa.Array) -> pa.Array | None:
    """``inputs`` (JSON objects; null for malformed requests) as a struct array aligned with it, or None when some
    record would decode differently from ``json.loads`` + ``from_records`` or the records' keys differ."""
    texts = inputs.combine_chunks() if isinstance(inputs, pa.ChunkedArray) else inputs
    valid = pc.is_valid(texts)
    present = texts.filter(valid).cast(pa.large_string())
    if len(present) == 0:
        return None
    if pc.any(pc.match_substring(present, "\\")).as_py() or pc.any(pc.match_substring(present, "\n")).as_py():
        return None
    if pc.count_distinct(pc.replace_substring_regex(present, _NUMBER_AFTER_KEY, '":')).as_py() != 1:
        return None
    body = pc.binary_join(
        pa.LargeListArray.from_arrays(pa.array([0, len(present)], pa.int64()), present),
        pa.scalar("\n", pa.large_string()),
    )
    try:
        table = pa_json.read_json(pa.BufferReader(body[0].as_buffer()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(present) or table.num_columns == 0 or not flat_numbers(table):
        return None
    struct = pa.StructArray.from_arrays([c.combine_chunks() for c in table.columns], table.column_names)
    if len(present) == len(texts):
        return struct
    mask = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)
    positions = np.where(mask, np.cumsum(mask) - 1, 0)
    return struct.take(pa.array(positions, mask=~mask))


def compacted_compression(schema: pa.Schema) -> dict[str, str]:
    """Per-column codecs of a compacted file: zstd for text (small on disk, read rarely or once), lz4 for the typed
    columns the reader scans (decoded ~2x faster than zstd here, docs/benchmarks.md)."""
    codecs: dict[str, str] = {}
    for field in schema:
        if pa.types.is_struct(field.type):
            codecs.update({f"{field.name}.{child.name}": "lz4" for child in field.type})
        else:
            codecs[field.name] = "zstd" if field.name in _TEXT_COLUMNS else "lz4"
    return codecs


def typed_hour_reader(
    fs: object, stored_schema: pa.Schema, read_stored: Callable[[list[str]], pa.Table]
) -> Callable[[list[str]], pa.Table]:
    """A reader of some of an hour's files as one table of the stored columns, ``_inputs`` replaced by the typed
    ``_features``: compacted files that carry it are read without ``_inputs``, parts are read by ``read_stored``
    (the JSON path's reader) and decoded here. Raises :class:`Untyped` when a file cannot be typed."""
    typed_columns = [name for name in stored_schema.names if name != "_inputs"] + [FEATURES_COLUMN]

    def read(paths: list[str]) -> pa.Table:
        tables, parts = [], []
        for path in paths:
            if path.rsplit("/", 1)[-1].startswith(COMPACTED_PREFIX):
                if FEATURES_COLUMN not in pq.read_schema(path, filesystem=fs).names:
                    raise Untyped(path)
                tables.append(pq.read_table(path, columns=typed_columns, filesystem=fs))
            else:
                parts.append(path)
        if parts:
            stored = read_stored(parts)
            features = typed_features(stored["_inputs"])
            if features is None:
                raise Untyped(parts[0])
            tables.append(stored.drop_columns(["_inputs"]).append_column(FEATURES_COLUMN, features))
        return _concat(tables)

    return read


def _concat(tables: list[pa.Table]) -> pa.Table:
    """Tables whose feature structs have the same keys in the same order (types may widen int64 -> float64, as
    ``from_records`` does); different keys: :class:`Untyped`."""
    keys = {tuple(child.name for child in t.schema.field(FEATURES_COLUMN).type) for t in tables}
    if len(keys) > 1:
        raise Untyped("the feature keys change inside the window")
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise Untyped(str(exc)) from exc


def _sorted(table: pa.Table) -> bool:
    """Whether ``table`` is already in (_ts, _request_id, _row) order: one vectorised pass over the times, the other
    keys compared only where two times are equal."""
    if table.num_rows < 2:
        return True
    if any(table[name].null_count for name, _ in _SORT_GOOD):
        return False
    ts = table["_ts"]
    earlier, later = ts.slice(0, len(ts) - 1), ts.slice(1)
    if pc.any(pc.greater(earlier, later)).as_py():
        return False
    ties = pc.indices_nonzero(pc.equal(earlier, later).combine_chunks())
    if len(ties) == 0:
        return True
    after = pc.add(ties, 1)
    ids_before, ids_after = table["_request_id"].take(ties), table["_request_id"].take(after)
    rows_before, rows_after = table["_row"].take(ties), table["_row"].take(after)
    same_id = pc.equal(ids_before, ids_after)
    in_order = pc.or_(pc.less(ids_before, ids_after), pc.and_(same_id, pc.less_equal(rows_before, rows_after)))
    return bool(pc.all(in_order).as_py())


def typed_window(
    hour_tables: list[pa.Table],
    *,
    since: datetime | None,
    last_rows: int | None,
    meta_columns: list[str],
    malformed_columns: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The window from typed hour tables, oldest first: the frame (features, then ``meta_columns`` and
    ``_prediction``) and the malformed requests, as the JSON path returns them. Raises :class:`Untyped` when the cut
    window's values would render differently."""
    table = _concat(hour_tables)
    bad = pc.is_valid(table["_error"])
    if since is not None:
        recent = pc.greater_equal(table["_ts"], pa.scalar(since, table.schema.field("_ts").type))
        bad, wanted = pc.and_(bad, recent), pc.and_(pc.invert(bad), recent)
    else:
        wanted = pc.invert(bad)
    malformed = table.filter(bad)
    good = table if pc.all(wanted).as_py() else table.filter(wanted)  # one copy at most (usually none)
    if not _sorted(good):  # hours come in time order and compaction sorts each: usually nothing to do
        good = good.take(pc.sort_indices(good, sort_keys=_SORT_GOOD))
    if last_rows is not None:
        good = good.slice(max(0, good.num_rows - last_rows))
    if good.num_rows == 0:
        raise Untyped("no rows")
    children = good.select([FEATURES_COLUMN]).flatten()
    features = children.rename_columns([name.split(".", 1)[1] for name in children.column_names])
    if not flat_numbers(features) or any(column.null_count == len(column) for column in features.columns):
        raise Untyped("values that pandas would render differently")
    reserved = {*meta_columns, "_prediction"}  # a feature named like a metadata column: dropped, as the JSON path does
    features = features.drop_columns([name for name in features.column_names if name in reserved])
    frame = _to_pandas(features, good, meta_columns)
    frame["_prediction"] = decode_predictions_arrow(good["_prediction"])
    malformed = malformed.take(pc.sort_indices(malformed, sort_keys=_SORT_MALFORMED)).select(malformed_columns)
    return frame, malformed.to_pandas()


def _to_pandas(features: pa.Table, good: pa.Table, meta_columns: list[str]) -> pd.DataFrame:
    """Features and metadata as one frame, without the copies a concat would make: arrow converts the numbers in
    one pass; text columns become object arrays (a version column of few values: one Python string per value)."""
    text = [name for name in meta_columns if pa.types.is_string(good.schema.field(name).type)]
    numbers = pa.table(
        [*features.columns, *(good[name] for name in meta_columns if name not in text)],
        names=[*features.column_names, *(name for name in meta_columns if name not in text)],
    )
    frame = numbers.to_pandas()
    for name in text:
        frame.insert(features.num_columns + meta_columns.index(name), name, _objects(good[name]))
    return frame


def _objects(column: pa.ChunkedArray) -> np.ndarray:
    """A string column as pandas' object array (what ``to_pandas`` gives): by dictionary when values repeat."""
    if len(column) < 4096:
        return np.asarray(column.to_pandas(), dtype=object)
    sample = column.slice(0, 4096)
    if pc.count_distinct(sample).as_py() > 64:
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    encoded = pc.dictionary_encode(column).combine_chunks()
    values = np.asarray([*encoded.dictionary.to_pylist(), None], dtype=object)
    indices = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
    return values[indices]
