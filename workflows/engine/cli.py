"""Command line of the engine: ``driftloop engine serve|run``, ``driftloop submit`` and ``driftloop runs``."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import click

from driftloop.config import get_settings
from workflows.engine._auth import AUTH_MODES, serving_token, token_source
from workflows.engine._cli_render import failure_headline
from workflows.engine._cli_runs import client, print_workflow, runs_group, server_log_lines, wait_for
from workflows.engine.console import ModelSources

__all__ = ["engine_group", "runs_group", "submit_command"]


class _EngineGroup(click.Group):
    """``run`` lives in the executor's module; import it only when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "run"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "run" and "run" not in self.commands:
            try:
                # start-up speed: the executor loads only for `engine run`
                command = importlib.import_module("workflows.engine.run_cli").run_command
            except (ImportError, AttributeError) as exc:
                raise click.ClickException(f"`engine run` is not available yet ({exc})") from exc
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group("engine", cls=_EngineGroup, context_settings={"help_option_names": ["-h", "--help"]})
def engine_group() -> None:
    """The embedded engine: run a workflow file here and now, or serve the Argo Server API.

    \b
    Examples:
      driftloop engine serve                 # the Argo API on DRIFTLOOP_ARGO_SERVER (127.0.0.1:2746)
      driftloop engine serve --port 8746 --token-file ~/.argo-token
      driftloop engine run my-workflow.yaml      # one run, no server
    """


