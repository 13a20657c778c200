"""The lake layout, idempotent writes and read_window: what the drift monitor relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from driftloop.errors import ConfigError
from monitors.lake import LakeRow, list_parts, partition_dir, read_window, write_frame, write_rows

T0 = datetime(2026, 3, 1, 9, 58, tzinfo=UTC)


def _rows(count: int, start: datetime = T0, step: timedelta = timedelta(minutes=1), prefix: str = "r") -> list[LakeRow]:
    return [
        LakeRow(
            request_id=f"{prefix}{i}",
            ts=start + i * step,
            model_version="3",
            status=200,
            latency_ms=1.5,
            inputs={"age": 20 + i, "income": 1000.0 * i, "purpose": "car" if i % 2 else "home"},
            prediction=i / 10,
        )
        for i in range(count)
    ]


def test_rows_land_in_hour_partitions_and_read_back(tmp_path: Path) -> None:
    written = write_rows(str(tmp_path), "credit-risk", _rows(5), part_id="seg-1")
    assert [Path(p).relative_to(tmp_path).as_posix() for p in written] == [
        "model=credit-risk/date=2026-03-01/hour=09/part-seg-1.parquet",
        "model=credit-risk/date=2026-03-01/hour=10/part-seg-1.parquet",
    ]
    window = read_window(str(tmp_path), "credit-risk")
    frame = window.frame
    assert list(frame.columns) == [
        "age", "income", "purpose", "_request_id", "_ts", "_model_version", "_status", "_latency_ms", "_row",
        "_prediction"
    ]  # fmt: skip
    assert frame["_request_id"].tolist() == [f"r{i}" for i in range(5)]
    assert frame["age"].tolist() == [20, 21, 22, 23, 24]
    assert frame["_prediction"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert frame["_ts"].iloc[0] == pd.Timestamp(T0)
    assert window.columns_seen == {"age": "integer", "income": "floating", "purpose": "string"}
    assert len(window.malformed) == 0
    assert window.files_read == 2


def test_rewriting_a_part_id_replaces_instead_of_duplicating(tmp_path: Path) -> None:
    write_rows(str(tmp_path), "m", _rows(4), part_id="seg-1")
    write_rows(str(tmp_path), "m", _rows(4), part_id="seg-1")
    write_rows(str(tmp_path), "m", _rows(2, prefix="other"), part_id="seg-2")
    frame = read_window(str(tmp_path), "m").frame
    assert len(frame) == 6
    assert not frame.duplicated(["_request_id"]).any()


def test_last_rows_and_since_select_the_newest_records(tmp_path: Path) -> None:
    write_rows(str(tmp_path), "m", _rows(6, step=timedelta(hours=1)), part_id="a")
    last = read_window(str(tmp_path), "m", last_rows=2)
    assert last.frame["_request_id"].tolist() == ["r4", "r5"]
    assert last.files_read < 6  # older hour partitions were never opened
    recent = read_window(str(tmp_path), "m", since=T0 + timedelta(hours=3, minutes=30))
    assert recent.frame["_request_id"].tolist() == ["r4", "r5"]
    naive = read_window(str(tmp_path), "m", since=(T0 + timedelta(hours=4)).replace(tzinfo=None))
    assert naive.frame["_request_id"].tolist() == ["r4", "r5"]
    both = read_window(str(tmp_path), "m", since=T0 + timedelta(hours=1), last_rows=3)
    assert both.frame["_request_id"].tolist() == ["r3", "r4", "r5"]


def test_malformed_requests_are_kept_apart_and_counted(tmp_path: Path) -> None:
    bad = LakeRow("bad-1", T0, "3", 400, 0.7, error="body is not valid JSON", raw="{oops")
    write_rows(str(tmp_path), "m", [*_rows(2), bad], part_id="x")
    window = read_window(str(tmp_path), "m")
    assert len(window.frame) == 2
    assert window.malformed[["_request_id", "_status", "_error", "_raw"]].to_dict("records") == [
        {"_request_id": "bad-1", "_status": 400, "_error": "body is not valid JSON", "_raw": "{oops"}
    ]


def test_schema_change_shows_in_columns_seen(tmp_path: Path) -> None:
    changed = LakeRow(
        "c", T0 + timedelta(minutes=5), "3", 400, 1.0, inputs={"age": "thirty", "income": 5.0, "new_col": True}
    )
    write_rows(str(tmp_path), "m", [*_rows(2), changed], part_id="x")
    window = read_window(str(tmp_path), "m")
    assert window.columns_seen["age"] == "mixed-integer"
    assert window.columns_seen["new_col"] == "boolean"
    assert window.frame["_status"].tolist() == [200, 200, 400]


def test_missing_lake_reads_empty_with_the_metadata_columns(tmp_path: Path) -> None:
    window = read_window(str(tmp_path / "nothing-yet"), "m", last_rows=10)
    assert window.frame.empty and window.malformed.empty
    assert {"_request_id", "_ts", "_status"} <= set(window.frame.columns)


def test_half_written_files_are_invisible(tmp_path: Path) -> None:
    write_rows(str(tmp_path), "m", _rows(1), part_id="x")
    folder = Path(partition_dir(str(tmp_path), "m", T0))
    (folder / ".tmp-deadbeef.parquet").write_bytes(b"PAR1 truncated")
    assert len(list_parts(str(tmp_path), "m")) == 1
    assert len(read_window(str(tmp_path), "m").frame) == 1


def test_write_frame_and_any_fsspec_uri() -> None:
    features = pd.DataFrame({"age": [30, 40], "purpose": ["car", "tv"]})
    write_frame("memory://lake-test", "m", features, ts=T0, predictions=[0.2, 0.7], model_version="5")
    window = read_window("memory://lake-test", "m")
    assert window.frame[["age", "purpose", "_model_version", "_prediction"]].to_dict("records") == [
        {"age": 30, "purpose": "car", "_model_version": "5", "_prediction": 0.2},
        {"age": 40, "purpose": "tv", "_model_version": "5", "_prediction": 0.7},
    ]


def test_bad_names_are_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot name a lake partition"):
        write_rows(str(tmp_path), "../escape", _rows(1), part_id="x")
    with pytest.raises(ValueError, match="plain file-name token"):
        write_rows(str(tmp_path), "m", _rows(1), part_id="a/b")


def test_a_bounded_read_of_a_crowded_hour_opens_the_newest_files_and_returns_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short seals under steady traffic put hundreds of files in an hour: `last_rows` reads the newest-modified
    ones first and stops once the rows captured after the oldest one read are enough — same rows as a full read."""
    import os
    import random

    import monitors._lake_hours

    monkeypatch.setattr(monitors._lake_hours, "_NEWEST_FIRST_ABOVE", 8)  # a crowded hour, at the scale of a test
    lake, hour = str(tmp_path), datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    order = list(range(48))
    random.Random(7).shuffle(order)  # written out of order (a replay after a crash writes old segments late)
    for part in order:
        rows = _rows(5, start=hour + timedelta(seconds=part * 10), step=timedelta(seconds=1), prefix=f"p{part}-")
        (path,) = write_rows(lake, "m", rows, part_id=f"seg-{part:04d}")
        written = (hour + timedelta(seconds=part * 10 + 5)).timestamp()  # a file is written after its captures
        os.utime(path, (written, written))
    full = read_window(lake, "m").frame
    for last in (1, 20, 100, 999):
        bounded = read_window(lake, "m", last_rows=last)
        assert bounded.frame["_request_id"].tolist() == full["_request_id"].tail(last).tolist()
    assert read_window(lake, "m", last_rows=20).files_read == 8  # the newest batch was enough
    assert read_window(lake, "m", last_rows=999).files_read == 48


