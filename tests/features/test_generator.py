"""The generator: deterministic, microsecond timestamps, and each scenario differs from baseline as documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from driftloop.errors import NotFoundError
from features.cli import data_group
from features.columns import ENTITY_KEY, LABEL, TIMESTAMP, VIEW_COLUMNS
from features.generator import SCENARIOS, generate, resolve_dataset, write_dataset

FEATURES = [spec.name for specs in VIEW_COLUMNS.values() for spec in specs]
ROWS = 4_000


def test_same_arguments_same_data_and_a_new_seed_changes_it() -> None:
    first, second = generate("baseline", 500, seed=3), generate("baseline", 500, seed=3)
    pd.testing.assert_frame_equal(first, second)
    assert not generate("baseline", 500, seed=4)[FEATURES].equals(first[FEATURES])


def test_parquet_has_microsecond_utc_timestamps_and_every_contract_column(tmp_path: Path) -> None:
    path = write_dataset(generate("baseline", 300), tmp_path / "d.parquet")
    arrow_type = pq.read_schema(path).field(TIMESTAMP).type
    assert (arrow_type.unit, str(arrow_type.tz)) == ("us", "UTC")
    frame = pd.read_parquet(path)
    assert [ENTITY_KEY, TIMESTAMP, *FEATURES, LABEL] == list(frame.columns)
    assert frame[ENTITY_KEY].is_unique and frame[TIMESTAMP].is_monotonic_increasing
    assert frame[TIMESTAMP].max() - frame[TIMESTAMP].min() > pd.Timedelta(weeks=4)


def _utilisation_effect(frame: pd.DataFrame) -> float:
    return float(np.corrcoef(frame["credit_utilisation"], frame[LABEL])[0, 1])


def test_each_scenario_shows_its_documented_difference() -> None:
    baseline = generate("baseline", ROWS)
    covariate = generate("covariate-shift", ROWS)
    assert covariate["age"].mean() < baseline["age"].mean() - 5
    assert covariate["credit_utilisation"].mean() > baseline["credit_utilisation"].mean() + 0.1
    concept = generate("concept-drift", ROWS)
    assert abs(concept["credit_utilisation"].mean() - baseline["credit_utilisation"].mean()) < 0.02
    assert _utilisation_effect(baseline) > 0.1 > abs(_utilisation_effect(concept))
    spike = generate("missing-spike", ROWS)
    assert spike["annual_income"].isna().mean() > 0.3 > baseline["annual_income"].isna().mean()
    assert spike["employment_length"].isna().mean() > 0.3
    novel = generate("new-category", ROWS)
    assert "buy_now_pay_later" in set(novel["purpose"]) and "OTHER" in set(novel["home_ownership"])
    renamed = generate("schema-change", ROWS)
    assert "customer_age_years" in renamed.columns and "age" not in renamed.columns
    assert set(SCENARIOS) == {
        "baseline",
        "covariate-shift",
        "concept-drift",
        "missing-spike",
        "new-category",
        "schema-change",
    }


def test_scenarios_do_not_share_entity_keys() -> None:
    keys = [set(generate(name, 200)[ENTITY_KEY]) for name in SCENARIOS]
    assert sum(map(len, keys)) == len(set().union(*keys))


def test_resolve_dataset_generates_once_and_rejects_unknown_paths(isolated_home: Path) -> None:
    path = resolve_dataset("new-category", rows=200)
    assert path.parent == isolated_home / "data" and path.exists()
    stamp = path.stat().st_mtime_ns
    assert resolve_dataset("new-category", rows=200) == path and path.stat().st_mtime_ns == stamp
    assert resolve_dataset(f"file://{path}") == path
    with pytest.raises(NotFoundError) as caught:
        resolve_dataset("/nonexistent/data.parquet")
    assert "baseline" in (caught.value.hint or "")


def test_data_generate_command_writes_the_requested_rows(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    result = CliRunner().invoke(
        data_group, ["generate", "--scenario", "schema-change", "--rows", "123", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 123 and "customer_age_years" in frame.columns
    listing = CliRunner().invoke(data_group, ["scenarios"])
    assert all(name in listing.output for name in SCENARIOS)
