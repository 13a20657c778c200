"""``driftloop runs …``: list, get, logs, retry, resubmit, stop, terminate, suspend, resume, delete (like ``argo``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
import yaml

from driftloop.errors import NotFoundError
from workflows.engine._cli_render import failure_headline, list_table, node_tree, progress_line, summary
from workflows.engine._logs import pod_name, pod_nodes, pods_matching

__all__ = ["client", "print_table", "print_workflow", "runs_group", "server_log_lines", "wait_for"]

_PAST = {"retry": "retried", "stop": "stopped", "terminate": "terminated", "suspend": "suspended", "resume": "resumed"}


def client(*, autostart: bool = False) -> Any:
    """The Argo client; only ``submit`` may start the embedded engine (loudly) when nothing answers."""
    from workflows.client import ArgoClient  # start-up speed: httpx and Hera's models, which `engine run` never needs

    return ArgoClient(autostart=autostart)


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def server_log_lines(argo: Any, workflow: str) -> Callable[[dict[str, Any]], list[str]]:
    """Reads a node's log from the Argo Server, for the failure headline."""

    def read(node: dict[str, Any]) -> list[str]:
        return [entry.get("content", "") for entry in argo.logs(workflow, node=node["id"])]

    return read


def print_workflow(
    workflow: dict[str, Any], output: str = "wide", log_lines: Callable[[dict[str, Any]], list[str]] | None = None
) -> None:
    """``argo get``: header, then the node tree; or the whole object as json/yaml.

    A failed workflow's first line says which step failed and why (`log_lines` reads that step's log).
    """
    if output == "json":
        click.echo(json.dumps(workflow, indent=2, sort_keys=True))
        return
    if output == "yaml":
        click.echo(yaml.safe_dump(workflow, sort_keys=False))
        return
    headline = failure_headline(workflow, log_lines)
    if headline:
        click.echo(headline)
    width = max(len(key) for key, _ in summary(workflow)) + 2
    for key, value in summary(workflow):
        click.echo(f"{key + ':':<{width}}{value}")
    rows = node_tree(workflow)
    if len(rows) > 1:
        click.echo()
        print_table(rows)


def wait_for(argo: Any, name: str) -> dict[str, Any]:
    """Wait for the workflow to finish, showing live progress (rich) on stderr."""
    # start-up speed: rich renders only `--wait`'s live progress
    from rich.console import Console
    from rich.live import Live

    with Live("", console=Console(stderr=True), refresh_per_second=4, transient=True) as live:
        return dict(argo.wait(name, on_update=lambda workflow: live.update(progress_line(workflow))))


_OUTPUT = click.option("-o", "--output", type=click.Choice(["wide", "json", "yaml", "name"]), default="wide",
                       help="wide (tables, default), json or yaml (the whole object), name (names only).")  # fmt: skip


@click.group("runs", context_settings={"help_option_names": ["-h", "--help"]})
def runs_group() -> None:
    """List, inspect, log and control workflow runs on the Argo Server (embedded by default).

    \b
    NAME may be `@latest` for the newest workflow, as with the Argo CLI.
    \b
    Examples:
      driftloop runs list
      driftloop runs list -l workflows.argoproj.io/workflow-template=training
      driftloop runs get @latest
      driftloop runs logs @latest --node train -f
      driftloop runs retry @latest
      driftloop runs stop my-run-x7k2p
    """


PHASES = ("Pending", "Running", "Succeeded", "Failed", "Error")


def phase_selector(status: str) -> str:
    """``--status running,failed`` -> the phase label selector; any case; an unknown phase is an error."""
    wanted = [part.strip() for part in status.split(",") if part.strip()]
    by_lower = {phase.lower(): phase for phase in PHASES}
    unknown = [part for part in wanted if part.lower() not in by_lower]
    if unknown or not wanted:
        raise click.BadParameter(
            f"{', '.join(unknown) or repr(status)} is not a workflow phase; valid phases: {', '.join(PHASES)} "
            "(any case, comma-separated)",
            param_hint="'--status'",
        )
    phases = sorted({by_lower[part.lower()] for part in wanted}, key=PHASES.index)
    return f"workflows.argoproj.io/phase in ({','.join(phases)})"


@runs_group.command("list")
@click.option("-n", "--namespace", default=None, help="List this namespace (default: DRIFTLOOP_NAMESPACE).")
@click.option("-A", "--all-namespaces", is_flag=True, help="List the workflows of every namespace.")
@click.option("-l", "--selector", default=None, help="Label selector, e.g. 'app=credit,team!=ops'.")
@click.option("--status", default=None,
              help=f"Only workflows in these phases, comma-separated, any case ({', '.join(PHASES)}).")  # fmt: skip
@_OUTPUT
def list_command(
    namespace: str | None, all_namespaces: bool, selector: str | None, status: str | None, output: str
) -> None:
    """List workflows, newest first (like `argo list`).

    \b
    Examples:
      driftloop runs list
      driftloop runs list --status failed,error -o name
      driftloop runs list -n team-a
      driftloop runs list -A
    """
    if namespace is not None and all_namespaces:
        raise click.UsageError("give -n NAMESPACE or -A, not both")
    if status:
        selector = f"{selector},{phase_selector(status)}" if selector else phase_selector(status)
    workflows = client().list_workflows(selector, namespace="" if all_namespaces else namespace)
    if output == "json":
        click.echo(json.dumps(workflows, indent=2, sort_keys=True))
    elif output == "yaml":
        click.echo(yaml.safe_dump(workflows, sort_keys=False))
    elif output == "name":
        for workflow in workflows:
            click.echo(workflow["metadata"]["name"])
    elif workflows:
        print_table(list_table(workflows, with_namespace=all_namespaces))
    else:
        click.echo("no workflows (submit one with `driftloop submit training`)")


