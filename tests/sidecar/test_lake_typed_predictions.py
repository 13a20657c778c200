"""Typed predictions, skipped error columns and arrow-backed text (``monitors._lake_typed``): what makes reading
every row of a day fast must not change a single value, dtype or row of the window the JSON path returns."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitors import lake as lake_module
from monitors._lake_partitions import filesystem
from monitors._lake_typed import (
    FEATURES_COLUMN,
    PREDICTION_VALUES_COLUMN,
    _may_hold_malformed,
    typed_predictions,
)
from monitors.feedback.quality import join_outcomes
from monitors.lake import TEXT_COLUMNS, TEXT_DTYPE, LakeRow, LakeWindow, read_window, write_rows
from monitors.lake_compaction import compact
from tests.sidecar._lake_rows import NOW, T0, hour_rows

MODEL = "m"


def _rows(hour: int, count: int, prediction: Callable[[int], Any], *, malformed_every: int = 0) -> list[LakeRow]:
    return hour_rows(hour, count, inputs=lambda i: {"age": 20 + i % 50, "income": 1000.5 * i}, prediction=prediction,
                     malformed_every=malformed_every)  # fmt: skip


def _write(lake: str, hour: int, count: int, prediction: Callable[[int], Any], **kwargs: Any) -> None:
    rows = _rows(hour, count, prediction, **kwargs)
    for part in range(0, count, 50):
        write_rows(lake, MODEL, rows[part : part + 50], part_id=f"seg-{hour}-{part}")


def _path(lake: str, *, typed: bool, since: datetime | None = None, last_rows: int | None = None) -> LakeWindow:
    fs, root = filesystem(lake)
    return lake_module._read_window(fs, root, MODEL, since=since, last_rows=last_rows, typed=typed)


def _assert_same(typed: LakeWindow, reference: LakeWindow) -> None:
    pd.testing.assert_frame_equal(typed.frame, reference.frame)
    pd.testing.assert_frame_equal(typed.malformed, reference.malformed)
    assert typed.columns_seen == reference.columns_seen


def _schemas(lake: str) -> list[pa.Schema]:
    return [pq.read_schema(p) for p in sorted(Path(lake).rglob("compacted-*.parquet"))]


PREDICTIONS: list[tuple[str, Callable[[int], Any], str | None]] = [
    ("integers", lambda i: i % 3, "int64"),
    ("probabilities", lambda i: round(i / 301, 4), "double"),
    ("exponents", lambda i: 1e-05 * (i + 1), "double"),
    ("integers with gaps", lambda i: None if i % 9 == 0 else i % 2, "int64"),
    ("labels", lambda i: "yes" if i % 2 else "no", None),
    ("integers and decimals", lambda i: 1 if i % 2 else 0.5, None),
    ("lists", lambda i: [0.1, 0.9], None),
    ("NaN", lambda i: float("nan") if i == 5 else 0.5, None),
    ("an integer beyond int64", lambda i: 2**70 if i == 5 else i, None),
]
WINDOWS = [{}, {"last_rows": 2000}, {"last_rows": 7}, {"since": T0 + timedelta(hours=1, minutes=20)}]


@pytest.mark.parametrize(("name", "prediction", "stored"), PREDICTIONS, ids=[p[0] for p in PREDICTIONS])
@pytest.mark.parametrize("options", WINDOWS, ids=lambda o: ",".join(o) or "all")
def test_predictions_are_typed_only_when_every_cut_reads_as_the_json_path_reads_it(
    tmp_path: Path, name: str, prediction: Callable[[int], Any], stored: str | None, options: dict[str, Any]
) -> None:
    lake = str(tmp_path)
    for hour in range(3):
        _write(lake, hour, 300, prediction, malformed_every=40)
    compact(lake, MODEL, now=T0 + timedelta(hours=2, minutes=50))  # hours 0 and 1 compacted; hour 2 stays parts
    schemas = _schemas(lake)
    assert len(schemas) == 2 and all(FEATURES_COLUMN in schema.names for schema in schemas)
    types = {str(s.field(PREDICTION_VALUES_COLUMN).type) for s in schemas if PREDICTION_VALUES_COLUMN in s.names}
    assert types == ({stored} if stored else set()), name
    typed = _path(lake, typed=True, **options)  # the features are typed in every case: no fallback to JSON here
    _assert_same(typed, _path(lake, typed=False, **options))
    _assert_same(read_window(lake, MODEL, **options), typed)


def test_an_integer_hour_and_a_decimal_hour_read_as_json_so_a_cut_to_the_integers_stays_int64(tmp_path: Path) -> None:
    lake = str(tmp_path)
    _write(lake, 0, 100, lambda i: round(i / 7, 3))
    _write(lake, 1, 100, lambda i: i % 2)
    compact(lake, MODEL, now=NOW)
    assert sorted(str(s.field(PREDICTION_VALUES_COLUMN).type) for s in _schemas(lake)) == ["double", "int64"]
    since = T0 + timedelta(hours=1)
    for options in ({}, {"since": since}):
        window = read_window(lake, MODEL, **options)
        _assert_same(window, _path(lake, typed=False, **options))
    assert read_window(lake, MODEL, since=since).frame["_prediction"].dtype == "int64"
    assert read_window(lake, MODEL).frame["_prediction"].dtype == "float64"


def test_typed_predictions_follow_json_loads_and_to_numeric() -> None:
    assert typed_predictions(pa.array(["1", None, "-20"])).to_pylist() == [1, None, -20]
    assert typed_predictions(pa.array(["0.25", "1e-05", "-3.5E+20"])).to_pylist() == [0.25, 1e-05, -3.5e20]
    assert pa.types.is_null(typed_predictions(pa.array([None, None], pa.string())).type)
    for texts in (["1", "0.5"], ['"yes"'], ["NaN"], ["Infinity"], ["true"], ["[1]"], [str(2**70)], ["01"]):
        assert typed_predictions(pa.array(texts)) is None, texts


def test_a_file_without_malformed_requests_is_read_without_its_error_columns(tmp_path: Path) -> None:
    clean, dirty = str(tmp_path / "clean"), str(tmp_path / "dirty")
    _write(clean, 0, 200, lambda i: i % 2)
    _write(dirty, 0, 200, lambda i: i % 2, malformed_every=40)
    for lake in (clean, dirty):
        compact(lake, MODEL, now=NOW)
    (clean_file,) = Path(clean).rglob("compacted-*.parquet")
    (dirty_file,) = Path(dirty).rglob("compacted-*.parquet")
    assert not _may_hold_malformed(pq.read_metadata(clean_file))
    assert _may_hold_malformed(pq.read_metadata(dirty_file))
    assert len(read_window(dirty, MODEL).malformed) == 5 and read_window(clean, MODEL).malformed.empty
    for lake in (clean, dirty):
        _assert_same(read_window(lake, MODEL), _path(lake, typed=False))


def test_request_ids_and_versions_are_arrow_backed_text_in_both_paths(tmp_path: Path) -> None:
    lake = str(tmp_path)
    _write(lake, 0, 200, lambda i: i % 2, malformed_every=40)
    _write(lake, 3, 100, lambda i: i % 2)  # the open hour: parts
    compact(lake, MODEL, now=NOW)
    for window in (read_window(lake, MODEL), _path(lake, typed=False)):
        assert {str(window.frame[name].dtype) for name in TEXT_COLUMNS if name in window.frame} == {str(TEXT_DTYPE)}
        assert all(window.malformed[name].dtype == TEXT_DTYPE for name in TEXT_COLUMNS)
        assert window.frame["_request_id"].iloc[0] == "r0-0" and window.malformed["_raw"].iloc[0] == "{oops"
    # what reads the ids downstream: the quality join with outcomes stored as Python strings
    window = read_window(lake, MODEL)
    outcomes = pd.DataFrame({"_request_id": ["r0-0", "r0-1", "r3-2"], "_row": [0, 0, 0], "outcome": [1, 0, 1]})
    outcomes = outcomes.astype({"_request_id": object, "_row": "int64", "outcome": "int64"})
    joined = join_outcomes(window.frame, outcomes)
    assert sorted(joined["_request_id"]) == ["r0-0", "r0-1", "r3-2"] and joined["outcome"].tolist() == [1, 0, 1]


def test_a_bounded_read_of_an_hour_of_parts_and_a_compacted_file_joins_texts_and_typed_values(tmp_path: Path) -> None:
    """More than 64 files in an hour: the newest are read first, in batches; parts (text predictions) and the
    compacted file (typed values) end up in one table."""
    lake = str(tmp_path)
    _write(lake, 0, 100, lambda i: i % 2)
    compact(lake, MODEL, now=NOW)
    late = [LakeRow(f"late-{k}", T0 + timedelta(minutes=50, seconds=k), "3", 200, 1.0, inputs={"age": k,
            "income": 0.5}, prediction=k % 2) for k in range(80)]  # fmt: skip
    for k, row in enumerate(late):  # late writes into the compacted hour: live parts beside the compacted file
        (path,) = write_rows(lake, MODEL, [row], part_id=f"late-{k:03d}")
        os.utime(path, (NOW.timestamp() + k, NOW.timestamp() + k))
    window = read_window(lake, MODEL, last_rows=150)
    assert window.files_read == 81
    _assert_same(window, _path(lake, typed=False, last_rows=150))
    assert len(window.frame) == 150 and window.frame["_prediction"].dtype == "int64"
