"""``driftloop deployer``: run the local stand-in for Argo CD + Argo Rollouts, with its status endpoint."""

from __future__ import annotations

import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import click

from driftloop.config import bound_mlflow_retries, get_settings
from driftloop.errors import ConfigError
from workflows.gitops.pin import ENVIRONMENTS

__all__ = ["deployer_command", "status_server"]


def status_server(deployer: Any, host: str, port: int) -> ThreadingHTTPServer:
    """``GET /status`` (JSON), ``/metrics`` (Prometheus), ``/healthz``; read-only, everything else 404/405."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b'{"status": "ok"}')
            elif path == "/status":
                self._send(200, json.dumps(deployer.snapshot(), indent=2).encode())
            elif path == "/metrics":
                self._send(200, generate_latest(deployer.metrics.registry), CONTENT_TYPE_LATEST)
            else:
                error = {"error_code": "NOT_FOUND", "message": f"no such path {path!r}",
                         "hint": "GET /status, /metrics or /healthz"}  # fmt: skip
                self._send(404, json.dumps(error).encode())

        def _not_allowed(self) -> None:
            error = {"error_code": "METHOD_NOT_ALLOWED", "message": "the deployer's endpoint is read-only",
                     "hint": "change what is served by a commit: `driftloop promote` / `driftloop rollback`"}  # fmt: skip
            self._send(405, json.dumps(error).encode())

        do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

        def log_message(self, format: str, *args: Any) -> None:
            return None

    try:
        return ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise ConfigError(
            f"the deployer cannot listen on {host}:{port}: {exc.strerror}",
            hint="set DRIFTLOOP_DEPLOYER_URL to a free port (is another deployer running?)",
        ) from None


@click.command("deployer")
@click.option("--env", "environment", type=click.Choice(ENVIRONMENTS), default=None,
              help="The pin to serve [default: DRIFTLOOP_DEPLOYER_ENVIRONMENT].")  # fmt: skip
@click.option("-v", "--verbose", is_flag=True, help="Log every step, not only outcomes.")
def deployer_command(environment: str | None, verbose: bool) -> None:
    """Follow the GitOps branch and roll each new model pin out through the sidecar, canary first.

    On a new pin: verify its sha256 against the registry artifact (a mismatch is refused, logged and counted in
    driftloop_deployer_events_total{event="digest_mismatch"}); start the version's model server beside the old
    one (`driftloop scoring-server --ship`: it captures every payload in process and ships its spool to the lake,
    so the stack's sidecar only routes); smoke-test it with the reference sample; move DRIFTLOOP_DEPLOYER_CANARY_STEPS of the sidecar's traffic
    to it, judging each step with the AnalysisTemplate's conditions (monitors/deployer/analysis.py: error-rate,
    p99-latency, drift-share, payload-schema-mismatch; thresholds DRIFTLOOP_DEPLOYER_MAX_*), reading the sidecar's
    and the monitor's /metrics; then all of it, and stop the old one once nothing is in flight to it. A failed smoke test or analysis keeps the old version
    serving and commits a rollback (`driftloop history` shows it as deployer-rollback). A first deployment skips
    the canary steps. Restarted after a crash, it adopts the servers still running.

    \b
    Examples:
      driftloop stack up deployer            # as a service of the local stack
      driftloop deployer -v                  # in the foreground
      curl -s 127.0.0.1:9097/status | jq .phase
    """
    from driftloop.stack.services import host_port
    from monitors.deployer.deployer import Deployer, DeployerOptions

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("driftloop.deployer").setLevel(logging.INFO)
    settings = get_settings()
    options = DeployerOptions(
        environment=environment or settings.deployer_environment,
        canary_steps=settings.deployer_canary_steps,
        canary_window_s=settings.deployer_canary_window,
        analysis_timeout_s=settings.deployer_analysis_timeout,
        poll_s=settings.deployer_poll,
    )
    if options.environment not in ENVIRONMENTS:
        raise ConfigError(f"DRIFTLOOP_DEPLOYER_ENVIRONMENT={options.environment!r} is not an environment",
                          hint=f"use one of: {', '.join(ENVIRONMENTS)}")  # fmt: skip
    bound_mlflow_retries()  # it retries on its own loop; a SIGTERM must not wait behind MLflow's minutes of backoff
    deployer = Deployer(settings, options)
    server = status_server(deployer, *host_port(settings.deployer_url, 9097))
    threading.Thread(target=server.serve_forever, name="deployer-status", daemon=True).start()

    def on_signal(signum: int, _: object) -> None:
        deployer.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(f"deployer: {settings.model_name} in {options.environment} from {deployer.repo.url} "
               f"({settings.gitops_branch}); status {settings.deployer_url}/status", err=True)  # fmt: skip
    try:
        deployer.run()
    finally:
        deployer.shutdown()
        server.shutdown()