@pytest.mark.parametrize(
    "record",
    [
        lambda i: {"age": 20 + i % 50, "income": 1000.0 * i / 7, "score": i if i % 2 else i + 0.5},  # arrow path
        lambda i: {"age": 30, **({"income": 1.5 * i} if i % 3 else {})},  # missing numbers: NaN either way
        lambda i: {"age": 30, "purpose": "car" if i % 2 else "home"},  # strings: the Python path
        lambda i: {"id": 2**70 + i if i == 5 else i, "x": 0.1},  # an integer beyond int64: kept exact
        lambda i: {"age": 30 if i < 2500 else "thirty"},  # a type changing across records
    ],
)
def test_big_windows_decode_to_the_same_frame_as_json_loads(tmp_path: Path, record: Any) -> None:
    rows = [
        LakeRow(f"r{i:05d}", T0 + timedelta(milliseconds=i), "3", 200, 1.0, inputs=record(i), prediction=i % 2)
        for i in range(3000)
    ]
    write_rows(str(tmp_path), "m", rows, part_id="seg-1")
    frame = read_window(str(tmp_path), "m").frame
    expected = pd.DataFrame.from_records([row.inputs for row in rows])
    pd.testing.assert_frame_equal(frame[list(expected.columns)], expected, check_exact=True)
    assert frame["_prediction"].tolist() == [i % 2 for i in range(3000)]


@pytest.mark.parametrize(
    "prediction",
    [lambda i: i % 2, lambda i: i / 7, lambda i: None if i % 5 == 0 else i, lambda i: "yes", lambda i: [0.2, 0.8]],
)
def test_big_windows_decode_predictions_as_json_loads_and_to_numeric_would(tmp_path: Path, prediction: Any) -> None:
    rows = [
        LakeRow(f"r{i:05d}", T0 + timedelta(milliseconds=i), "3", 200, 1.0, inputs={"x": 0.5}, prediction=prediction(i))
        for i in range(3000)
    ]
    write_rows(str(tmp_path), "m", rows, part_id="seg-1")
    got = read_window(str(tmp_path), "m").frame["_prediction"]
    values = pd.Series([prediction(i) for i in range(3000)], dtype=object)
    numeric = pd.to_numeric(values, errors="coerce")
    expected = numeric if numeric.notna().sum() == values.notna().sum() else values
    pd.testing.assert_series_equal(got, expected, check_exact=True, check_names=False)
