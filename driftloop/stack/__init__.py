"""`driftloop stack up|down|status|logs`: the local stack as background processes with PID files and logs.

Services are declared in :mod:`driftloop.stack.services`; the process manager is in ``_process``.
"""

from __future__ import annotations

import click

from driftloop.config import get_settings
from driftloop.stack._process import ProcessManager, ServiceState, free_port, pid_alive
from driftloop.stack.services import SERVICES, Service, service

__all__ = [
    "SERVICES",
    "ProcessManager",
    "Service",
    "ServiceState",
    "free_port",
    "ordered",
    "pid_alive",
    "stack_down",
    "stack_group",
    "stack_up",
]


def ordered(names: tuple[str, ...] | list[str] = ()) -> list[Service]:
    """The named services (all when none) plus their dependencies, dependencies first."""
    known = {s.name for s in SERVICES}
    unknown = [name for name in names if name not in known]
    if unknown:
        from driftloop.errors import NotFoundError

        raise NotFoundError(f"unknown service(s) {unknown}", hint=f"services: {', '.join(sorted(known))}")
    wanted: list[str] = []

    def visit(name: str) -> None:
        for dependency in service(name).depends_on:
            visit(dependency)
        if name not in wanted:
            wanted.append(name)

    for name in names or [s.name for s in SERVICES]:
        visit(name)
    return [service(name) for name in wanted]


def stack_up(names: tuple[str, ...] = ()) -> list[ServiceState]:
    manager = ProcessManager(get_settings())
    return [manager.start(svc) for svc in ordered(names)]


def stack_down(names: tuple[str, ...] = ()) -> list[str]:
    manager = ProcessManager(get_settings())
    targets = [s for s in SERVICES if s.name in names] if names else list(SERVICES)
    return [svc.name for svc in manager.stop_all(list(reversed(targets)))]


def _echo_state(state: ServiceState) -> None:
    colour = {"running": "green", "starting": "yellow", "stale": "red"}.get(state.status)
    pid = f"pid {state.pid}" if state.pid else "-"
    click.echo(f"{state.name:14} {click.style(f'{state.status:9}', fg=colour)} {pid:11} {state.url}  log: {state.log}")


@click.group("stack")
def stack_group() -> None:
    """Start, stop and inspect the local stack: background processes with PID files and logs under
    $DRIFTLOOP_HOME/stack/.

    \b
    Examples:
      driftloop stack up                 # every service, dependencies first, waits until healthy
      driftloop stack up mlflow          # only MLflow (SQLite backend, job execution disabled)
      driftloop stack status
      driftloop stack logs mlflow
      driftloop stack down
    Ports come from DRIFTLOOP_MLFLOW_URI and DRIFTLOOP_ARGO_SERVER; `driftloop stack up --help` lists the services.
    """


class _ListsServices(click.Command):
    """Help that ends with the services as declared now (other modules may append to SERVICES)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(svc.name, svc.description + (f" (needs {', '.join(svc.depends_on)})" if svc.depends_on else ""))
                for svc in SERVICES]  # fmt: skip
        with formatter.section("Services, in start order"):
            formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


@stack_group.command("up", cls=_ListsServices)
@click.argument("services", nargs=-1)
def up_command(services: tuple[str, ...]) -> None:
    """Start SERVICES (default: all) in the background and wait until each answers its health check.

    A service's dependencies start first. Each runs detached, with its PID file and log under
    $DRIFTLOOP_HOME/stack/; a service already running is left as it is.

    \b
    Examples:
      driftloop stack up                  # everything
      driftloop stack up engine           # the embedded Argo engine (and what it needs)
      driftloop stack up mlflow sidecar
    """
    for state in stack_up(services):
        _echo_state(state)


@stack_group.command("down")
@click.argument("services", nargs=-1)
def down_command(services: tuple[str, ...]) -> None:
    """Stop SERVICES (default: all) together: SIGTERM to each process group, SIGKILL after 15 s.

    This includes an engine that `driftloop submit` started because nothing answered.

    \b
    Examples:
      driftloop stack down
      driftloop stack down engine
    """
    stopped = stack_down(services)
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack_group.command("status")
def status_command() -> None:
    """Show each service: running / starting / stopped / stale (PID file left by a crash), PID, URL, log.

    \b
    Example:
      driftloop stack status
    """
    manager = ProcessManager(get_settings())
    for svc in SERVICES:
        _echo_state(manager.state(svc))


@stack_group.command("logs")
@click.argument("service_name")
@click.option("-n", "--lines", default=40, show_default=True)
def logs_command(service_name: str, lines: int) -> None:
    """Print the last lines of a service's log.

    \b
    Examples:
      driftloop stack logs engine
      driftloop stack logs mlflow -n 200
    """
    click.echo(ProcessManager(get_settings()).tail(ordered([service_name])[-1], lines))
