"""``driftloop drift`` (one comparison) and ``driftloop monitor`` (the continuous loop)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from driftloop.errors import ConfigError
from driftloop.setting_options import setting_option
from monitors.drift._cli_support import JsonErrorsCommand, check_inputs, check_result
from monitors.drift._method_names import STAT_TEST_NAMES

if TYPE_CHECKING:  # pandas, numpy and scipy are imported when a command runs, not for --help
    from monitors.drift._compute import DriftOptions, DriftResult

__all__ = ["drift_command", "format_result", "monitor_command"]

_METHODS = click.Choice(sorted(STAT_TEST_NAMES))


_SHARE_HELP = "Dataset drift when at least this share of columns drifted."
_SHARE_TYPE = click.FloatRange(0, 1, min_open=True)


def drift_option_flags(command: Callable[..., Any], *, share_setting: str | None = None) -> Callable[..., Any]:
    """The DataDriftPreset options, shared by `drift` and `monitor`.

    ``share_setting`` names the setting --drift-share defaults to (the monitor's); without it, Evidently's 0.5.
    """
    share = (
        setting_option("--drift-share", setting=share_setting, type=_SHARE_TYPE, help=_SHARE_HELP)
        if share_setting
        else click.option("--drift-share", type=_SHARE_TYPE, default=0.5, show_default=True, help=_SHARE_HELP)
    )
    flags = [
        share,
        click.option("--method", type=_METHODS, help="Force this test on every column (default: Evidently's choice)."),
        click.option("--num-method", type=_METHODS, help="Force this test on numerical columns."),
        click.option("--cat-method", type=_METHODS, help="Force this test on categorical columns."),
        click.option("--column-method", "column_methods", multiple=True, metavar="COLUMN=METHOD",
                     help="Force a test on one column (repeatable)."),
        click.option("--threshold", type=float, help="Threshold for every column (default: the test's own)."),
        click.option("--num-threshold", type=float, help="Threshold for numerical columns."),
        click.option("--cat-threshold", type=float, help="Threshold for categorical columns."),
        click.option("--column-threshold", "column_thresholds", multiple=True, metavar="COLUMN=VALUE",
                     help="Threshold for one column (repeatable), e.g. income=0.2."),
    ]  # fmt: skip
    for flag in reversed(flags):
        command = flag(command)
    return command


def options_from(kwargs: dict[str, Any]) -> DriftOptions:
    from monitors.drift._inputs import build_options

    keys = ["drift_share", "method", "num_method", "cat_method", "column_methods"]
    keys += ["threshold", "num_threshold", "cat_threshold", "column_thresholds"]
    return build_options(**{key: kwargs.pop(key) for key in keys})


def format_result(result: DriftResult) -> str:
    """A table an operator can read: one line per column, drifted ones marked, then the verdict."""
    lines = [f"{'column':<24} {'method':<14} {'score':>12} {'threshold':>10}  drifted"]
    for name, column in result.columns.items():
        mark = "YES" if column.drifted else "no"
        lines.append(f"{name:<24} {column.method:<14} {column.score:>12.6g} {column.threshold:>10.4g}  {mark}")
    for name, reason in result.skipped.items():
        lines.append(f"{name:<24} skipped: {reason}")
    share = result.drifted_share
    share_text = "n/a" if share is None else f"{share:.3f}"
    verdict = "DATASET DRIFT" if result.dataset_drift else "no dataset drift"
    lines.append(
        f"{len(result.drifted_columns)}/{len(result.columns)} columns drifted (share {share_text}, "
        f"threshold {result.drift_share_threshold}): {verdict} "
        f"[reference {result.reference_rows} rows, current {result.current_rows} rows]"
    )
    return "\n".join(lines)


@click.command("drift", cls=JsonErrorsCommand)
@click.option(
    "--reference",
    "-r",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Reference data (parquet file/dir or CSV) or a saved profile directory.",
)
@click.option(
    "--current",
    "-c",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Current data (parquet file/dir or CSV).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the machine-readable result.")
@click.option("--columns", help="Comma-separated columns to compare (default: every profiled column).")
@click.option(
    "--type",
    "column_types",
    multiple=True,
    metavar="COLUMN=KIND",
    help="Pin a column's kind: numerical or categorical (default: Evidently's inference).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write Evidently's HTML report here (slow on big data).",
)
@click.option("--fail-on-drift", is_flag=True, help="Exit with status 3 when dataset drift is detected.")
@drift_option_flags
def drift_command(
    reference: Path,
    current: Path,
    as_json: bool,
    columns: str | None,
    column_types: tuple[str, ...],
    html_path: Path | None,
    fail_on_drift: bool,
    **kwargs: Any,
) -> None:
    """Compare a current dataset with a reference, exactly as Evidently 0.7's DataDriftPreset would.

    Per column, the test Evidently picks for that column type and reference size (≤1000 reference rows:
    K-S, chi-square or Z; above: normed Wasserstein or Jensen-Shannon), its score, threshold and drift flag;
    then the share of drifted columns and the dataset verdict (share ≥ --drift-share). p-value tests
    drift when the score is below the threshold, distances when it is at or above it.

    \b
    Examples:
      driftloop drift -r train.parquet -c today.parquet
      driftloop drift -r .driftloop/monitor/credit-risk/v3/reference/profile -c window.parquet --json
      driftloop drift -r ref.csv -c cur.csv --column-threshold income=0.2 --num-method ks --fail-on-drift
      driftloop drift -r ref.parquet -c cur.parquet --html drift.html

    Errors (exit status 1 or 2; under --json a {"error": {...}} object on stdout): an empty reference or
    current dataset; --column-method/--column-threshold naming a column the reference lacks; with
    --fail-on-drift, no testable column. Columns without a drift test (lists, free text…) are listed as
    skipped, with the reason.
    """
    from monitors.drift._compute import compute_drift
    from monitors.drift._inputs import load_reference, parse_assignments, read_table

    options = options_from(kwargs)
    try:
        kinds = parse_assignments(column_types, "--type")
        # numpy columns unless the HTML report needs DataFrames: plain numeric parquet then skips pandas entirely
        profile, reference_frame = load_reference(reference, kinds, frame=html_path is not None)
    except ValueError as exc:
        raise ConfigError(str(exc), hint="--type COLUMN=numerical or COLUMN=categorical") from exc
    check_inputs(profile, options, str(reference))
    current_frame = read_table(current, frame=html_path is not None)
    selected = [name.strip() for name in columns.split(",") if name.strip()] if columns else None
    result = check_result(compute_drift(profile, current_frame, options, columns=selected), profile, selected,
                          fail_on_drift)  # fmt: skip
    if html_path is not None:
        from monitors.drift._evidently import write_html_report

        kinds_in_force = {name: profile.columns[name].kind for name in result.columns}
        source = reference_frame if reference_frame is not None else profile.reference_frame()
        write_html_report(source, current_frame, html_path, options, kinds_in_force)
        click.echo(f"HTML report: {html_path}", err=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(format_result(result))
    if fail_on_drift and result.dataset_drift:
        raise click.exceptions.Exit(3)


@click.command("monitor", cls=JsonErrorsCommand)
@click.option("--model", "-m", help="Registered model to watch (default: DRIFTLOOP_MODEL_NAME).")
@click.option("--lake", "lake_uri", help="Payload lake directory or fsspec URI (default: DRIFTLOOP_LAKE_URI).")
@setting_option(
    "--metrics-port",
    setting="monitor_url",
    convert=lambda url: urlsplit(url).port or 9308,
    type=click.IntRange(0, 65535),
    help="Port of the Prometheus /metrics endpoint (0: any free port, printed at start).",
)
@setting_option(
    "--metrics-host",
    setting="monitor_url",
    convert=lambda url: urlsplit(url).hostname or "127.0.0.1",
    help="Address to bind the endpoint to (0.0.0.0 in a pod).",
)
@setting_option(
    "--interval",
    setting="monitor_interval",
    type=click.FloatRange(min=0.01),
    help="Seconds between evaluations.",
)
@setting_option(
    "--last-rows",
    setting="monitor_window_rows",
    type=click.IntRange(min=1),
    help="Window: at most this many of the latest records.",
)
@setting_option(
    "--min-rows",
    setting="monitor_min_rows",
    type=click.IntRange(min=1),
    help="Score drift only once the window holds this many rows (or all of --last-rows, if fewer).",
)
@setting_option(
    "--last-minutes",
    setting="monitor_window_minutes",
    type=click.FloatRange(min=0),
    help="Window: only records of the last T minutes (combines with --last-rows; 0: no age limit).",
)
@click.option(
    "--reference",
    "reference_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Use this reference directory (profile/ inside, or a profile) instead of the MLflow champion.",
)
@click.option(
    "--wake-on-write",
    is_flag=True,
    help="Also evaluate as soon as new payloads land in a local lake (at most every 0.5 s); --interval stays the "
    "longest gap. Off by default: with a long `for` in production the interval is what matters.",
)
@click.option("--once", is_flag=True, help="Evaluate one window, print the result and exit (no endpoint).")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the evaluation as JSON.")
@click.option("--no-html", is_flag=True, help="Do not write Evidently HTML reports when drift is detected.")
@click.option(
    "--report-every",
    type=float,
    default=600.0,
    show_default=True,
    help="At most one HTML report per model version per this many seconds.",
)
@functools.partial(drift_option_flags, share_setting="monitor_drift_share")
def monitor_command(
    model: str | None,
    lake_uri: str | None,
    metrics_port: int,
    metrics_host: str,
    interval: float,
    last_rows: int,
    last_minutes: float | None,
    min_rows: int,
    reference_dir: Path | None,
    wake_on_write: bool,
    once: bool,
    as_json: bool,
    no_html: bool,
    report_every: float,
    **kwargs: Any,
) -> None:
    """Watch a model's live payloads for drift and export Prometheus metrics.

    Every --interval seconds: read the latest window of captured payloads from the lake (--last-rows and/or
    --last-minutes), load the champion's reference profile from MLflow (models:/NAME@champion, cached per
    version under $DRIFTLOOP_HOME/monitor/) or from --reference, compute drift exactly as `driftloop drift`
    does, and export driftloop_feature_drift_score / _drifted, driftloop_drift_share, driftloop_dataset_drift,
    driftloop_window_rows, driftloop_payload_schema_mismatch_total and
    driftloop_monitor_last_success_timestamp_seconds; a window under --min-rows is counted but not scored. When dataset drift is detected it writes Evidently's HTML
    report under $DRIFTLOOP_HOME/reports/ and logs its path. Malformed payloads are counted, never fatal; an
    empty window exports no drift score.

    \b
    Examples:
      driftloop monitor --model credit-risk --metrics-port 9308
      driftloop monitor -m credit-risk --lake s3://bucket/lake --last-minutes 15 --interval 30
      driftloop monitor -m credit-risk --reference ./reference --once --json
      curl -s localhost:9308/metrics | grep driftloop_
    """
    import logging
    import signal
    import threading

    from prometheus_client import start_http_server

    from driftloop.config import get_settings
    from monitors.drift._metrics import MonitorMetrics
    from monitors.drift._monitor import Monitor, MonitorConfig
    from monitors.drift._sources import LocalReference, MlflowReference, ReferenceSource

    settings = get_settings()
    model_name = model or settings.model_name
    config = MonitorConfig.from_settings(
        settings,
        model_name,
        lake_uri=lake_uri or settings.lake_uri,
        last_rows=last_rows,
        last_minutes=last_minutes or None,  # 0: no age limit
        min_rows=min_rows,
        interval_s=interval,
        options=options_from(kwargs),
        html_reports=not no_html,
        report_every_s=report_every,
        wake_on_write=wake_on_write,
    )
    source: ReferenceSource = (
        LocalReference(reference_dir)
        if reference_dir is not None
        else MlflowReference(model_name, settings.mlflow_uri, settings.home / "monitor")
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from monitors.feedback._store import feedback_store
    from monitors.feedback.quality import QualityMetrics, QualityWatch

    metrics = MonitorMetrics(model_name)
    quality = QualityWatch(
        feedback_store(settings), QualityMetrics(model_name, metrics.registry),
        last_rows=settings.monitor_quality_window_rows, last_minutes=config.last_minutes,
        min_rows=settings.monitor_quality_min_rows,
    )  # fmt: skip
    monitor = Monitor(config, source, metrics, quality=quality)
    if once:
        evaluation = monitor.evaluate()
        if as_json:
            click.echo(json.dumps(evaluation.to_dict(), indent=2))
        elif evaluation.result is None:
            click.echo(f"{model_name} v{evaluation.version}: window empty, no drift computed")
        else:
            click.echo(format_result(evaluation.result))
        return
    server, thread = start_http_server(metrics_port, addr=metrics_host, registry=monitor.metrics.registry)
    click.echo(f"metrics: http://{metrics_host}:{server.server_port}/metrics", err=True)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        monitor.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
