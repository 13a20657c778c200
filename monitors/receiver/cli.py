"""``driftloop alerting`` (generate/check the alerting manifests) and ``driftloop trigger`` (the receiver)."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["alerting_command", "trigger_group"]


@click.command("alerting")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff when manifests/monitoring/ is stale.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: manifests/monitoring/ of the checkout).",
)
@click.option(
    "--analysis-out",
    "analysis_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The AnalysisTemplate file (default: manifests/serving/base/analysis-template.yaml of the checkout).",
)
@click.pass_context
def alerting_command(ctx: click.Context, check: bool, out_dir: Path | None, analysis_path: Path | None) -> None:
    """Generate the alerting manifests from monitors/receiver/_rules.py, validated and reproducible.

    Writes the PrometheusRule, the ServiceMonitors, the AlertmanagerConfig (and the equivalent raw
    alertmanager.yaml), and the receiver's Deployment/Service/ServiceAccount/Role; and the serving Rollout's
    canary AnalysisTemplate from the conditions in monitors/deployer/analysis.py (the ones `driftloop deployer`
    applies locally). The output depends only on the code and the settings' defaults, never on your DRIFTLOOP_*
    variables.

    \b
    Examples:
      driftloop alerting            # write manifests/monitoring/*.yaml
      driftloop alerting --check    # CI: exit 1 with a diff when the committed files are stale
    """
    from monitors.deployer import _template
    from monitors.receiver._manifests import build_files, default_out_dir, diff_files, validate_files, write_files

    out_dir = out_dir or default_out_dir()
    analysis_path = analysis_path or _template.default_path()
    files = build_files()
    count = validate_files(files)
    template = _template.render()
    count += _template.validate(template)
    if check:
        diff = diff_files(files, out_dir) + _template.diff_template(template, analysis_path)
        if diff:
            click.echo(diff, nl=False)
            click.secho(
                f"error: the alerting manifests in {out_dir} or {analysis_path} are stale (or edited by hand)",
                fg="red",
                err=True,
            )
            click.echo("  hint: run `driftloop alerting` and commit the result", err=True)
            ctx.exit(1)
        click.echo(
            f"{len(files) + 1} file(s) in {out_dir} and {analysis_path} are up to date "
            f"({count} documents validated against CRDs)"
        )
        return
    for path in [*write_files(files, out_dir), _template.write_template(template, analysis_path)]:
        click.echo(f"wrote {path}")
    click.echo(f"{count} documents validated against the prometheus-operator and Argo Rollouts CRDs")


@click.group("trigger")
def trigger_group() -> None:
    """The Alertmanager receiver that submits exactly one retraining Workflow per drift incident.

    \b
    Examples:
      driftloop trigger serve --port 9095     # the webhook at /alertmanager (bearer token required)
      driftloop trigger history               # every decision: duplicate, cooldown, in-flight, submitted…
      driftloop trigger history --json
    """


@trigger_group.command("serve")
@click.option("--host", default=None, help="Address to bind (default: the host of DRIFTLOOP_TRIGGER_URL).")
@click.option("--port", type=int, default=None, help="Port (default: the port of DRIFTLOOP_TRIGGER_URL).")
def serve_command(host: str | None, port: int | None) -> None:
    """Serve POST /alertmanager, GET /triggers, /metrics and /healthz until SIGTERM/SIGINT.

    The token comes from DRIFTLOOP_TRIGGER_TOKEN, else the file DRIFTLOOP_TRIGGER_TOKEN_FILE, else
    $DRIFTLOOP_HOME/trigger/token (generated, 0600). Decisions are kept in $DRIFTLOOP_HOME/trigger/decisions.db.
    """
    from driftloop.config import get_settings
    from driftloop.stack.services import host_port
    from monitors.receiver._server import serve

    settings = get_settings()
    default_host, default_port = host_port(settings.trigger_url, 9095)
    serve(settings, host or default_host, port or default_port)


@trigger_group.command("history")
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as a JSON list.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="Newest N decisions.")
def history_command(as_json: bool, limit: int) -> None:
    """Every decision the receiver took, newest first, read from its store (works while it runs or not)."""
    from driftloop.config import get_settings
    from monitors.receiver._store import DecisionStore

    store = DecisionStore(get_settings().home / "trigger" / "decisions.db")
    rows = store.decisions(limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no decision yet")
        return
    click.echo(f"{'time':<20} {'model':<14} {'decision':<11} {'workflow':<34} {'fingerprint':<17} reason")
    for row in rows:
        click.echo(
            f"{row['time'][:19]:<20} {row['model'] or '-':<14} {row['decision']:<11} "
            f"{row['workflow'] or '-':<34} {row['fingerprint'] or '-':<17} {row['reason']}"
        )
