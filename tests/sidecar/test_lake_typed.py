"""Typed features at compaction (``monitors._lake_typed``): the window read through the typed columns is the frame
the JSON path builds, and whatever could render differently is read as JSON."""

from __future__ import annotations

import json
from datetime import timedelta
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
from tests.sidecar._lake_rows import NOW, T0, hour_rows

MODEL = "m"


def _rows(hour: int, count: int, inputs: Any, *, prefix: str = "r", malformed_every: int = 0) -> list[LakeRow]:
    record = inputs if callable(inputs) else lambda i: inputs
    return hour_rows(hour, count, inputs=record, prediction=lambda i: i % 3, row=lambda i: i % 2, prefix=prefix,
                     malformed_every=malformed_every)  # fmt: skip


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
        ("booleans", lambda i: {"age": i, "ok": True}),
        ("dates as text", lambda i: {"age": i, "day": "2026-03-01"}),  # arrow would read a timestamp
        ("a number or a string", lambda i: {"a": i if i % 2 else "x"}),
        ("integers with gaps", lambda i: {"a": i if i % 7 else None, "b": 1.5}),
        ("text that is always null", lambda i: {"a": i, "b": None}),
        ("non-ASCII text (stored escaped)", lambda i: {"a": i, "b": "médical"}),
        ("nested", lambda i: {"age": i, "tags": [1, 2]}),
        ("keys in another order", lambda i: {"a": i, "b": 1.0} if i % 2 else {"b": 1.0, "a": i}),
        ("a key now and then", lambda i: {"a": i, "b": 1.0} if i % 2 else {"a": i}),
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


def _credit_risk(i: int) -> dict[str, Any]:
    """The credit-risk model's request rows (text categories; nulls in the nullable columns)."""
    return _CREDIT_RISK[i % len(_CREDIT_RISK)]


def _credit_risk_rows() -> list[dict[str, Any]]:
    from features.columns import ENTITY_KEY, LABEL, TIMESTAMP
    from features.generator import generate

    frame = generate("missing-spike", rows=300, seed=4).drop(columns=[ENTITY_KEY, TIMESTAMP, LABEL])
    return [json.loads(row) for row in frame.to_json(orient="records", lines=True).splitlines()]


_CREDIT_RISK = _credit_risk_rows()


@pytest.mark.parametrize(
    ("name", "inputs"),
    [
        ("text values", lambda i: {"age": i, "purpose": ("car", "home", "medical")[i % 3]}),
        ("text with gaps", lambda i: {"age": i, "purpose": "car" if i % 5 else None}),
        ("decimals with gaps", lambda i: {"a": i + 0.5 if i % 7 else None, "b": 1.5}),
        ("credit-risk requests", _credit_risk),
    ],
)
@pytest.mark.parametrize("options", WINDOWS, ids=lambda o: ",".join(o) or "all")
def test_text_features_and_gaps_read_typed_as_the_json_path_reads_them(
    tmp_path: Path, name: str, inputs: Any, options: dict[str, Any]
) -> None:
    lake = str(tmp_path)
    _write_hours(lake, inputs=inputs, malformed_every=40)
    compact(lake, MODEL, now=NOW)
    assert all(FEATURES_COLUMN in schema.names for schema in _compacted_schemas(lake)), name
    typed = _typed_path(lake, **options)
    _assert_same(typed, _json_path(lake, **options))
    _assert_same(read_window(lake, MODEL, **options), typed)
    text = [column for column in typed.frame.columns if column in ("purpose", "employment_length", "term")]
    assert all(typed.frame[column].dtype == object for column in text)
    assert text or typed.frame["a"].dtype == "float64"  # the decimals with gaps: float64 with NaN, as from_records


