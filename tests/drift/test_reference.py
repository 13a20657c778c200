"""The reference profile: what it keeps, its on-disk format, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from driftloop.errors import DataContractError, NotFoundError
from monitors.drift import ReferenceProfile, build_profile
from monitors.drift.reference import PROFILE_FILE, PROFILE_VERSION


@pytest.fixture
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    size = 300
    return pd.DataFrame(
        {
            "income": rng.lognormal(10, 1, size),
            "age": rng.integers(18, 90, size),
            "children": rng.integers(0, 4, size),
            "purpose": rng.choice(["car", "house", "education"], size),
            "defaulted_before": rng.random(size) < 0.1,
            "customer_id": [f"c{i}" for i in range(size)],  # text: unique per row
            "_request_id": range(size),  # payload metadata
        }
    )


def test_kinds_follow_evidently_inference(reference):
    profile = build_profile(reference)
    kinds = {name: column.kind for name, column in profile.columns.items()}
    assert kinds == {
        "income": "numerical",
        "age": "numerical",  # integer with more than 10 distinct values
        "children": "categorical",  # integer with at most 10 distinct values
        "purpose": "categorical",
        "defaulted_before": "categorical",
    }
    assert "customer_id" in profile.skipped and "text" in profile.skipped["customer_id"]
    assert "_request_id" not in profile.columns and "_request_id" not in profile.skipped


def test_declared_types_override_inference(reference):
    profile = build_profile(reference, {"children": "num", "age": "categorical"})
    assert profile.columns["children"].kind == "numerical"
    assert profile.columns["age"].kind == "categorical"


def test_numerical_profile_keeps_sorted_finite_values_and_std(reference):
    frame = reference.copy()
    frame.loc[[0, 5], "income"] = [np.nan, np.inf]
    column = build_profile(frame).columns["income"]
    finite = frame["income"][np.isfinite(frame["income"])]
    assert column.rows == len(finite) and column.nulls == 2
    np.testing.assert_array_equal(column.sorted_values, np.sort(finite.to_numpy()))
    assert column.std == float(np.std(finite))


def test_categorical_profile_counts_in_first_seen_order():
    frame = pd.DataFrame({"colour": ["red", "blue", None, "red", "green", "red"] * 2})
    column = build_profile(frame).columns["colour"]
    assert column.categories == ("red", "blue", "green")
    assert column.counts == (6, 2, 2)
    assert column.nulls == 2


def test_save_load_round_trip(tmp_path, reference):
    profile = build_profile(reference, metadata={"model": "credit-risk", "version": "3"})
    profile.save(tmp_path / "profile")
    loaded = ReferenceProfile.load(tmp_path / "profile")
    assert loaded.rows == profile.rows
    assert loaded.skipped == profile.skipped
    assert loaded.metadata["model"] == "credit-risk"
    assert list(loaded.columns) == list(profile.columns)
    for name, column in profile.columns.items():
        again = loaded.columns[name]
        assert (again.kind, again.dtype, again.rows, again.nulls, again.n_unique, again.std) == (
            column.kind,
            column.dtype,
            column.rows,
            column.nulls,
            column.n_unique,
            column.std,
        )
        assert again.categories == column.categories and again.counts == column.counts
        if column.sorted_values is not None:
            assert again.sorted_values is not None
            assert again.sorted_values.dtype == column.sorted_values.dtype
            np.testing.assert_array_equal(again.sorted_values, column.sorted_values)
    document = json.loads((tmp_path / "profile" / PROFILE_FILE).read_text())
    assert document["version"] == PROFILE_VERSION


def test_reference_frame_reproduces_each_column_distribution(reference):
    profile = build_profile(reference)
    frame = profile.reference_frame()
    assert len(frame) == len(reference)
    again = build_profile(frame, {name: column.kind for name, column in profile.columns.items()})
    for name, column in profile.columns.items():
        assert again.columns[name].value_counts == column.value_counts


def test_load_refuses_missing_and_foreign_profiles(tmp_path):
    with pytest.raises(NotFoundError) as missing:
        ReferenceProfile.load(tmp_path)
    assert missing.value.hint
    (tmp_path / PROFILE_FILE).write_text(json.dumps({"format": "driftloop.reference-profile", "version": 99}))
    with pytest.raises(DataContractError, match="version"):
        ReferenceProfile.load(tmp_path)


def test_build_errors_name_the_columns(reference):
    with pytest.raises(DataContractError) as unknown:
        build_profile(reference, {"no_such_column": "numerical"})
    assert unknown.value.columns == ["no_such_column"]
    with pytest.raises(DataContractError, match="declared numerical"):
        build_profile(reference, {"purpose": "numerical"})
    with pytest.raises(ValueError, match="unknown column type"):
        build_profile(reference, {"income": "ordinal"})
