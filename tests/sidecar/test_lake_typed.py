"""Typed features at compaction (``monitors._lake_typed``): the window read through the typed columns is the frame
the JSON path builds, and whatever could render differently is read as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitors import lake as lake_module
from monitors._lake_partitions import filesystem
from monitors._lake_typed import FEATURES_COLUMN, Untyped, typed_features, typed_window
from monitors.lake import LakeRow, LakeWindow, read_window, write_rows
from monitors.lake_compaction import compact

MODEL = "m"
T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=4)


def _rows(hour: int, count: int, inputs: Any, *, prefix: str = "r", malformed_every: int = 0) -> list[LakeRow]:
    rows = []
    for i in range(count):
        ts = T0 + timedelta(hours=hour, seconds=7 * i)
        if malformed_every and i % malformed_every == 3:
            rows.append(LakeRow(f"{prefix}{hour}-{i}", ts, "3", 400, 0.5, error="not JSON", raw="{oops"))
            continue
        record = inputs(i) if callable(inputs) else inputs
        rows.append(LakeRow(f"{prefix}{hour}-{i}", ts, "3", 200, 1.5, row=i % 2, inputs=record, prediction=i % 3))
    return rows


def _numeric(i: int) -> dict[str, Any]:
    return {"age": 20 + i % 50, "income": 1000.5 * i, "score": -0.25 * i}


def _write_hours(lake: str, inputs: Any = _numeric, hours: int = 4, count: int = 300, **kwargs: Any) -> None:
    for hour in range(hours):
        rows = _rows(hour, count, inputs, **kwargs)
        for part in range(0, count, 50):  # many parts per hour, as the sidecar writes them
            write_rows(lake, MODEL, rows[part : part + 50], part_id=f"seg-{hour}-{part}")


def _json_path(lake: str, **options: Any) -> LakeWindow:
    fs, root = filesystem(lake)
    since = options.get("since")
    return lake_module._read_window(fs, root, MODEL, since=since, last_rows=options.get("last_rows"), typed=False)


def _typed_path(lake: str, **options: Any) -> LakeWindow:
    fs, root = filesystem(lake)
    since = options.get("since")
    return lake_module._read_window(fs, root, MODEL, since=since, last_rows=options.get("last_rows"), typed=True)


def _assert_same(typed: LakeWindow, reference: LakeWindow) -> None:
    pd.testing.assert_frame_equal(typed.frame, reference.frame)
    pd.testing.assert_frame_equal(typed.malformed, reference.malformed)
    assert typed.columns_seen == reference.columns_seen
    assert typed.files_read == reference.files_read


def _compacted_schemas(lake: str) -> list[pa.Schema]:
    return [pq.read_schema(p) for p in sorted(Path(lake).rglob("compacted-*.parquet"))]


WINDOWS = [
    {},
    {"last_rows": 2000},
    {"last_rows": 450},
    {"last_rows": 1},
    {"since": T0 + timedelta(hours=1, minutes=20)},
    {"since": T0 + timedelta(hours=2, minutes=5), "last_rows": 100},
]


@pytest.mark.parametrize("options", WINDOWS, ids=lambda o: ",".join(o) or "all")
def test_compacted_hours_and_open_parts_read_typed_as_the_json_path_reads_them(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    lake = str(tmp_path)
    _write_hours(lake, malformed_every=40)
    report = compact(lake, MODEL, now=NOW)  # hours 6, 7 and 8 end before NOW - 5 min; hour 9 stays parts
    assert len(report.hours) == 3
    assert all(FEATURES_COLUMN in schema.names and "_inputs" in schema.names for schema in _compacted_schemas(lake))
    typed = _typed_path(lake, **options)
    _assert_same(typed, _json_path(lake, **options))
    _assert_same(read_window(lake, MODEL, **options), typed)
    assert typed.frame["age"].dtype == "int64" and typed.frame["income"].dtype == "float64"


def test_the_typed_frame_is_json_loads_and_from_records(tmp_path: Path) -> None:
    lake = str(tmp_path)
    _write_hours(lake, hours=2, count=100)
    compact(lake, MODEL, now=NOW)
    frame = _typed_path(lake).frame
    expected = pd.DataFrame.from_records([_numeric(i) for _hour in range(2) for i in range(100)])
    pd.testing.assert_frame_equal(frame[["age", "income", "score"]], expected)
    assert frame["_prediction"].tolist() == [i % 3 for _hour in range(2) for i in range(100)]


def test_an_integer_hour_and_a_float_hour_widen_to_float_as_from_records_does(tmp_path: Path) -> None:
    lake = str(tmp_path)
    write_rows(lake, MODEL, _rows(0, 60, lambda i: {"x": i, "y": 1.5}), part_id="ints")
    write_rows(lake, MODEL, _rows(1, 60, lambda i: {"x": i + 0.5, "y": 2}), part_id="floats")
    compact(lake, MODEL, now=NOW)
    typed = _typed_path(lake)
    _assert_same(typed, _json_path(lake))
    assert typed.frame["x"].dtype == "float64"


@pytest.mark.parametrize(
    ("name", "inputs"),
    [
        ("text values", lambda i: {"age": i, "purpose": "car"}),
        ("booleans", lambda i: {"age": i, "ok": True}),
        ("nested", lambda i: {"age": i, "tags": [1, 2]}),
        ("keys in another order", lambda i: {"a": i, "b": 1.0} if i % 2 else {"b": 1.0, "a": i}),
        ("a key now and then", lambda i: {"a": i, "b": 1.0} if i % 2 else {"a": i}),
        ("null values", lambda i: {"a": i + 0.5 if i % 7 else None, "b": 1.5}),
        ("NaN", lambda i: {"a": float("nan") if i == 5 else 1.0}),
        ("an integer beyond int64", lambda i: {"a": 2**70 if i == 5 else i}),
        ("a backslash in a key", lambda i: {"we\\ird": i}),
    ],
)
def test_hours_that_could_render_differently_stay_json_and_read_the_same(
    tmp_path: Path, name: str, inputs: Any
) -> None:
    lake = str(tmp_path)
    _write_hours(lake, inputs=inputs, hours=2, count=100)
    compact(lake, MODEL, now=NOW)
    assert all(FEATURES_COLUMN not in schema.names for schema in _compacted_schemas(lake)), name
    with pytest.raises(Untyped):
        _typed_path(lake)
    window = read_window(lake, MODEL)
    _assert_same(window, _json_path(lake))
    records = [inputs(i) for _hour in range(2) for i in range(100)]
    expected = pd.DataFrame.from_records(json.loads(json.dumps(r)) for r in records)
    pd.testing.assert_frame_equal(window.frame[list(expected.columns)], expected)


def test_a_schema_change_between_hours_is_read_as_json(tmp_path: Path) -> None:
    lake = str(tmp_path)
    write_rows(lake, MODEL, _rows(0, 40, lambda i: {"income": float(i), "age": i}), part_id="before")
    write_rows(lake, MODEL, _rows(1, 40, lambda i: {"income": float(i), "years": i}), part_id="after")  # renamed
    compact(lake, MODEL, now=NOW)
    assert all(FEATURES_COLUMN in schema.names for schema in _compacted_schemas(lake))  # each hour alone is typed
    with pytest.raises(Untyped):
        _typed_path(lake)
    window = read_window(lake, MODEL)
    _assert_same(window, _json_path(lake))
    assert list(window.frame.columns[:3]) == ["income", "age", "years"]
    assert window.frame["age"].isna().sum() == 40 and window.frame["years"].isna().sum() == 40


def test_a_window_cut_to_rows_whose_values_are_all_null_is_not_read_typed() -> None:
    """A safety net behind compaction's rules: a float column with gaps whose newest rows are all gaps would be an
    object column of None in the JSON path, not float64."""
    features = pa.StructArray.from_arrays([pa.array([0.5, None, None]), pa.array([1, 2, 3])], ["a", "b"])
    table = pa.table(
        {
            "_request_id": ["x", "y", "z"],
            "_ts": pa.array([T0 + timedelta(seconds=s) for s in range(3)], pa.timestamp("us", tz="UTC")),
            "_row": pa.array([0, 0, 0], pa.int32()),
            "_prediction": ["1", "2", "3"],
            "_error": pa.array([None, None, None], pa.string()),
            FEATURES_COLUMN: features,
        }
    )
    options: dict[str, Any] = {"since": None, "meta_columns": ["_request_id", "_ts"], "malformed_columns": ["_ts"]}
    frame, _malformed = typed_window([table], last_rows=3, **options)
    assert frame["a"].dtype == "float64"
    with pytest.raises(Untyped):
        typed_window([table], last_rows=2, **options)


def test_struct_alignment_keeps_malformed_requests_null() -> None:
    texts = pa.array(['{"a": 1, "b": 2.5}', None, '{"a": 3, "b": 0.5}', None])
    struct = typed_features(texts)
    assert struct is not None
    assert struct.to_pylist() == [{"a": 1, "b": 2.5}, None, {"a": 3, "b": 0.5}, None]
    assert typed_features(pa.array([None, None], pa.string())) is None


def test_keys_in_another_order_in_an_hour_cut_out_of_the_window_do_not_reorder_the_columns(tmp_path: Path) -> None:
    lake = str(tmp_path)
    write_rows(lake, MODEL, _rows(0, 40, lambda i: {"b": 1.5, "a": float(i)}), part_id="before")  # 06:00-06:05
    write_rows(lake, MODEL, _rows(1, 40, lambda i: {"a": float(i), "b": 2.5}), part_id="after")
    write_rows(lake, MODEL, _rows(2, 40, lambda i: {"b": 3.5, "a": float(i)}), part_id="later")
    compact(lake, MODEL, now=NOW)
    since = T0 + timedelta(minutes=30)  # hour 06 is read, none of its rows is in the window
    window = read_window(lake, MODEL, since=since)
    _assert_same(window, _json_path(lake, since=since))
    assert list(window.frame.columns[:2]) == ["a", "b"] and len(window.frame) == 80


def test_rows_whose_times_tie_are_ordered_by_request_id_and_row(tmp_path: Path) -> None:
    lake = str(tmp_path)
    ts = T0 + timedelta(minutes=1)
    rows = [LakeRow(rid, ts, "3", 200, 1.0, row=row, inputs={"a": i}) for i, (rid, row) in
            enumerate([("b", 1), ("b", 0), ("a", 0), ("c", 0)])]  # fmt: skip
    write_rows(lake, MODEL, rows, part_id="ties")
    compact(lake, MODEL, now=NOW)
    write_rows(lake, MODEL, list(reversed(rows)), part_id="ties")  # a replay after compaction: superseded
    window = read_window(lake, MODEL)
    _assert_same(window, _json_path(lake))
    assert list(zip(window.frame["_request_id"], window.frame["_row"], strict=True)) == [
        ("a", 0), ("b", 0), ("b", 1), ("c", 0)
    ]  # fmt: skip
    unsorted = str(tmp_path / "unsorted")
    write_rows(unsorted, MODEL, rows, part_id="ties")  # parts: not sorted by anyone yet
    _assert_same(_typed_path(unsorted), _json_path(unsorted))
    assert _typed_path(unsorted).frame["_request_id"].tolist() == ["a", "b", "b", "c"]


def test_a_feature_named_like_a_metadata_column_is_dropped_as_the_json_path_drops_it(tmp_path: Path) -> None:
    lake = str(tmp_path)
    write_rows(lake, MODEL, _rows(0, 30, lambda i: {"_row": 7, "a": i * 0.5, "_prediction": 1}), part_id="one")
    compact(lake, MODEL, now=NOW)
    window = read_window(lake, MODEL)
    _assert_same(_typed_path(lake), _json_path(lake))
    assert [c for c in window.frame.columns if not c.startswith("_")] == ["a"]
    assert window.frame["_row"].tolist() == [i % 2 for i in range(30)]
