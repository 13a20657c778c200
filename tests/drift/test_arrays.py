"""The drift CLI's pandas-free path: numeric parquet read straight into numpy gives pandas' exact answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitors.drift import build_profile, compute_drift
from monitors.drift._arrays import ArrayFrame, _chunk_values, read_parquet_arrays
from monitors.drift._compute import DriftOptions
from monitors.drift._inputs import read_table

ROOT = Path(__file__).resolve().parents[2]


def _mixed(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.normal(100 + shift, 10, rows)
    amount[::97] = np.nan
    amount[5] = np.inf
    with_nulls = rng.integers(0, 1000, rows).astype(np.float64)  # what pandas reads an integer column with nulls as
    with_nulls[::13] = np.nan
    return pd.DataFrame(
        {
            "amount": amount,
            "age": rng.integers(18, 90, rows),  # integer, > 10 values: numerical
            "segment": rng.integers(0, 4, rows).astype(np.int32),  # integer, <= 10 values: categorical
            "rooms": rng.integers(0, 200, rows).astype(np.uint8),
            "flag": rng.random(rows) < 0.3 + shift / 100,
            "visits": with_nulls,
            "small": rng.choice([0.5, 1.5, 2.5], rows),  # a float column with few values: Jensen-Shannon
        }
    )


def _profiles_equal(left, right) -> None:
    assert left.rows == right.rows and left.skipped == right.skipped and list(left.columns) == list(right.columns)
    for name, column in left.columns.items():
        other = right.columns[name]
        for attribute in ("kind", "dtype", "rows", "nulls", "n_unique", "std", "categories", "counts"):
            assert getattr(column, attribute) == getattr(other, attribute), (name, attribute)
            assert [type(value) for value in column.categories] == [type(value) for value in other.categories]
        if column.sorted_values is not None:
            assert column.sorted_values.dtype == other.sorted_values.dtype
            assert np.array_equal(column.sorted_values, other.sorted_values)


@pytest.mark.parametrize(("reference_rows", "current_rows"), [(5000, 3000), (800, 800)])  # big and small reference
def test_numpy_columns_give_the_same_profile_and_scores_as_pandas(tmp_path, reference_rows, current_rows):
    _mixed(reference_rows, 1).to_parquet(tmp_path / "r.parquet", row_group_size=1500)  # several chunks per column
    _mixed(current_rows, 2, shift=5.0).to_parquet(tmp_path / "c.parquet")
    arrays = {side: read_table(tmp_path / f"{side}.parquet", frame=False) for side in "rc"}
    frames = {side: read_table(tmp_path / f"{side}.parquet") for side in "rc"}
    assert all(isinstance(table, ArrayFrame) for table in arrays.values())
    assert all(isinstance(table, pd.DataFrame) for table in frames.values())

    from_arrays, from_frame = build_profile(arrays["r"]), build_profile(frames["r"])
    _profiles_equal(from_arrays, from_frame)
    assert from_arrays.columns["segment"].kind == "categorical" and from_arrays.columns["age"].kind == "numerical"
    assert from_arrays.columns["amount"].nulls > 0

    for options in (DriftOptions(), DriftOptions(method="jensenshannon"), DriftOptions(num_method="ks")):
        expected = compute_drift(from_frame, frames["c"], options).to_dict()
        assert compute_drift(from_arrays, arrays["c"], options).to_dict() == expected  # bit for bit
    # declared kinds go through the same code on both paths
    kinds = {"age": "categorical", "flag": "numerical"}
    _profiles_equal(build_profile(arrays["r"], kinds), build_profile(frames["r"], kinds))
    assert compute_drift(build_profile(arrays["r"], kinds), arrays["c"]).to_dict() == (
        compute_drift(build_profile(frames["r"], kinds), frames["c"]).to_dict()
    )


def test_sliced_arrow_arrays_keep_their_offsets():
    # parquet chunks start at offset 0; arrow slices do not, and bit-packed validity and booleans must follow
    integers = pa.array([1, None, 3, 4, None, 6, 7, 8, 9, 10, None, 12]).slice(3, 8)
    assert np.array_equal(
        _chunk_values(integers, "int64"), np.array([4, np.nan, 6, 7, 8, 9, 10, np.nan]), equal_nan=True
    )
    booleans = pa.array([True, False, False, True, True, False, True, False, True, True, False]).slice(5, 5)
    assert _chunk_values(booleans, "bool").tolist() == [False, True, False, True, True]
    doubles = pa.array(np.arange(20, dtype=np.float64)).slice(17)
    assert _chunk_values(doubles, "double").tolist() == [17.0, 18.0, 19.0]
    assert _chunk_values(pa.array([True, None]), "bool") is None  # pandas decides what a bool column with nulls is


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"x": np.arange(20, dtype=np.float32)}),  # float32: pandas' own std arithmetic
        pd.DataFrame({"x": np.arange(20.0), "name": ["a", "b"] * 10}),  # strings
        pd.DataFrame({"x": np.arange(20.0)}, index=np.arange(100, 120)),  # an index pandas would not return
        pd.DataFrame({0: np.arange(20.0)}),  # a column label pandas turns back into an int
        pd.DataFrame({"x": np.arange(20.0), "when": pd.date_range("2026-01-01", periods=20)}),
        pd.DataFrame({"flag": pd.array([True, None] * 10, dtype="boolean")}),
    ],
    ids=["float32", "strings", "index", "int-label", "dates", "bool-with-nulls"],
)
def test_anything_but_plain_numbers_is_left_to_pandas(tmp_path, frame):
    frame.to_parquet(tmp_path / "data.parquet")
    assert read_parquet_arrays(tmp_path / "data.parquet") is None
    assert isinstance(read_table(tmp_path / "data.parquet", frame=False), pd.DataFrame)


def test_csv_and_directories_are_read_by_pandas(tmp_path):
    frame = pd.DataFrame({"x": np.arange(20.0)})
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "parts").mkdir()
    frame.to_parquet(tmp_path / "parts" / "part-0.parquet")
    assert isinstance(read_table(tmp_path / "data.csv", frame=False), pd.DataFrame)
    assert isinstance(read_table(tmp_path / "parts", frame=False), pd.DataFrame)


@pytest.mark.parametrize("integer_type", ["int8", "int16", "int32", "int64", "uint8", "uint32", "uint64"])
def test_parquet_written_without_pandas_is_read_as_pandas_reads_it(tmp_path, integer_type):
    # an integer column with nulls (no pandas metadata to say otherwise): pandas reads float64 with NaN, any width
    nullable = pa.array([None if i % 7 == 0 else i for i in range(50)], type=integer_type)
    table = pa.table({"x": np.arange(50.0), "n": np.arange(50), "gaps": nullable, "b": np.arange(50) % 3 == 0})
    pq.write_table(table, tmp_path / "plain.parquet", row_group_size=20)
    arrays = read_parquet_arrays(tmp_path / "plain.parquet")
    assert arrays is not None and len(arrays) == 50 and arrays.columns == ["x", "n", "gaps", "b"]
    frame = pd.read_parquet(tmp_path / "plain.parquet")
    for name in arrays.columns:
        assert arrays[name].dtype == frame[name].dtype, name
        assert np.array_equal(arrays[name], frame[name].to_numpy(), equal_nan=arrays[name].dtype.kind == "f"), name
    _profiles_equal(build_profile(arrays), build_profile(frame))


def test_nullable_pandas_dtypes_are_left_to_pandas(tmp_path):
    # pandas reads these back as extension columns, which the profile treats by their dtype: keep that path
    for dtype in ("Int64", "Float64"):
        pd.DataFrame({"x": pd.array([1, 2, None], dtype=dtype)}).to_parquet(tmp_path / f"{dtype}.parquet")
        assert read_parquet_arrays(tmp_path / f"{dtype}.parquet") is None


def test_the_cli_on_numeric_parquet_never_imports_pandas_and_answers_as_the_library(tmp_path):
    reference, current = _mixed(3000, 3).drop(columns=["visits"]), _mixed(2000, 4, shift=8.0).drop(columns=["visits"])
    reference.to_parquet(tmp_path / "r.parquet")
    current.to_parquet(tmp_path / "c.parquet")
    program = (
        "import json, sys\n"
        "from driftloop.cli import main\n"
        f"sys.argv = ['driftloop', 'drift', '-r', {str(tmp_path / 'r.parquet')!r}, '-c', {str(tmp_path / 'c.parquet')!r},"
        " '--json']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print(json.dumps({'pandas imported': 'pandas' in sys.modules}))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    document, marker = completed.stdout.rsplit("\n{", 1)
    assert json.loads("{" + marker) == {"pandas imported": False}
    expected = compute_drift(build_profile(reference), current).to_dict()
    assert json.loads(document) == json.loads(json.dumps(expected))
    assert json.loads(document)["columns"]["amount"]["drifted"] is True  # the shifted column drifted: a real answer
