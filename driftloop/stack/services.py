"""The services of the local stack, declared as data: add one with a ~10-line ``Service(...)`` entry.

Each service says how to start it (a command built from the settings), where its health endpoint is, which
environment it needs and what it depends on. ``driftloop stack up`` starts them in this order.

Example (what the serving issue appends)::

    SERVICES.append(
        Service(
            name="model-server",
            description="MLflow pyfunc server for the champion.",
            command=lambda s: [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{s.model_name}@champion",
                               "--port", "5001", "--env-manager", "local"],
            health_url=lambda s: "http://127.0.0.1:5001/ping",
            env=lambda s: {"MLFLOW_TRACKING_URI": s.mlflow_uri},
            depends_on=("mlflow",),
        )
    )
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from driftloop.config import Settings, read_argo_token
from driftloop.errors import NotFoundError

__all__ = ["SERVICES", "Service", "host_port", "service"]


@dataclass(frozen=True)
class Service:
    """One background process of the stack."""

    name: str
    description: str
    command: Callable[[Settings], list[str]]
    health_url: Callable[[Settings], str]  # answers 2xx when the service is ready
    env: Callable[[Settings], dict[str, str]] = field(default=lambda settings: {})
    depends_on: tuple[str, ...] = ()
    start_timeout_s: float = 90.0
    stop_timeout_s: float = 15.0  # SIGTERM, then this long to exit before SIGKILL
    health_headers: Callable[[Settings], dict[str, str]] = field(default=lambda settings: {})
    # process groups it starts in their own sessions and may leave behind (SIGKILLed, or crashed earlier): the stack
    # stops these after the service itself, so `stack down` leaves nothing running
    leftover_groups: Callable[[Settings], list[int]] = field(default=lambda settings: [])


def host_port(url: str, default_port: int) -> tuple[str, int]:
    """Host and port of a service URL (the port the stack must listen on)."""
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def _mlflow_command(settings: Settings) -> list[str]:
    host, port = host_port(settings.mlflow_uri, 5000)
    store = settings.home / "mlflow"
    return [
        sys.executable, "-m", "mlflow", "server",
        "--host", host, "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
        "--artifacts-destination", str(store / "artifacts"),
        "--serve-artifacts",
    ]  # fmt: skip


def _engine_command(settings: Settings) -> list[str]:
    host, port = host_port(settings.argo_server, 2746)
    return [sys.executable, "-m", "driftloop", "engine", "serve", "--host", host, "--port", str(port)]


def _engine_health_headers(settings: Settings) -> dict[str, str]:
    """The engine's token, read at each check: the engine generates it on its first start (never on argv)."""
    token = settings.argo_token or read_argo_token(dict(os.environ), settings.home, settings.argo_server)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _serving_command(settings: Settings, name: str) -> list[str]:
    """The model server (waits for a champion, then `mlflow models serve`), the sidecar in front of it, the monitor."""
    host, port = host_port(settings.model_server_url, 5001)
    if name == "monitor":
        metrics_host, metrics_port = host_port(settings.monitor_url, 9308)
        # --wake-on-write: evaluate when the sidecar writes new payloads, not up to an interval later
        return [sys.executable, "-m", "driftloop", "monitor", "--model", settings.model_name,
                "--metrics-host", metrics_host, "--metrics-port", str(metrics_port),
                "--interval", str(settings.monitor_interval), "--last-rows", str(settings.monitor_window_rows),
                "--last-minutes", str(settings.monitor_window_minutes), "--min-rows", str(settings.monitor_min_rows),
                "--drift-share", str(settings.monitor_drift_share),
                "--wake-on-write"]  # fmt: skip
    if name == "model-server":
        # captures in process (MLflow's scoring app + one spool write a request) and ships its spool to the lake
        spool = settings.home / "spool" / f"{settings.model_name}-champion"
        return [sys.executable, "-m", "monitors.sidecar.champion", "--model", settings.model_name,
                "--host", host, "--port", str(port), "--spool", str(spool)]  # fmt: skip
    listen = "{}:{}".format(*host_port(settings.serving_url, 8180))
    routes = settings.home / "deployer" / "routes.json"  # what `driftloop deployer` writes (monitors/deployer)
    # route only: every model server behind it (this one's and the deployer's) captures in process
    return [sys.executable, "-m", "driftloop", "sidecar", "--upstream", settings.model_server_url, "--listen", listen,
            "--routes", str(routes), "--no-capture"]  # fmt: skip


