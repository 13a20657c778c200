"""The ``driftloop`` console script.

Sub-commands live next to the code they drive (``workflows/``, ``monitors/``, ``features/``) and are
imported only when invoked, so ``driftloop --help`` stays instant even though training pulls in torch
and MLflow.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from driftloop import __version__
from driftloop.config import PREFIX, SETTING_DOCS, get_settings
from driftloop.errors import DriftloopError

__all__ = ["COMMANDS", "cli", "main"]

# name -> (module, attribute, one-line help shown by `driftloop --help`)
# fmt: off
COMMANDS: dict[str, tuple[str, str, str]] = {
    "compile": ("workflows.compiler.cli", "compile_command", "Compile the Hera pipelines to manifests/workflows/ (validated)."),
    "lint": ("workflows.compiler.cli", "lint_command", "Validate Argo YAML files: CRD schema + Argo's semantic checks."),
    "submit": ("workflows.engine.cli", "submit_command", "Submit a pipeline or workflow file to the Argo Server (embedded by default)."),
    "runs": ("workflows.engine.cli", "runs_group", "List, inspect, log, retry, stop… workflow runs (like `argo`)."),
    "engine": ("workflows.engine.cli", "engine_group", "The embedded engine: run a workflow file, or serve the Argo API."),
    "data": ("features.cli", "data_group", "Generate the deterministic credit-risk datasets (scenarios)."),
    "features": ("features.cli", "features_group", "Apply / materialize the Feast feature repository."),
    "stack": ("driftloop.stack", "stack_group", "Start, stop and inspect the local stack (engine, MLflow, serving…)."),
    "reproduce": ("workflows.steps.reproduce", "reproduce_command", "Re-run a registered model's training and compare metrics."),
    "traffic": ("monitors.traffic", "traffic_command", "Replay a scenario as inference requests against the model server."),
    "sidecar": ("monitors.sidecar.cli", "sidecar_command", "Run the payload-capturing reverse proxy in front of a model server."),
    "scoring-server": ("monitors.sidecar.cli", "scoring_server_command", "Serve a model with MLflow's scoring app, capturing payloads in-process."),
    "ship": ("monitors.sidecar.cli", "ship_command", "Move the in-process capture's spool segments to the lake."),
    "drift": ("monitors.drift.cli", "drift_command", "Compute drift between a reference and a current dataset."),
    "monitor": ("monitors.drift.cli", "monitor_command", "Continuously compute drift on the lake and export Prometheus metrics."),
    "lake": ("monitors.lake_cli", "lake_group", "Compact the payload lake's hourly partitions; prune those past retention."),
    "alerting": ("monitors.receiver.cli", "alerting_command", "Generate/check manifests/monitoring/ (rules, routing, receiver) from Python."),
    "trigger": ("monitors.receiver.cli", "trigger_group", "The Alertmanager receiver that submits exactly one retrain per drift incident."),
    "feedback": ("monitors.feedback.cli", "feedback_command", "Post ground-truth outcomes (request_id, outcome, observed_at) to the receiver."),
    "promote": ("workflows.gitops.cli", "promote_command", "Promote a model version: schema gates, one GitOps commit, then the champion alias."),
    "rollback": ("workflows.gitops.cli", "rollback_command", "Restore the previous champion in the registry and in git (a new commit)."),
    "approve": ("workflows.gitops._cli_approve", "approve_command", "Approve (or --reject) a training run waiting before promote, then resume it."),
    "history": ("workflows.gitops.cli", "history_command", "Which version was champion when, by which commit and by whom (--json)."),
    "deployer": ("monitors.deployer.cli", "deployer_command", "Follow the GitOps branch: verify, smoke-test and canary each new pin through the sidecar."),
}
# fmt: on


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        module_name, attribute, _ = COMMANDS[cmd_name]
        try:
            module = importlib.import_module(module_name)
            loaded = getattr(module, attribute)
        except (ImportError, AttributeError) as exc:
            raise click.ClickException(
                f"the '{cmd_name}' command is not available in this installation ({exc}).\n"
                "  hint: run `make venv` (or `pip install -e .`) to install driftloop with all its dependencies"
            ) from exc
        assert isinstance(loaded, click.Command)
        return loaded

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in COMMANDS:
                rows.append((name, COMMANDS[name][2]))
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit=90)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="driftloop")
def cli() -> None:
    """driftloop — pipelines as Python, compiled to Argo Workflows, monitored for drift, retrained on alert.

    \b
    Typical loop on one machine:
      driftloop compile              # Hera pipelines -> manifests/workflows/*.yaml (validated)
      driftloop stack up             # embedded engine + MLflow + serving + monitor
      driftloop submit training --wait
      driftloop runs get @latest

    Settings come from DRIFTLOOP_* environment variables; `driftloop config` shows them.
    """


@cli.command("config")
@click.option("--markdown", is_flag=True, help="Print the settings reference (docs/configuration.md) instead.")
def config_command(markdown: bool) -> None:
    """Show every DRIFTLOOP_* setting, its value in force and what it is for.

    \b
    Examples:
      driftloop config
      DRIFTLOOP_HOME=/var/lib/driftloop driftloop config
      driftloop config --markdown > docs/configuration.md
    """
    if markdown:
        click.echo(settings_reference_markdown(), nl=False)
        return
    settings = get_settings()
    for name, (_, doc) in SETTING_DOCS.items():
        value: Any = getattr(settings, name)
        if name == "argo_token" and value:
            value = f"<set: {len(value)} characters, not shown>"  # a password: never print it
        click.echo(f"{PREFIX}{name.upper()}={value}  [{settings.source_of(name)}]")
        click.echo(f"    {doc}")


def settings_reference_markdown() -> str:
    """docs/configuration.md, generated from SETTING_DOCS so the two cannot drift apart."""
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable with the prefix `DRIFTLOOP_`, read by `driftloop/config.py` (the one",
        "configuration module) when a command starts. Defaults describe the embedded single-machine mode; relative paths",
        "are relative to the repository root. `driftloop config` prints the values in force and whether each came from",
        "the environment or the default. This page is generated: `driftloop config --markdown > docs/configuration.md`.",
        "",
        "| variable | default | what it is for |",
        "|---|---|---|",
    ]
    lines += [f"| `{PREFIX}{name.upper()}` | `{default}` | {doc} |" for name, (default, doc) in SETTING_DOCS.items()]
    lines += [
        "",
        "On a cluster the pipeline pods get these variables from the `driftloop-config` ConfigMap (`envFrom`); the",
        "embedded engine passes the host's `DRIFTLOOP_*` variables to pods of the project image instead.",
        "",
    ]
    return "\n".join(lines)


def _mlflow_follows_driftloop() -> None:
    """DRIFTLOOP_MLFLOW_URI is the one MLflow setting: MLflow's own variables follow it in this process and its children.

    Otherwise an MLFLOW_REGISTRY_URI left in the environment (MLflow's ``set_registry_uri`` exports one) would send
    registry calls of the deployer, the monitor or a step to another server than the one driftloop was told to use.
    With DRIFTLOOP_MLFLOW_URI unset they follow its default too: MLflow's own default is ``sqlite:///mlflow.db`` in the
    working directory, which the deployer (cwd: the repo root) would read instead of the stack's server, and create.
    """
    os.environ["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_REGISTRY_URI"] = get_settings().mlflow_uri


def main(argv: list[str] | None = None) -> None:
    """Entry point: turns DriftloopError into a readable message and a non-zero exit code."""
    try:
        _mlflow_follows_driftloop()  # reads the settings: a bad one is reported like any other error
        result = cli.main(args=argv, prog_name="driftloop", standalone_mode=False)
    except DriftloopError as exc:
        click.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(f"  hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    # click returns ctx.exit(code) as the result when standalone_mode is off
    if isinstance(result, int) and not isinstance(result, bool):
        sys.exit(result)