def test_credit_risk_requests_are_stored_typed_with_text_as_dictionary_pages(tmp_path: Path) -> None:
    lake = str(tmp_path)
    _write_hours(lake, inputs=_credit_risk, hours=2, count=300)
    compact(lake, MODEL, now=NOW)
    (path, *_) = sorted(Path(lake).rglob("compacted-*.parquet"))
    metadata = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {metadata.column(i).path_in_schema: metadata.column(i).encodings for i in range(metadata.num_columns)}
    assert "RLE_DICTIONARY" in encodings[f"{FEATURES_COLUMN}.purpose"]
    assert "RLE_DICTIONARY" not in encodings[f"{FEATURES_COLUMN}.loan_amount"]
    children = {child.name: child.type for child in pq.read_schema(path).field(FEATURES_COLUMN).type}
    assert children["purpose"] == pa.dictionary(pa.int32(), pa.string())  # read back as categories, not strings
    assert children["loan_amount"] == pa.float64()
    frame = _typed_path(lake).frame
    expected = pd.DataFrame.from_records([_credit_risk(i) for _hour in range(2) for i in range(300)])
    pd.testing.assert_frame_equal(frame[list(expected.columns)], expected)
    assert frame["annual_income"].isna().any() and frame["employment_length"].isna().any()  # the gaps came through


def test_text_with_many_values_is_stored_as_strings_and_read_typed(tmp_path: Path) -> None:
    lake = str(tmp_path)
    rows = [LakeRow(f"r{i:05d}", T0 + timedelta(seconds=2 * i), "3", 200, 1.5, prediction=i % 2,
                    inputs={"age": i, "customer": f"c-{i}", "purpose": "car"}) for i in range(1500)]  # fmt: skip
    write_rows(lake, MODEL, rows[:700], part_id="seg-a")
    write_rows(lake, MODEL, rows[700:], part_id="seg-b")
    compact(lake, MODEL, now=NOW)
    (path, *_) = sorted(Path(lake).rglob("compacted-*.parquet"))
    children = {child.name: child.type for child in pq.read_schema(path).field(FEATURES_COLUMN).type}
    assert children["customer"] == pa.string() and pa.types.is_dictionary(children["purpose"])  # 1,500 > 1,024
    typed = _typed_path(lake, last_rows=2000)
    _assert_same(typed, _json_path(lake, last_rows=2000))
    assert typed.frame["customer"].dtype == object and typed.frame["customer"].iloc[-1] == "c-1499"


def test_a_text_feature_stored_as_categories_in_one_hour_and_strings_in_another_reads_typed(tmp_path: Path) -> None:
    lake = str(tmp_path)
    for hour, distinct in ((0, 1500), (1, 3)):  # past the categories' limit in the first hour only
        rows = [LakeRow(f"r{hour}-{i:05d}", T0 + timedelta(hours=hour, seconds=2 * i), "3", 200, 1.5, prediction=1,
                        inputs={"x": float(i), "shop": f"s-{i % distinct}"}) for i in range(1500)]  # fmt: skip
        write_rows(lake, MODEL, rows, part_id=f"seg-{hour}")
    compact(lake, MODEL, now=NOW)
    kinds = [pq.read_schema(path).field(FEATURES_COLUMN).type.field("shop").type for path in
             sorted(Path(lake).rglob("compacted-*.parquet"))]  # fmt: skip
    assert kinds == [pa.string(), pa.dictionary(pa.int32(), pa.string())]
    for options in ({}, {"last_rows": 2000}, {"since": T0 + timedelta(minutes=40)}):
        typed = _typed_path(lake, **options)
        _assert_same(typed, _json_path(lake, **options))
    assert typed.frame["shop"].dtype == object


def test_an_hour_of_several_row_groups_reads_its_categories_group_by_group(tmp_path: Path) -> None:
    """Compaction writes 65,536 rows a row group; arrow reads a nested dictionary column into one chunk only."""
    lake, count = str(tmp_path), 70_000
    base = T0 + timedelta(hours=1)
    rows = [LakeRow(f"r{i:06d}", base + timedelta(milliseconds=50 * i), "3", 200, 1.5,
                    inputs={"x": float(i), "purpose": ("car", "home", None)[i % 3]}, prediction=i % 2)
            for i in range(count)]  # fmt: skip
    for part in range(0, count, 10_000):
        write_rows(lake, MODEL, rows[part : part + 10_000], part_id=f"seg-{part}")
    compact(lake, MODEL, now=NOW)
    (path,) = sorted(Path(lake).rglob("compacted-*.parquet"))
    assert pq.ParquetFile(path).num_row_groups == 2
    typed = _typed_path(lake)
    _assert_same(typed, _json_path(lake))
    assert len(typed.frame) == count and typed.frame["purpose"].tolist()[:4] == ["car", "home", None, "car"]


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
