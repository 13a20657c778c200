"""`driftloop data …` and `driftloop features …`: generate the scenarios, apply and materialize the Feast repo."""

from __future__ import annotations

import json
from pathlib import Path

import click

from features.generator import DEFAULT_ROWS, DEFAULT_SEED, SCENARIOS

__all__ = ["data_group", "features_group"]


@click.group("data")
def data_group() -> None:
    """Generate the deterministic credit-risk datasets.

    \b
    Examples:
      driftloop data scenarios
      driftloop data generate --scenario baseline --rows 20000
      driftloop data generate --scenario schema-change --rows 5000 --out /tmp/renamed.parquet
    """


@data_group.command("scenarios")
def scenarios_command() -> None:
    """List the scenarios and what each one simulates.

    \b
    Examples:
      driftloop data scenarios                                 # name, then what it simulates
      driftloop data scenarios | cut -d' ' -f1                 # the names only
      driftloop data generate --scenario covariate-shift       # then write one of them
    """
    for scenario in SCENARIOS.values():
        click.echo(f"{scenario.name:16} {scenario.description}")


@data_group.command("generate")
@click.option("--scenario", type=click.Choice(list(SCENARIOS)), default="baseline", show_default=True)
@click.option("--rows", type=click.IntRange(min=1), default=DEFAULT_ROWS, show_default=True)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Same seed, same bytes.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Default: $DRIFTLOOP_HOME/data/…")
def generate_command(scenario: str, rows: int, seed: int, out: Path | None) -> None:
    """Write one scenario as parquet (microsecond timestamps) and print its path.

    \b
    Example:
      driftloop data generate --scenario covariate-shift --rows 5000
    """
    from features.generator import generate, resolve_dataset, write_dataset

    path = write_dataset(generate(scenario, rows, seed), out) if out else resolve_dataset(scenario, rows, seed)
    click.echo(str(path))


_SOURCE_HELP = "Data the feature views read: a scenario name or a parquet path (default: the baseline scenario)."


@click.group("features")
def features_group() -> None:
    """Apply, materialize and inspect the Feast feature repository (features/repo/).

    \b
    Examples:
      driftloop features apply                      # register entity, views and the credit-risk-v1 service
      driftloop features materialize                # load the latest values into the SQLite online store
      driftloop features schema                     # the data contract (JSON), as validate-data sees it
    """


@features_group.command("apply")
@click.option("--source", default="baseline", show_default=True, help=_SOURCE_HELP)
def apply_command(source: str) -> None:
    """Register the definitions in the registry in force ($DRIFTLOOP_HOME/feast/main).

    \b
    Examples:
      driftloop features apply                          # views over the baseline scenario
      driftloop features apply --source covariate-shift
      driftloop features apply --source /data/applicants.parquet
    """
    from features.generator import resolve_dataset
    from features.store import MAIN_REGISTRY, open_repo

    repo = open_repo(resolve_dataset(source), key=MAIN_REGISTRY)
    views = ", ".join(view.name for view in repo.definitions.views)
    click.echo(f"applied entity 'applicant', views [{views}], feature service '{repo.service_name}'")
    click.echo(f"source: {repo.definitions.source.path}")


@features_group.command("materialize")
@click.option("--source", default="baseline", show_default=True, help=_SOURCE_HELP)
def materialize_command(source: str) -> None:
    """Apply, then load the source's whole time range into the online store."""
    import pandas as pd

    from features.columns import TIMESTAMP
    from features.generator import resolve_dataset
    from features.store import MAIN_REGISTRY, open_repo

    path = resolve_dataset(source)
    repo = open_repo(path, key=MAIN_REGISTRY)
    stamps = pd.read_parquet(path, columns=[TIMESTAMP])[TIMESTAMP]
    start, end = stamps.min().to_pydatetime(), (stamps.max() + pd.Timedelta(seconds=1)).to_pydatetime()
    repo.store.materialize(start_date=start, end_date=end)
    click.echo(f"materialized {len(repo.definitions.views)} views from {start:%Y-%m-%d} to {end:%Y-%m-%d}")


@features_group.command("schema")
@click.option("--model-name", default=None, help="Default: DRIFTLOOP_MODEL_NAME.")
def schema_command(model_name: str | None) -> None:
    """Print the feature service schema in force (names, dtypes, nullability, domains, ranges) as JSON."""
    from features.store import schema_in_force

    click.echo(json.dumps(schema_in_force(model_name).to_json(), indent=2))
