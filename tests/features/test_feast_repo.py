"""The real Feast repository: the contract survives the round trip through Feast, joins are point-in-time correct,
and `driftloop features apply|materialize|schema` work against the DuckDB offline and SQLite online stores."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from features.cli import features_group
from features.columns import ENTITY_KEY, LABEL, TIMESTAMP, VIEW_COLUMNS
from features.contract import schema_from_views
from features.definitions import build_definitions
from features.generator import generate, write_dataset
from features.store import code_schema, entity_rows, historical_features, open_repo, schema_in_force


def test_contract_round_trips_through_feast_field_tags(tmp_path: Path) -> None:
    definitions = build_definitions(tmp_path / "relative" / ".." / "x.parquet")
    assert definitions.source.path == str((tmp_path / "x.parquet").resolve())
    schema = schema_from_views("credit-risk-v1", definitions.views)
    assert list(schema.features) == [spec for specs in VIEW_COLUMNS.values() for spec in specs]
    assert schema.fingerprint() != schema.renamed({"age": "customer_age_years"}).fingerprint()


def test_historical_features_are_point_in_time_correct(tmp_path: Path) -> None:
    applications = generate("baseline", 4)
    later = applications.copy()
    later[TIMESTAMP] = later[TIMESTAMP] + pd.Timedelta(days=30)
    later["age"] = 99  # a value recorded after the decision must never leak into training
    source = write_dataset(pd.concat([applications, later], ignore_index=True), tmp_path / "history.parquet")
    rows = entity_rows(applications)
    rows[TIMESTAMP] = rows[TIMESTAMP] + pd.Timedelta(days=1)
    rows.loc[0, TIMESTAMP] = applications.loc[0, TIMESTAMP] - pd.Timedelta(days=1)  # before any feature value
    joined = historical_features(open_repo(source, "credit-risk"), rows).set_index(ENTITY_KEY)
    expected = applications.set_index(ENTITY_KEY)
    first = applications.loc[0, ENTITY_KEY]
    for key in expected.index.drop(first):
        assert joined.loc[key, "age"] == expected.loc[key, "age"]
        assert joined.loc[key, "purpose"] == expected.loc[key, "purpose"]
        assert joined.loc[key, LABEL] == expected.loc[key, LABEL]
    assert pd.isna(joined.loc[first, "age"])


@pytest.mark.slow
def test_apply_materialize_and_schema_commands(isolated_home: Path) -> None:
    runner = CliRunner()
    assert code_schema().service == schema_in_force().service  # nothing applied yet: the code's schema
    applied = runner.invoke(features_group, ["apply", "--source", "new-category"])
    assert applied.exit_code == 0, applied.output
    assert (isolated_home / "feast" / "main" / "registry.db").exists()
    assert schema_in_force().to_json() == code_schema().to_json()
    materialized = runner.invoke(features_group, ["materialize", "--source", "new-category"])
    assert materialized.exit_code == 0, materialized.output
    source = pd.read_parquet(next((isolated_home / "data").glob("new-category-*.parquet")))
    repo = open_repo(next((isolated_home / "data").glob("new-category-*.parquet")), key="main", apply=False)
    wanted = source.tail(2)
    online = repo.store.get_online_features(
        features=repo.store.get_feature_service(repo.service_name),
        entity_rows=[{ENTITY_KEY: int(key)} for key in wanted[ENTITY_KEY]],
    ).to_df()
    assert online["purpose"].tolist() == wanted["purpose"].tolist()
    shown = runner.invoke(features_group, ["schema"])
    assert json.loads(shown.output)["fingerprint"] == code_schema().fingerprint()