def _refuse_token_value(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.UsageError(
            "--token VALUE is not accepted: a command line is visible to every user of the machine (ps). "
            "Use --token-file PATH, or DRIFTLOOP_ARGO_TOKEN / DRIFTLOOP_ARGO_TOKEN_FILE in the environment."
        )


@engine_group.command("serve")
@click.option("--host", default=None, help="Interface to bind (default: the host of DRIFTLOOP_ARGO_SERVER).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port (default: the port of DRIFTLOOP_ARGO_SERVER, 2746).",
)
@click.option("--auth", type=click.Choice(AUTH_MODES), default="token", show_default=True,
              help="token: every request needs `Authorization: Bearer <token>`. none: no authentication "
                   "(anyone who reaches the port can run commands; for throw-away tests only).")  # fmt: skip
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read the token from this file (default: DRIFTLOOP_ARGO_TOKEN, DRIFTLOOP_ARGO_TOKEN_FILE, "
                   "else $DRIFTLOOP_HOME/engine/token, generated on the first start).")  # fmt: skip
@click.option("--token", hidden=True, expose_value=False, callback=_refuse_token_value, is_eager=True)
def serve_command(host: str | None, port: int | None, auth: str, token_file: Path | None) -> None:
    """Serve the Argo Server REST API from the embedded engine, until Ctrl-C or SIGTERM.

    State lives in $DRIFTLOOP_HOME/engine/engine.db; workflows that were running when a previous engine died
    are resumed (finished steps are not re-run). One engine per DRIFTLOOP_HOME.

    \b
    Security (the engine runs commands as you):
      - a token by default: generated on the first start into $DRIFTLOOP_HOME/engine/token (mode 0600) and
        reused; every driftloop command and the stack read it from there. DRIFTLOOP_ARGO_TOKEN or
        DRIFTLOOP_ARGO_TOKEN_FILE or --token-file replace it. Never put a token on a command line.
      - Host must be a loopback name (or one in DRIFTLOOP_ENGINE_ALLOWED_HOSTS); a foreign Origin is refused;
        POST/PUT need Content-Type: application/json; bodies are limited to 3 MiB.
      - --auth none turns the token off (it says so on stderr, in the log and in /api/v1/info).

    \b
    Examples:
      driftloop engine serve
      DRIFTLOOP_HOME=/tmp/lab driftloop engine serve --port 0     # any free port (printed)
      curl -H "Authorization: Bearer $(cat .driftloop/engine/token)" http://127.0.0.1:2746/api/v1/info
      ARGO_TOKEN="Bearer $(cat .driftloop/engine/token)" argo --argo-server 127.0.0.1:2746 --secure=false list
    """
    from workflows.engine.server import EngineServer  # start-up speed: `submit` and `runs` never load the server

    settings = get_settings()
    address = urlsplit(settings.argo_server)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = serving_token(settings, os.environ, auth, token_file)
    server = EngineServer(
        settings.home,
        host=host or address.hostname or "127.0.0.1",
        port=address.port or 2746 if port is None else port,
        namespace=settings.namespace,
        token=token,
        allowed_hosts=frozenset(settings.engine_allowed_hosts),
        model_sources=_registry_sources(),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    click.echo(f"driftloop engine serving the Argo API on {server.url} (home {settings.home})", err=True)
    click.echo(f"operator console: {server.url}/workflows (log in once with the token)", err=True)
    if token is None:
        click.secho(
            "WARNING: authentication is OFF (--auth none): any local process or web page that reaches "
            f"{server.url} can run commands as you. Use it only for throw-away tests.",
            err=True, fg="red", bold=True,
        )  # fmt: skip
    else:
        click.echo(f"token required; it is in {token_source(os.environ, token_file, settings.home)}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close(kill_steps=True)
    click.echo("engine stopped; running workflows resume on next start", err=True)


@click.command("submit")
@click.argument("target", metavar="PIPELINE|FILE")
@click.option("-p", "--parameter", "parameters", multiple=True, help="Workflow parameter: name=value (repeatable).")
@click.option("--entrypoint", default=None, help="Start from this template instead of the spec's entrypoint.")
@click.option("--wait", is_flag=True, help="Show live progress until it ends; exit 1 unless it Succeeded.")
@click.option("-o", "--output", type=click.Choice(["wide", "json", "yaml", "name"]), default="wide",
              help="wide (summary and node tree, default), json or yaml (the whole object), name (names only).")  # fmt: skip
@click.option("--allow-dirty", is_flag=True,
              help="Submit a pipeline that records its commit from a tree with uncommitted changes: the model is "
                   "tagged git_dirty=true with the diff's sha256, which `driftloop reproduce` checks.")  # fmt: skip
def submit_command(
    target: str, parameters: tuple[str, ...], entrypoint: str | None, wait: bool, output: str, allow_dirty: bool
) -> None:
    """Submit a pipeline (by name) or a workflow YAML file to the Argo Server.

    For a pipeline, its compiled WorkflowTemplate is created (or updated) first, then a Workflow referencing it.
    The server is $DRIFTLOOP_ARGO_SERVER: the embedded engine by default. When that address is on this machine
    and nothing answers, submit starts the engine as the stack's `engine` service and says so (log:
    $DRIFTLOOP_HOME/stack/engine.log); it keeps running until `driftloop stack down` (or `stack down engine`).

    \b
    Examples:
      driftloop submit training --wait
      driftloop submit training -p dataset=shifted -p model-name=credit-risk
      driftloop submit my-workflow.yaml --entrypoint main -o name
      driftloop submit training --allow-dirty   # uncommitted changes: recorded, never silently tagged as HEAD

    A pipeline whose runs record the code's commit (training) is refused from a working tree with uncommitted
    changes: commit or stash them first, or pass --allow-dirty. With --wait, `-o name` prints the names, then
    each run's final phase (and the failed step) on one line.
    """
    argo = client(autostart=True)
    submitted = argo.submit(target, parameters=parameters, entrypoint=entrypoint, allow_dirty=allow_dirty)
    for workflow in submitted:
        if output == "name":
            click.echo(workflow["metadata"]["name"])
        else:
            print_workflow(workflow, output)
    if not wait:
        return
    failed = False
    for workflow in submitted:
        final = wait_for(argo, workflow["metadata"]["name"])
        status = final.get("status") or {}
        why = server_log_lines(argo, final["metadata"]["name"])
        if output == "name":  # names only: the result goes to stderr, stdout stays a list of names
            headline = failure_headline(final, why) or f"{final['metadata']['name']} {status.get('phase')}"
            click.echo(headline, err=True)
        else:
            click.echo()
            print_workflow(final, output, why)
        failed = failed or status.get("phase") != "Succeeded"
    if failed:
        raise click.exceptions.Exit(1)


def _registry_sources() -> ModelSources:
    """The console's registry view: MLflow and the GitOps history, from the layers above the engine."""
    # imported here, not at the top: `driftloop runs …` never loads the registry or git code
    from workflows.gitops.console_sources import RegistrySources

    return RegistrySources()
