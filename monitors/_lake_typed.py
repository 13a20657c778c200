"""Typed columns: an hour's JSON decoded once, at compaction, and stored as typed parquet columns.

Why: decoding the JSON costs ~11 µs a row, so reading every row of a day written at 100 req/s (8.6M rows) took 92 s.
Compaction stores the features as a ``_features`` struct column (one typed parquet column per feature) and the
predictions as ``_prediction_value`` (int64 or float64), and the reader assembles the window in arrow (order
check, cut, tail) and converts only what it returns. Compacted files keep ``_inputs`` and ``_prediction`` for the
JSON path, the reference: nothing is lost.

Exactness. The frame must be the one the JSON path builds (``DataFrame.from_records`` of ``json.loads``, and
``pd.to_numeric`` of the predictions, see :mod:`monitors._lake_decode`), column order and dtypes included. So a
struct is written only when every record of the hour has the same keys in the same order and every value is a plain
JSON number that arrow and pandas render alike, a string without escapes (an object column of ``str`` in both) or a
gap where the column is float or text; predictions only when every one of the hour is a plain integer
literal (int64) or every one a plain decimal or exponent literal (float64), so no cut of the hour can turn a float
column into an integer one. The reader takes the typed path only when every hour it reads agrees (same keys in the
same order, the same prediction type) and the values still pass those rules after the window is cut. Anything else
(a schema change inside the window, integers with gaps, booleans, nested values, ``NaN``, text with escapes or that
arrow would read as a date, labels) takes the JSON path.

Speed (``docs/benchmarks.md``): text columns that hold one value per request (``_request_id``) and the numbers are
written without dictionary pages (they rarely repeat; a dictionary that overflows costs a second decode), numbers
with lz4; a file's ``_error`` and ``_raw`` are not read when its statistics say it holds no malformed request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from monitors._lake_decode import TEXT_DTYPE, decode_predictions_arrow, flat_numbers
from monitors._lake_order import SORT_GOOD, ordered, since_cut
from monitors._lake_partitions import COMPACTED_PREFIX, is_local

__all__ = [
    "FEATURES_COLUMN",
    "PREDICTION_VALUES_COLUMN",
    "Untyped",
    "compacted_write_options",
    "concat_typed",
    "typed_features",
    "typed_hour_reader",
    "typed_predictions",
    "typed_window",
    "with_typed_columns",
]

FEATURES_COLUMN = "_features"
PREDICTION_VALUES_COLUMN = "_prediction_value"
# A record's text with its values removed (numbers, strings, nulls): equal for two records exactly when they have the
# same keys in the same order (text with a backslash, where a key or a string could hide '":1', is never typed; so a
# string holds no quote and ends at the next one).
_VALUE_AFTER_KEY = r'"\s*:\s*(?:-?[0-9][0-9.eE+-]*|"[^"]*"|null)'
# What json.dumps writes for an int, and for a finite float (repr): arrow's casts parse both as json.loads does.
_INTEGER_LITERAL = r"^-?(0|[1-9][0-9]*)$"
_DECIMAL_LITERAL = r"^-?(0|[1-9][0-9]*)(\.[0-9]+([eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)$"
_ZSTD_COLUMNS = ("_model_version", "_inputs", "_prediction", "_error", "_raw")  # text read rarely or once: small
_DICTIONARY_COLUMNS = ("_model_version", "_status", "_row", "_prediction", "_error", "_raw")  # values that repeat
_SKIPPED_WHEN_WELL_FORMED = ("_error", "_raw")
_SORT_MALFORMED = SORT_GOOD[:2]  # one row per malformed request
_AS_TEXT = {pa.string(): TEXT_DTYPE, pa.large_string(): TEXT_DTYPE}


class Untyped(Exception):
    """The window cannot be read typed with the same result as the JSON path: the caller reads it as JSON."""


# --- writing (compaction) ---------------------------------------------------------------------------------------


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
    if pc.count_distinct(pc.replace_substring_regex(present, _VALUE_AFTER_KEY, '":')).as_py() != 1:
        return None
    body = pc.binary_join(
        pa.LargeListArray.from_arrays(pa.array([0, len(present)], pa.int64()), present),
        pa.scalar("\n", pa.large_string()),
    )
    try:
        table = pa_json.read_json(pa.BufferReader(body[0].as_buffer()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(present) or table.num_columns == 0 or not flat_numbers(table, text=True):
        return None
    struct = pa.StructArray.from_arrays([_categories(c.combine_chunks()) for c in table.columns], table.column_names)
    if len(present) == len(texts):
        return struct
    mask = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)
    positions = np.where(mask, np.cumsum(mask) - 1, 0)
    return struct.take(pa.array(positions, mask=~mask))


_MAX_CATEGORIES = 1024  # distinct texts of a feature in an hour up to which it is stored as categories


def _categories(values: pa.Array) -> pa.Array:
    """Text with few distinct values (categories) as arrow's dictionary type: stored so, parquet gives it back so,
    ~4x faster to read than the strings, and the reader turns indices into pandas' object column with one take
    (:func:`_objects`). Text with many (ids, free text) stays strings: its dictionary page could overflow into plain
    pages, which arrow cannot read back as a nested dictionary."""
    if pa.types.is_string(values.type) and pc.count_distinct(values).as_py() <= _MAX_CATEGORIES:
        return values.dictionary_encode()
    return values


def typed_predictions(texts: pa.ChunkedArray | pa.Array) -> pa.Array | None:
    """The predictions (JSON texts; null where a response had none) as int64 when every one is an integer literal,
    float64 when every one is a decimal or exponent literal (then arrow's cast gives ``pd.to_numeric`` of
    ``json.loads``, and no cut of them can hold only integers); a null-typed array when all are null (any type
    widens it); else None (labels, lists, ``NaN``, a mix of integers and decimals, an integer beyond int64)."""
    strings = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    present = strings.drop_null()
    if len(present) == 0:
        return pa.nulls(len(strings))
    for pattern, target in ((_INTEGER_LITERAL, pa.int64()), (_DECIMAL_LITERAL, pa.float64())):
        if pc.all(pc.match_substring_regex(present, pattern)).as_py():
            try:
                return pc.cast(strings, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # an integer beyond int64's range
                return None
    return None


def with_typed_columns(hour: pa.Table) -> pa.Table:
    """A compacted hour's table (the stored columns) with ``_features`` and ``_prediction_value`` added where exact,
    and the request ids stored as arrow's large strings: the reader hands that buffer to pandas as it is (its
    string dtype holds large strings; a plain string column would be copied first)."""
    ids = hour.schema.get_field_index("_request_id")
    hour = hour.set_column(ids, "_request_id", hour["_request_id"].cast(pa.large_string()))
    features = typed_features(hour["_inputs"])
    if features is not None:
        hour = hour.append_column(FEATURES_COLUMN, features)
    predictions = typed_predictions(hour["_prediction"])
    if predictions is not None and not pa.types.is_null(predictions.type):
        hour = hour.append_column(PREDICTION_VALUES_COLUMN, predictions)
    return hour


def compacted_write_options(schema: pa.Schema) -> dict[str, Any]:
    """``pq.write_table`` options of a compacted file: zstd for text read rarely (small on disk), lz4 for what the
    reader scans (decoded ~2x faster than zstd here); dictionary pages only for columns whose values repeat."""
    codecs: dict[str, str] = {}
    dictionary = [name for name in _DICTIONARY_COLUMNS if name in schema.names]
    for field in schema:
        if pa.types.is_struct(field.type):
            codecs.update({f"{field.name}.{child.name}": "lz4" for child in field.type})
            # text features are categories (a handful of values each): a dictionary page, indices per row
            dictionary += [f"{field.name}.{child.name}" for child in field.type if not pa.types.is_floating(child.type)
                           and not pa.types.is_integer(child.type)]  # fmt: skip
        else:
            codecs[field.name] = "zstd" if field.name in _ZSTD_COLUMNS else "lz4"
    return {"compression": codecs, "use_dictionary": dictionary}


# --- reading ----------------------------------------------------------------------------------------------------


def typed_hour_reader(
    fs: fsspec.AbstractFileSystem, stored_schema: pa.Schema, read_stored: Callable[[list[str]], pa.Table]
) -> Callable[[list[str]], pa.Table]:
    """A reader of some of an hour's files as one table: the stored columns with ``_inputs`` replaced by the typed
    ``_features`` and, where compaction typed them, ``_prediction`` by ``_prediction_value``. Compacted files are
    read without their JSON; parts are read by ``read_stored`` (the JSON path's reader) and decoded here. Raises
    :class:`Untyped` when a file cannot be typed."""
    leading = [name for name in stored_schema.names if name not in ("_inputs", "_prediction")]

    def read(paths: list[str]) -> pa.Table:
        tables, parts = [], []
        for path in paths:
            if path.rsplit("/", 1)[-1].startswith(COMPACTED_PREFIX):
                tables.append(_read_compacted(fs, path, leading))
            else:
                parts.append(path)
        if parts:
            stored = read_stored(parts)
            features = typed_features(stored["_inputs"])
            if features is None:
                raise Untyped(parts[0])
            tables.append(
                stored.select(leading)
                .append_column(FEATURES_COLUMN, features)
                .append_column("_prediction", stored["_prediction"])
            )
        return concat_typed(tables)

    return read


def _read_compacted(fs: fsspec.AbstractFileSystem, path: str, leading: list[str]) -> pa.Table:
    """A compacted file's typed columns, in the reader's order: ``leading``, ``_features``, then the prediction
    values (or texts when compaction could not type them)."""
    with contextlib.ExitStack() as stack:
        local = is_local(fs)
        source = path if local else stack.enter_context(fs.open(path, "rb"))
        file = stack.enter_context(pq.ParquetFile(source, memory_map=local, read_dictionary=["_model_version"]))
        names = file.schema_arrow.names
        if FEATURES_COLUMN not in names:
            raise Untyped(path)
        skipped = [] if _may_hold_malformed(file.metadata) else list(_SKIPPED_WHEN_WELL_FORMED)
        prediction = PREDICTION_VALUES_COLUMN if PREDICTION_VALUES_COLUMN in names else "_prediction"
        wanted = [name for name in leading if name not in skipped] + [FEATURES_COLUMN, prediction]
        table = _read_columns(file, wanted, path)
    version = table.schema.get_field_index("_model_version")
    if pa.types.is_dictionary(table.schema.field(version).type):
        table = table.set_column(version, "_model_version", pc.cast(table["_model_version"], pa.large_string()))
    for name in skipped:  # no malformed request in the file: null columns of arrow's null type (no buffer at all)
        table = table.append_column(name, pa.nulls(table.num_rows))
    return table.select([*leading, FEATURES_COLUMN, prediction])


def _read_columns(file: pq.ParquetFile, columns: list[str], path: str) -> pa.Table:
    """The columns of a compacted file; with categories in the features, one row group at a time (arrow reads a
    nested dictionary column into one chunk only), and :class:`Untyped` if arrow cannot read them even so."""
    features = file.schema_arrow.field(FEATURES_COLUMN).type
    if file.num_row_groups < 2 or not any(pa.types.is_dictionary(child.type) for child in features):
        return file.read(columns=columns)
    try:
        return pa.concat_tables(file.read_row_group(group, columns=columns) for group in range(file.num_row_groups))
    except pa.ArrowNotImplementedError as exc:
        raise Untyped(f"{path}: {exc}") from exc


def _may_hold_malformed(metadata: pq.FileMetaData) -> bool:
    """False only when every row group's statistics say ``_error`` is null in every row."""
    if metadata.num_row_groups == 0:
        return False
    paths = [metadata.row_group(0).column(i).path_in_schema for i in range(metadata.num_columns)]
    if "_error" not in paths:
        return True
    index = paths.index("_error")
    for group in (metadata.row_group(g) for g in range(metadata.num_row_groups)):
        statistics = group.column(index).statistics
        if statistics is None or not statistics.has_null_count or statistics.null_count != group.num_rows:
            return True
    return False


def concat_typed(tables: list[pa.Table]) -> pa.Table:
    """Typed tables as one: the feature structs must have the same keys in the same order (types may widen int64 ->
    float64, as ``from_records`` does) and the predictions one form (:func:`_one_prediction_form`); else
    :class:`Untyped`."""
    keys = {tuple(child.name for child in t.schema.field(FEATURES_COLUMN).type) for t in tables}
    if len(keys) > 1:
        raise Untyped("the feature keys change inside the window")
    try:
        return pa.concat_tables(_one_prediction_form(_one_text_form(tables)), promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise Untyped(str(exc)) from exc


def _one_text_form(tables: list[pa.Table]) -> list[pa.Table]:
    """The tables with each text feature in one form: where one hour stored it as categories and another as strings
    (an hour with more than :data:`_MAX_CATEGORIES` values of it), the categories cast to strings."""
    forms: dict[str, set[bool]] = {}
    for table in tables:
        for child in table.schema.field(FEATURES_COLUMN).type:
            forms.setdefault(child.name, set()).add(pa.types.is_dictionary(child.type))
    mixed = {name for name, seen in forms.items() if len(seen) > 1}
    if not mixed:
        return tables
    out = []
    for table in tables:
        kind = table.schema.field(FEATURES_COLUMN).type
        target = pa.struct(
            [pa.field(c.name, pa.string()) if c.name in mixed and pa.types.is_dictionary(c.type) else c for c in kind]
        )
        if target != kind:
            at = table.schema.get_field_index(FEATURES_COLUMN)
            table = table.set_column(at, FEATURES_COLUMN, table[FEATURES_COLUMN].cast(target))
        out.append(table)
    return out


def _one_prediction_form(tables: list[pa.Table]) -> list[pa.Table]:
    """The texts when no table has typed predictions; else every table's values (texts parsed by the compaction's
    rule), of one type: an integer hour and a decimal one together could be cut down to integers, which the JSON
    path would return as int64."""
    if not any(PREDICTION_VALUES_COLUMN in table.column_names for table in tables):
        return tables
    typed = []
    for table in tables:
        if "_prediction" in table.column_names:
            values = typed_predictions(table["_prediction"])
            if values is None:
                raise Untyped("predictions the typed column cannot hold")
            table = table.drop_columns(["_prediction"]).append_column(PREDICTION_VALUES_COLUMN, values)
        typed.append(table)
    if len({table.schema.field(PREDICTION_VALUES_COLUMN).type for table in typed} - {pa.null()}) > 1:
        raise Untyped("integer and decimal predictions in one window")
    return typed


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
    table = concat_typed(hour_tables)
    if table["_error"].null_count == table.num_rows:  # no malformed request: nothing to filter, no copy
        good, malformed = table, table.slice(0, 0)
    else:
        bad = pc.is_valid(table["_error"])
        good, malformed = table.filter(pc.invert(bad)), table.filter(bad)
    good = ordered(good)
    if since is not None:
        good = since_cut(good, since)
        malformed = malformed.filter(
            pc.greater_equal(malformed["_ts"], pa.scalar(since, malformed.schema.field("_ts").type))
        )
    if last_rows is not None:
        good = good.slice(max(0, good.num_rows - last_rows))
    if good.num_rows == 0:
        raise Untyped("no rows")
    children = good.select([FEATURES_COLUMN]).flatten()
    features = children.rename_columns([name.split(".", 1)[1] for name in children.column_names])
    # every hour's values passed flat_numbers when typed (at compaction, or parts here): only the types and gaps of
    # the cut window are left to check (widening int64 to float64 cannot reach int64's limit)
    if not flat_numbers(features, check_range=False, text=True) or any(
        c.null_count == len(c) for c in features.columns
    ):
        raise Untyped("values that pandas would render differently")
    reserved = {*meta_columns, "_prediction"}  # a feature named like a metadata column: dropped, as the JSON path does
    features = features.drop_columns([name for name in features.column_names if name in reserved])
    values = good[PREDICTION_VALUES_COLUMN] if PREDICTION_VALUES_COLUMN in good.column_names else None
    if values is not None and values.null_count == len(values):
        raise Untyped("no prediction in the window")
    frame = _to_pandas(features, good, meta_columns, values)
    if values is None:
        frame["_prediction"] = decode_predictions_arrow(good["_prediction"])
    malformed = malformed.take(pc.sort_indices(malformed, sort_keys=_SORT_MALFORMED)).select(malformed_columns)
    for name in ("_error", "_raw"):  # null-typed when no file of the window held a malformed request
        if name in malformed.column_names and pa.types.is_null(malformed.schema.field(name).type):
            at = malformed.schema.get_field_index(name)
            malformed = malformed.set_column(at, name, malformed[name].cast(pa.string()))
    return frame, malformed.to_pandas(types_mapper=_AS_TEXT.get)


def _to_pandas(
    features: pa.Table, good: pa.Table, meta_columns: list[str], predictions: pa.ChunkedArray | None
) -> pd.DataFrame:
    """Features, metadata and typed predictions as one frame, without the copies a concat would make: arrow converts
    the numbers in one pass (int64 predictions with gaps become float64 NaN, as the JSON path's do); text columns
    become pandas strings backed by the same arrow buffers (no Python string per row)."""
    text = [name for name in meta_columns if good.schema.field(name).type in _AS_TEXT]
    numeric = [name for name in meta_columns if name not in text]
    categories = {name for name, kind in zip(features.column_names, features.schema.types, strict=True)
                  if pa.types.is_dictionary(kind)}  # fmt: skip
    plain = [name for name in features.column_names if name not in categories]
    columns = [*(features[name] for name in plain), *(good[name] for name in numeric)]
    names = [*plain, *numeric]
    if predictions is not None:
        columns.append(predictions)
        names.append("_prediction")
    numbers = pa.table(columns, names=names).to_pandas()
    parts: dict[str, Any] = {
        name: _objects(features[name]) if name in categories else numbers[name] for name in features.column_names
    }
    parts.update(
        {name: pd.arrays.ArrowStringArray(good[name]) if name in text else numbers[name] for name in meta_columns}
    )
    if predictions is not None:
        parts["_prediction"] = numbers["_prediction"]
    return pd.DataFrame(parts, copy=False)  # no consolidation: each column stays the array made above


def _objects(categories: pa.ChunkedArray) -> np.ndarray:
    """A dictionary column as the JSON path's object column: the ``str`` of each value, ``None`` for a gap (pandas'
    own conversion gives a Categorical, and NaN for gaps once made object)."""
    out = np.empty(len(categories), dtype=object)
    at = 0
    for chunk in categories.chunks:
        values = np.array([*chunk.dictionary.to_pylist(), None], dtype=object)
        out[at : at + len(chunk)] = values[chunk.indices.fill_null(len(chunk.dictionary)).to_numpy()]
        at += len(chunk)
    return out
