"""Command line of the engine: ``driftloop engine serve|run``, ``driftloop submit`` and ``driftloop runs``."""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from types import FrameType
from urllib.parse import urlsplit

import click

from driftloop.config import get_settings
from workflows.engine._cli_runs import client, print_workflow, runs_group, wait_for

__all__ = ["engine_group", "runs_group", "submit_command"]


class _EngineGroup(click.Group):
    """``run`` lives in the executor's module; import it only when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "run"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "run" and "run" not in self.commands:
            try:
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
      driftloop engine serve --port 8746 --token s3cret
      driftloop engine run my-workflow.yaml      # one run, no server
    """


@engine_group.command("serve")
@click.option("--host", default=None, help="Interface to bind (default: the host of DRIFTLOOP_ARGO_SERVER).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port (default: the port of DRIFTLOOP_ARGO_SERVER, 2746).",
)
@click.option("--token", default=None, help="Require this bearer token (default: DRIFTLOOP_ARGO_TOKEN; empty: none).")
def serve_command(host: str | None, port: int | None, token: str | None) -> None:
    """Serve the Argo Server REST API from the embedded engine, until Ctrl-C or SIGTERM.

    State lives in $DRIFTLOOP_HOME/engine/engine.db; workflows that were running when a previous engine died
    are resumed (finished steps are not re-run). One engine per DRIFTLOOP_HOME.

    \b
    Examples:
      driftloop engine serve
      DRIFTLOOP_HOME=/tmp/lab driftloop engine serve --port 0     # any free port (printed)
      argo --argo-server 127.0.0.1:2746 --secure=false list       # the Argo CLI works against it
    """
    from workflows.engine.server import EngineServer

    settings = get_settings()
    address = urlsplit(settings.argo_server)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = EngineServer(
        settings.home,
        host=host or address.hostname or "127.0.0.1",
        port=address.port or 2746 if port is None else port,
        namespace=settings.namespace,
        token=settings.argo_token if token is None else token,
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    click.echo(f"driftloop engine serving the Argo API on {server.url} (home {settings.home})", err=True)
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
def submit_command(target: str, parameters: tuple[str, ...], entrypoint: str | None, wait: bool, output: str) -> None:
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
    """
    argo = client(autostart=True)
    submitted = argo.submit(target, parameters=parameters, entrypoint=entrypoint)
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
        click.echo()
        print_workflow(final, "wide" if output == "name" else output)
        failed = failed or (final.get("status") or {}).get("phase") != "Succeeded"
    if failed:
        raise click.exceptions.Exit(1)
