"""``driftloop lake``: compact the payload lake's hourly partitions, and delete those past retention."""

from __future__ import annotations

import json

import click

from driftloop.errors import ConfigError

__all__ = ["lake_group"]

_MODEL_HELP = "Model whose partitions to work on (default: DRIFTLOOP_MODEL_NAME)."
_LAKE_HELP = "Payload lake directory or fsspec URI (default: DRIFTLOOP_LAKE_URI)."


@click.group("lake")
def lake_group() -> None:
    """Keep the payload lake fast and bounded as it grows.

    The sidecar writes one small parquet file per 5 s spool segment (720 an hour per replica). `compact` merges a
    finished hour's files into a few (one per million rows) and publishes a manifest that supersedes them, so a
    reader never sees a row twice or misses one — while it runs, or after a crash at any step (rerun it: it
    finishes the job). `prune` deletes the hours older than the retention. The stack's monitor does both every
    DRIFTLOOP_LAKE_COMPACT_INTERVAL seconds; these commands are for a cron job or by hand.

    \b
    Examples:
      driftloop lake compact                        # the default model, DRIFTLOOP_LAKE_URI
      driftloop lake compact -m credit-risk --lake s3://bucket/lake --json
      driftloop lake prune --retention 7d --dry-run
      DRIFTLOOP_LAKE_RETENTION=30d driftloop lake prune
    """


def _where(model: str | None, lake_uri: str | None) -> tuple[str, str]:
    from driftloop.config import get_settings

    settings = get_settings()
    return model or settings.model_name, lake_uri or settings.lake_uri


@lake_group.command("compact")
@click.option("--model", "-m", help=_MODEL_HELP)
@click.option("--lake", "lake_uri", help=_LAKE_HELP)
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Compact an hour fully once it ended this many seconds ago, and in the open hour the parts written this "
    "long ago (later writes are still handled correctly).",
)
@click.option(
    "--max-rows-per-file",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Rows per compacted file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def compact_command(
    model: str | None, lake_uri: str | None, settle: float, max_rows_per_file: int, as_json: bool
) -> None:
    """Merge each hour's small part files into a few (the open hour's settled ones too); idempotent and crash-safe.

    Compacted files also hold the features as typed columns when every record of the hour has the same numeric keys,
    which read_window then reads instead of decoding JSON.

    Steps per hour: merged files are written under temporary names and renamed, then the hour's manifest
    (_compacted.json) is replaced in one rename — the commit point — and only then are the merged inputs deleted.
    A second run changes nothing; a run after a crash finishes the job. A part a writer replays after its hour was
    compacted stays superseded (never counted twice). On a local lake a lock makes a concurrent second compactor
    skip (exit status 0, "busy"); on an object store run it from one place only.

    \b
    Examples:
      driftloop lake compact
      driftloop lake compact -m credit-risk --lake /data/lake --settle 0 --json
    """
    from monitors.lake_compaction import compact

    name, uri = _where(model, lake_uri)
    report = compact(uri, name, settle_s=settle, max_rows_per_file=max_rows_per_file)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif report.busy:
        click.echo(f"{name}: another compaction holds the lock; nothing done")
    else:
        merged = sum(hour.inputs for hour in report.hours)
        click.echo(f"{name}: {len(report.hours)} hour(s) compacted, {merged} file(s) merged, "
                   f"{report.cleaned} leftover file(s) removed")  # fmt: skip
        for hour in report.hours:
            click.echo(f"  {hour.folder}: {hour.inputs} files -> {hour.outputs} ({hour.rows} rows)")


@lake_group.command("prune")
@click.option("--model", "-m", help=_MODEL_HELP)
@click.option("--lake", "lake_uri", help=_LAKE_HELP)
@click.option(
    "--retention",
    help="Delete hours whose records are all older than this: 30d, 36h, 90m (default: DRIFTLOOP_LAKE_RETENTION).",
)
@click.option("--dry-run", is_flag=True, help="List the hours that would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the hours deleted as JSON.")
def prune_command(model: str | None, lake_uri: str | None, retention: str | None, dry_run: bool, as_json: bool) -> None:
    """Delete the lake's hour partitions older than the retention (then empty date folders).

    An hour goes once its last possible record is older than the retention: with 30d, the hour 09:00-10:00 of
    1 March goes at 10:00 on 31 March. A reader never sees half a pruned hour (local lakes: it is renamed away
    first). Retention 0 means keep everything: the command then refuses to run. Try --dry-run first.

    \b
    Examples:
      driftloop lake prune                          # DRIFTLOOP_LAKE_RETENTION (default 30d)
      driftloop lake prune --retention 7d --dry-run
      driftloop lake prune -m credit-risk --lake s3://bucket/lake --retention 90d --json
    """
    from driftloop.config import PREFIX, get_settings, parse_duration
    from monitors.lake_compaction import prune

    name, uri = _where(model, lake_uri)
    seconds = parse_duration(retention, "--retention") if retention else get_settings().lake_retention
    if seconds <= 0:
        raise ConfigError(
            "the retention is 0 (keep everything): nothing to prune",
            hint=f"give --retention 30d, or set {PREFIX}LAKE_RETENTION",
        )
    report = prune(uri, name, seconds, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "dry_run": dry_run}, indent=2))
        return
    if report.busy:
        click.echo(f"{name}: a compaction holds the lock; nothing done")
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{name}: {verb} {len(report.hours)} hour(s) older than {report.cutoff}")
    for folder in report.hours:
        click.echo(f"  {folder}")