SERVICES: list[Service] = [
    Service(
        name="mlflow",
        description="MLflow tracking + registry (SQLite backend, artifacts under $DRIFTLOOP_HOME/mlflow).",
        command=_mlflow_command,
        health_url=lambda s: f"{s.mlflow_uri}/health",
        # without this, `mlflow server` spawns ~7 job-runner processes (2+ GB)
        env=lambda s: {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    ),
    Service(
        name="engine",
        description="The embedded Argo engine serving the Argo Server API at DRIFTLOOP_ARGO_SERVER.",
        command=_engine_command,
        health_url=lambda s: f"{s.argo_server}/api/v1/version",
        health_headers=_engine_health_headers,
        depends_on=("mlflow",),
    ),
    # serving (monitors/sidecar): /health is 200 while it waits for a champion; /ping says 503 NO_CHAMPION until then
    Service(
        name="model-server",
        description="MLflow scoring app for models:/<model>@champion, capturing in process; its shipper writes the lake.",
        command=lambda s: _serving_command(s, "model-server"),
        health_url=lambda s: f"{s.model_server_url}/health",
        depends_on=("mlflow",),
    ),
    Service(
        name="sidecar",
        description="Router at DRIFTLOOP_SERVING_URL: the deployer's canary split (the model servers capture).",
        command=lambda s: _serving_command(s, "sidecar"),
        health_url=lambda s: f"{s.serving_url}/healthz",
        depends_on=("model-server",),
    ),
    Service(
        name="monitor",
        description="Drift monitor on the lake; Prometheus metrics at DRIFTLOOP_MONITOR_URL/metrics.",
        command=lambda s: _serving_command(s, "monitor"),
        health_url=lambda s: f"{s.monitor_url}/metrics",
        depends_on=("sidecar",),
    ),
]


def _trigger_command(settings: Settings) -> list[str]:
    host, port = host_port(settings.trigger_url, 9095)
    return [sys.executable, "-m", "driftloop", "trigger", "serve", "--host", host, "--port", str(port)]


# alerting (monitors/receiver): the receiver first, so Alertmanager's first notification finds it
SERVICES += [
    Service(
        name="trigger",
        description="Alertmanager receiver at DRIFTLOOP_TRIGGER_URL: one retraining Workflow per drift incident.",
        command=_trigger_command,
        health_url=lambda s: f"{s.trigger_url}/healthz",
        depends_on=("engine",),
    ),
    Service(
        name="alertmanager",
        description="Alertmanager (Debian) at DRIFTLOOP_ALERTMANAGER_URL, config generated under $DRIFTLOOP_HOME.",
        command=lambda s: [sys.executable, "-m", "monitors.receiver.launch", "alertmanager"],
        health_url=lambda s: f"{s.alertmanager_url}/-/ready",
        depends_on=("trigger",),
    ),
    Service(
        name="prometheus",
        description="Prometheus (Debian) at DRIFTLOOP_PROMETHEUS_URL: 1 s scrapes of sidecar, monitor, receiver; rules.",
        command=lambda s: [sys.executable, "-m", "monitors.receiver.launch", "prometheus"],
        health_url=lambda s: f"{s.prometheus_url}/-/ready",
        depends_on=("alertmanager", "monitor"),
    ),
]


# deploying (monitors/deployer): the local Argo CD + Rollouts; it routes the sidecar's traffic to its model servers
SERVICES.append(
    Service(
        name="deployer",
        description="Follows the GitOps branch; canaries each new pin through the sidecar (DRIFTLOOP_DEPLOYER_URL).",
        command=lambda s: [sys.executable, "-m", "driftloop", "deployer"],
        health_url=lambda s: f"{s.deployer_url}/healthz",
        depends_on=("sidecar", "monitor"),  # its canary analysis reads both /metrics
        # it stops its model servers (each drains its spool to the lake) before it exits: a SIGKILL first would
        # leave them running in their own sessions, as after a crash (they are adopted then, but not after a stop)
        stop_timeout_s=60.0,
        leftover_groups=lambda s: _deployer_model_servers(s),
    )
)


def _deployer_model_servers(settings: Settings) -> list[int]:
    """The model servers a killed or crashed deployer left (its state file's format is the deployer's own)."""
    from monitors.deployer._state import recorded_servers_running  # imported on `stack down` only

    return recorded_servers_running(settings.home)


def service(name: str) -> Service:
    for candidate in SERVICES:
        if candidate.name == name:
            return candidate
    known = ", ".join(candidate.name for candidate in SERVICES)
    raise NotFoundError(f"no stack service named {name!r}", hint=f"services: {known} (see `driftloop stack status`)")
