"""The inference lake: captured payloads as parquet, partitioned by model, date and hour.

Layout (any fsspec URI; a local directory by default)::

    <lake>/model=<name>/date=YYYY-MM-DD/hour=HH/part-<id>.parquet
    <lake>/model=<name>/date=YYYY-MM-DD/hour=HH/compacted-<id>.parquet + _compacted.json   (after compaction)

Every file has the same stored schema (:data:`STORED_SCHEMA`): metadata columns plus the record's input
features as a JSON object in ``_inputs``. Keeping features as JSON means a request whose schema changed
(a new column, a string where a number was) is stored exactly as sent instead of failing a typed write;
:func:`read_window` turns it back into one column per feature. Writes are idempotent: the part id names
the file, so writing the same id twice replaces rather than duplicates (the sidecar uses its spool
segment id, which makes crash replay safe). Compaction (:mod:`monitors.lake_compaction`) merges an hour's
parts into a few files and publishes a manifest that supersedes them; retention deletes old partitions; the
reader honours both (:mod:`monitors._lake_partitions` says how a row is never read twice nor lost). Compacted
files also hold the features as typed columns when that is exact; the reader prefers them and falls back to the
JSON (:mod:`monitors._lake_typed`).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from monitors._lake_decode import TEXT_DTYPE, as_text
from monitors._lake_decode import decode_inputs as _decode_inputs
from monitors._lake_decode import decode_predictions as _decode_predictions
from monitors._lake_hours import read_hours
from monitors._lake_partitions import ROW_ORDER as _ROW_ORDER
from monitors._lake_partitions import SAFE_NAME as _SAFE_NAME
from monitors._lake_partitions import check_model as _check_model
from monitors._lake_partitions import filesystem as _filesystem
from monitors._lake_partitions import hours, live_files
from monitors._lake_partitions import is_local as _is_local
from monitors._lake_partitions import partition as _partition
from monitors._lake_typed import Untyped, concat_typed, typed_hour_reader, typed_window

__all__ = [
    "LAST_WRITE_MARKER",
    "META_COLUMNS",
    "STORED_SCHEMA",
    "TEXT_COLUMNS",
    "TEXT_DTYPE",
    "LakeRow",
    "LakeWindow",
    "default_lake_uri",
    "last_write",
    "list_parts",
    "partition_dir",
    "read_window",
    "write_frame",
    "write_rows",
]

# Columns of LakeWindow.frame besides the features, in this order.
META_COLUMNS = ("_request_id", "_ts", "_model_version", "_status", "_latency_ms", "_row", "_prediction")
_MALFORMED_COLUMNS = ("_request_id", "_ts", "_model_version", "_status", "_latency_ms", "_error", "_raw")
# The text metadata of LakeWindow.frame and .malformed: TEXT_DTYPE (arrow-backed strings), not Python objects.
TEXT_COLUMNS = ("_request_id", "_model_version", "_error", "_raw")

STORED_SCHEMA = pa.schema(
    [
        ("_request_id", pa.string()),
        ("_ts", pa.timestamp("us", tz="UTC")),
        ("_model_version", pa.string()),
        ("_status", pa.int32()),
        ("_latency_ms", pa.float64()),
        ("_row", pa.int32()),  # position of the record in its request
        ("_inputs", pa.string()),  # JSON object column -> value; null when the request did not parse
        ("_prediction", pa.string()),  # JSON value; null when the response had none
        ("_error", pa.string()),  # why the request did not parse; null when it did
        ("_raw", pa.string()),  # the raw request body, kept only for malformed requests
    ]
)

LAST_WRITE_MARKER = "_last_write"  # <lake>/model=<name>/_last_write, rewritten after each write (local lakes)


@dataclass(frozen=True)
class LakeRow:
    """One inference record, or one malformed request (``error`` set, ``inputs`` None)."""

    request_id: str
    ts: datetime
    model_version: str
    status: int
    latency_ms: float
    row: int = 0
    inputs: dict[str, Any] | None = None
    prediction: Any = None
    error: str | None = None
    raw: str | None = None


@dataclass
class LakeWindow:
    """What :func:`read_window` returns: well-formed records, malformed ones, and the columns seen."""

    frame: pd.DataFrame  # one row per record: feature columns + META_COLUMNS, ordered by _ts; TEXT_COLUMNS: TEXT_DTYPE
    malformed: pd.DataFrame  # one row per unparseable request: _request_id, _ts, ..., _error, _raw (TEXT_DTYPE)
    columns_seen: dict[str, str] = field(default_factory=dict)  # feature -> pandas.api.types.infer_dtype
    files_read: int = 0


def default_lake_uri() -> str:
    """The lake in force: ``DRIFTLOOP_LAKE_URI`` when set, else ``<home>/lake``."""
    from driftloop.config import get_settings

    return get_settings().lake_uri


def partition_dir(lake_uri: str, model: str, ts: datetime) -> str:
    """The partition folder (a path of the lake's filesystem) that holds records taken at ``ts``."""
    _, root = _filesystem(lake_uri)
    return _partition(root, _check_model(model), ts)


def write_rows(lake_uri: str, model: str, rows: Sequence[LakeRow], part_id: str) -> list[str]:
    """Write ``rows`` as one part file per hour partition, named after ``part_id``; idempotent.

    Each file is written under a temporary name and renamed, so a reader never sees half a file and a
    crash leaves at most a temporary file that readers ignore. Once its hour is compacted a part id is sealed: a
    rewrite of it (a writer replaying the segment after a crash: the same rows) is superseded, not read.
    """
    if not _SAFE_NAME.match(part_id):
        raise ValueError(f"part id {part_id!r} must be a plain file-name token")
    fs, root = _filesystem(lake_uri)
    model = _check_model(model)
    by_partition: dict[str, list[LakeRow]] = {}
    for row in rows:
        by_partition.setdefault(_partition(root, model, row.ts), []).append(row)
    written = []
    for folder, members in sorted(by_partition.items()):
        fs.makedirs(folder, exist_ok=True)
        final = f"{folder}/part-{part_id}.parquet"
        temporary = f"{folder}/.tmp-{uuid.uuid4().hex}.parquet"
        with fs.open(temporary, "wb") as handle:
            pq.write_table(_to_table(members), handle, compression="zstd")
        fs.mv(temporary, final)
        written.append(final)
    if written and _is_local(fs):  # a cheap "new data" signal: a watcher stats one file instead of listing the lake
        marker = Path(root) / f"model={model}" / LAST_WRITE_MARKER
        marker.write_text(f"{time.time_ns()} {written[-1].rsplit('/', 1)[-1]}\n")
    return written


def last_write(lake_uri: str, model: str) -> int | None:
    """When a part of ``model`` was last written (ns; 0 before the first write); None when the lake is not local
    (a remote store cannot be watched cheaply: watchers fall back to their interval)."""
    fs, root = _filesystem(lake_uri)
    if not _is_local(fs):
        return None
    try:
        return (Path(root) / f"model={_check_model(model)}" / LAST_WRITE_MARKER).stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def write_frame(
    lake_uri: str,
    model: str,
    features: pd.DataFrame,
    *,
    ts: datetime | Sequence[datetime] | None = None,
    predictions: Sequence[Any] | None = None,
    model_version: str = "",
    status: int = 200,
    part_id: str | None = None,
) -> list[str]:
    """Store a feature frame as if it had been served (backfills, tests, the drift monitor's fixtures)."""
    now = datetime.now(UTC)
    stamps = list(ts) if isinstance(ts, Sequence) else [ts or now] * len(features)
    part = part_id or f"frame-{uuid.uuid4().hex}"
    rows = [
        LakeRow(
            request_id=f"{part}-{i}",
            ts=stamps[i],
            model_version=model_version,
            status=status,
            latency_ms=0.0,
            inputs=record,
            prediction=None if predictions is None else predictions[i],
        )
        for i, record in enumerate(features.to_dict(orient="records"))
    ]
    return write_rows(lake_uri, model, rows, part)


def list_parts(lake_uri: str, model: str) -> list[str]:
    """The live files of ``model`` (writers' parts not yet compacted, and compacted files), oldest partition first."""
    fs, root = _filesystem(lake_uri)
    return [f.path for hour in hours(fs, root, model, newest_first=False) for f in live_files(fs, hour.folder)]


def read_window(
    lake_uri: str, model: str, *, last_rows: int | None = None, since: datetime | None = None
) -> LakeWindow:
    """The recent inference records of ``model``: the last ``last_rows`` and/or those at or after ``since``.

    Only the partitions that can hold matching records are listed and opened (newest first, so ``last_rows`` stops
    early). A missing lake reads as empty, so a monitor started before the first request simply sees no data yet.
    Compaction may run meanwhile: each row is read exactly once (``monitors._lake_partitions``).
    """
    if last_rows is not None and last_rows < 0:
        raise ValueError("last_rows must be >= 0")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    fs, root = _filesystem(lake_uri)
    try:
        return _read_window(fs, root, model, since=since, last_rows=last_rows, typed=True)
    except Untyped:  # a schema change, text values, parts that do not decode alike: the JSON path, the reference
        return _read_window(fs, root, model, since=since, last_rows=last_rows, typed=False)


def _read_window(
    fs: fsspec.AbstractFileSystem,
    root: str,
    model: str,
    *,
    since: datetime | None,
    last_rows: int | None,
    typed: bool,
) -> LakeWindow:
    """The window through the typed columns (``monitors._lake_typed``; raises ``Untyped``) or the stored JSON."""
    reader = typed_hour_reader(fs, STORED_SCHEMA, _stored_reader(fs)) if typed else _stored_reader(fs)
    concat = concat_typed if typed else pa.concat_tables
    tables, files = read_hours(fs, hours(fs, root, model, since=since), last_rows, reader, concat)
    if typed:
        frame, malformed = typed_window(
            tables[::-1],  # oldest hour first: then rows are usually in order already
            since=since,
            last_rows=last_rows,
            meta_columns=[c for c in META_COLUMNS if c != "_prediction"],
            malformed_columns=list(_MALFORMED_COLUMNS),
        )
        return LakeWindow(frame, malformed, _columns_seen(frame, text_is_str=True), files)
    stored = pa.concat_tables(tables).to_pandas() if tables else STORED_SCHEMA.empty_table().to_pandas()
    return _window(stored, since=since, last_rows=last_rows, files=files)


def _stored_reader(fs: fsspec.AbstractFileSystem) -> Callable[[list[str]], pa.Table]:
    def read(paths: list[str]) -> pa.Table:
        return ds.dataset(paths, schema=STORED_SCHEMA, format="parquet", filesystem=fs).to_table()

    return read


def _window(stored: pd.DataFrame, *, since: datetime | None, last_rows: int | None, files: int) -> LakeWindow:
    if since is not None:
        stored = stored[stored["_ts"] >= pd.Timestamp(since)]
    bad = stored["_error"].notna()
    malformed = stored[bad].sort_values(list(_ROW_ORDER[:2]), kind="stable")  # one row per malformed request
    good = stored[~bad].sort_values(list(_ROW_ORDER), kind="stable")
    if last_rows is not None:
        good = good.tail(last_rows)
    features = _decode_inputs(good["_inputs"])
    meta = good[[c for c in META_COLUMNS if c != "_prediction"]].copy()
    meta["_prediction"] = _decode_predictions(good["_prediction"])
    return _assemble(
        features, as_text(meta, TEXT_COLUMNS), as_text(malformed[list(_MALFORMED_COLUMNS)], TEXT_COLUMNS), files
    )


def _assemble(features: pd.DataFrame, meta: pd.DataFrame, malformed: pd.DataFrame, files: int) -> LakeWindow:
    frame = pd.concat([features.drop(columns=list(META_COLUMNS), errors="ignore"), meta], axis=1)
    return LakeWindow(
        frame=frame.reset_index(drop=True),
        malformed=malformed.reset_index(drop=True),
        columns_seen=_columns_seen(frame),
        files_read=files,
    )


def _columns_seen(frame: pd.DataFrame, *, text_is_str: bool = False) -> dict[str, str]:
    """Each feature's kind as ``infer_dtype`` names it. ``text_is_str``: every object column holds ``str`` or ``None``
    and not only ``None`` (the typed path builds them so), so it is ``"string"`` without a scan of each value."""
    return {
        str(c): "string"
        if text_is_str and frame[c].dtype == object
        else pd.api.types.infer_dtype(frame[c], skipna=True)
        for c in frame.columns
        if c not in META_COLUMNS
    }


def _to_table(rows: Iterable[LakeRow]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in STORED_SCHEMA.names}
    for row in rows:
        columns["_request_id"].append(row.request_id)
        columns["_ts"].append(row.ts if row.ts.tzinfo else row.ts.replace(tzinfo=UTC))
        columns["_model_version"].append(row.model_version)
        columns["_status"].append(row.status)
        columns["_latency_ms"].append(row.latency_ms)
        columns["_row"].append(row.row)
        columns["_inputs"].append(None if row.inputs is None else _dumps(row.inputs))
        columns["_prediction"].append(None if row.prediction is None else _dumps(row.prediction))
        columns["_error"].append(row.error)
        columns["_raw"].append(row.raw)
    return pa.Table.from_pydict(columns, schema=STORED_SCHEMA)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_jsonable, allow_nan=True)


def _jsonable(value: Any) -> Any:
    """numpy scalars, timestamps and the like: stored as their Python value or text."""
    if hasattr(value, "item"):
        item = value.item()
        return None if isinstance(item, float) and math.isnan(item) else item
    return str(value)