@runs_group.command("get")
@click.argument("name")
@_OUTPUT
def get_command(name: str, output: str) -> None:
    """Show a workflow: status, parameters and its node tree (like `argo get`).

    \b
    Examples:
      driftloop runs get @latest
      driftloop runs get training-x7k2p -o yaml
    """
    argo = client()
    workflow = argo.get_workflow(name)
    if output == "name":
        click.echo(workflow["metadata"]["name"])
    else:
        print_workflow(workflow, output, server_log_lines(argo, workflow["metadata"]["name"]))


@runs_group.command("logs")
@click.argument("name")
@click.option("--node", default=None, help="Only this node: its pod name, node id or display name (e.g. train).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the workflow finishes.")
@click.option("--no-prefix", is_flag=True, help="Do not prefix lines with the pod name.")
def logs_command(name: str, node: str | None, follow: bool, no_prefix: bool) -> None:
    """Print the logs of a workflow's pods (like `argo logs`).

    \b
    Examples:
      driftloop runs logs @latest
      driftloop runs logs @latest --node train -f
    """
    argo = client()
    if node:
        _check_node(argo, name, node)
    for entry in argo.logs(name, node=node, follow=follow):
        content = entry.get("content", "")
        click.echo(content if no_prefix else f"{entry.get('podName', '')}: {content}")


def _check_node(argo: Any, name: str, node: str) -> None:
    """``--node`` must name a pod node; else an error listing them (an empty log with rc 0 hides a typo)."""
    workflow = argo.get_workflow(name)
    if pods_matching(workflow, node):
        return
    real = workflow["metadata"]["name"]
    known = [f"{n.get('displayName')} ({pod_name(real, n)})" for n in pod_nodes(workflow)]
    raise NotFoundError(
        f"workflow {real} has no node {node!r}",
        hint=f"its pod nodes (display name and pod name): {', '.join(known) or 'none yet'}",
    )


def _act(verb: str, name: str, **options: Any) -> None:
    workflow = client().act(verb, name, **{k: v for k, v in options.items() if v not in (None, False, ())})
    phase = (workflow.get("status") or {}).get("phase") or "Pending"
    click.echo(f"workflow {workflow['metadata']['name']} {_PAST[verb]} (now {phase})")


@runs_group.command("retry")
@click.argument("name")
@click.option("--node-field-selector", default=None, help="Only retry the nodes matching, e.g. 'displayName=train'.")
@click.option("--restart-successful", is_flag=True, help="Also re-run the succeeded nodes the selector matches.")
@click.option("-p", "--parameter", "parameters", multiple=True, help="Override a global parameter: name=value.")
def retry_command(name: str, node_field_selector: str | None, restart_successful: bool, parameters: tuple) -> None:
    """Re-run only the failed nodes of a finished workflow (like `argo retry`).

    \b
    Example:
      driftloop runs retry @latest
    """
    _act("retry", name, node_field_selector=node_field_selector, restart_successful=restart_successful,
         parameters=list(parameters) or None)  # fmt: skip


@runs_group.command("resubmit")
@click.argument("name")
@click.option("-p", "--parameter", "parameters", multiple=True, help="Override a global parameter: name=value.")
def resubmit_command(name: str, parameters: tuple) -> None:
    """Run a copy of a workflow from scratch, under a new name (like `argo resubmit`).

    \b
    Example:
      driftloop runs resubmit @latest -p dataset=shifted
    """
    workflow = client().act("resubmit", name, parameters=list(parameters) or None)
    click.echo(f"resubmitted as {workflow['metadata']['name']}")


def _simple_verb(verb: str, doc: str) -> None:
    @runs_group.command(verb, help=doc)
    @click.argument("name")
    def command(name: str) -> None:
        _act(verb, name)


_simple_verb("stop", "Stop a running workflow: kill its running steps, then run its exit handlers (like `argo stop`).\n\n"
             "\b\nExample:\n  driftloop runs stop @latest")  # fmt: skip
_simple_verb("terminate", "Terminate a running workflow at once, without exit handlers (like `argo terminate`).\n\n"
             "\b\nExample:\n  driftloop runs terminate @latest")  # fmt: skip
_simple_verb("suspend", "Suspend a running workflow: no new step starts until resumed (like `argo suspend`).\n\n"
             "\b\nExample:\n  driftloop runs suspend @latest")  # fmt: skip
_simple_verb("resume", "Resume a suspended workflow or its suspend steps (like `argo resume`).\n\n"
             "\b\nExample:\n  driftloop runs resume @latest")  # fmt: skip


@runs_group.command("delete")
@click.argument("names", nargs=-1, required=True)
def delete_command(names: tuple[str, ...]) -> None:
    """Delete workflows (a running one is terminated first), like `argo delete`.

    \b
    Example:
      driftloop runs delete @latest
    """
    argo = client()
    for name in names:
        resolved = argo.resolve_name(name)
        argo.delete_workflow(resolved)
        click.echo(f"workflow {resolved} deleted")
