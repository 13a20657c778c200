"""The deployer's hands: model server processes, the smoke test, and what it reads from the sidecar (the router).

Each model server runs in its own session, so a crashed (``kill -9``) deployer leaves them serving and the
restarted one adopts them by PID; a clean stop of the deployer stops them.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from driftloop.config import Settings
from driftloop.stack import free_port, pid_alive
from monitors.deployer._state import runs_model_server

__all__ = [
    "ModelServer",
    "MonitorReading",
    "RouteWindow",
    "SmokeFailed",
    "monitor_reading",
    "route_window",
    "ship_leftovers",
    "sidecar_routing",
    "smoke_test",
    "stop_servers",
]

SMOKE_ROWS = 8
SMOKE_ROUNDS = 3


class SmokeFailed(Exception):
    """The new version did not start or did not answer the reference sample with one finite number per row."""


@dataclass
class ModelServer:
    """One version's ``driftloop scoring-server --ship``: MLflow's scoring app capturing in process, its shipper
    child moving the spool to the lake (the cluster pod's two containers; ``monitors/sidecar/_ship_child.py``)."""

    version: str
    port: int
    pid: int
    model_dir: str
    spool_dir: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, version: str, model_dir: Path, log: Path, settings: Settings) -> ModelServer:
        port = free_port()
        spool = settings.home / "deployer" / "spool" / f"v{version}-{port}"  # never reused: one per server
        # a 0.5 s seal (the CLI's default is 5 s), as the stack's proxy had: the local loop stays a second behind
        command = [sys.executable, "-m", "driftloop", "scoring-server", "--model-uri", str(model_dir),
                   "--listen", f"127.0.0.1:{port}", "--spool", str(spool), "--model-version", version,
                   "--segment-age", "0.5", "--ship", "--lake", settings.lake_uri,
                   "--model", settings.model_name]  # fmt: skip
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MLFLOW_TRACKING_URI": settings.mlflow_uri}
        with log.open("ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return cls(version, port, proc.pid, str(model_dir), str(spool))

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "port": self.port, "pid": self.pid, "model_dir": self.model_dir,
                "spool_dir": self.spool_dir}  # fmt: skip

    def alive(self) -> bool:
        return pid_alive(self.pid)

    def is_ours(self) -> bool:
        """Alive, and the PID still runs our server on this model directory (not a recycled PID)."""
        return self.alive() and runs_model_server(self.pid, self.model_dir)

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float, cancelled: Callable[[], bool] = lambda: False) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not cancelled():
            if not self.alive():
                raise SmokeFailed(f"the model server of v{self.version} exited while starting (see its log)")
            if self.ready():
                return
            time.sleep(0.2)
        raise SmokeFailed(f"the model server of v{self.version} did not answer /ping within {timeout_s:g}s")

    def stop(self, timeout_s: float = 40.0) -> None:
        """SIGTERM to the process group (the server and its shipper, as a pod's SIGTERM); wait until both exited
        (the shipper last, after it shipped the segment sealed at exit). Then :func:`ship_leftovers`."""
        stop_servers([self], timeout_s)


def stop_servers(servers: list[ModelServer], timeout_s: float = 40.0) -> None:
    """Stop several at once: SIGTERM to every group first, one shared deadline, then SIGKILL to what is left
    (one after the other, each drain would add up: the stack gives the deployer a minute to stop)."""
    for server in servers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(_group_alive(server.pid) for server in servers) and time.monotonic() < deadline:
        time.sleep(0.1)
    for server in servers:
        if _group_alive(server.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    """A process of the group still runs. The leader is our child when this deployer started it: reaped here first,
    or its zombie would keep the group "alive" (``killpg(pgid, 0)`` succeeds on it) until the stop's deadline."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ship_leftovers(spool_dir: Path, settings: Settings, timeout_s: float = 10.0) -> bool:
    """Ship the segments a stopped (or killed) server and its shipper left in ``spool_dir``, then remove it.

    Nothing answered is lost when a server goes: its shipper drains on SIGTERM and after a ``kill -9`` of the server,
    and what it could not ship (it was killed too, or the lake was down) is shipped here. With the lake down the
    directory stays, and the next deployer start (``recover``) tries again. True when the directory is gone.
    """
    from monitors.sidecar.shipper import ship_leftovers as ship

    if not spool_dir.is_dir():
        return True
    outcome = ship(spool_dir, settings.lake_uri, settings.model_name, timeout_s)
    if outcome is None:  # its shipper still runs (a server being adopted, or one still draining): leave it
        return False
    drained, _ = outcome
    if drained:
        shutil.rmtree(spool_dir, ignore_errors=True)
    return drained


def _finite(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value) and all(_finite(v) for v in value.values())
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def smoke_test(url: str) -> str:
    """Score the reference sample (baseline rows of the generator): 200, one finite number per row."""
    from monitors.payloads import PayloadError, parse_predictions
    from monitors.traffic import encode_body, scenario_records

    frame = scenario_records("baseline", rows=SMOKE_ROWS, seed=7)
    body = encode_body(frame, "inputs")
    try:
        answer = httpx.post(
            f"{url}/invocations", content=body, headers={"Content-Type": "application/json"}, timeout=30
        )
    except httpx.HTTPError as exc:
        raise SmokeFailed(f"the reference sample got no answer: {exc}") from None
    if answer.status_code != 200:
        raise SmokeFailed(f"the reference sample got {answer.status_code}: {answer.text[:300]}")
    try:
        predictions = parse_predictions(answer.content)
    except PayloadError as exc:
        raise SmokeFailed(f"the answer to the reference sample is not predictions: {exc}") from None
    if len(predictions) != SMOKE_ROWS or not all(_finite(p) for p in predictions):
        raise SmokeFailed(
            f"expected {SMOKE_ROWS} finite predictions for the reference sample, got {predictions[:10]!r}"
        )
    return f"{SMOKE_ROWS} reference rows scored: {predictions[:3]!r}…"


def sidecar_routing(sidecar_url: str) -> dict[str, Any] | None:
    """The sidecar's routing report (``/readyz``: generation, routes, in-flight), or None when it does not answer."""
    try:
        report = httpx.get(f"{sidecar_url}/readyz", timeout=3.0).json()
    except (httpx.HTTPError, ValueError):
        return None
    routing = report.get("routing") if isinstance(report, dict) else None
    return routing if isinstance(routing, dict) else None


@dataclass(frozen=True)
class RouteWindow:
    """Cumulative counts of one route at one moment; subtract two to get a canary window."""

    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count)

    def since(self, start: RouteWindow) -> tuple[int, int, float | None]:
        """requests, errors and the p99 latency (s; histogram_quantile's interpolation) between ``start`` and now."""
        requests = int(self.requests - start.requests)
        errors = int(self.errors - start.errors)
        earlier = dict(start.buckets)
        counts = [(bound, count - earlier.get(bound, 0.0)) for bound, count in self.buckets]
        total = counts[-1][1] if counts else 0.0
        if total <= 0:
            return requests, errors, None
        rank, lower, below = 0.99 * total, 0.0, 0.0
        for bound, cumulative in counts:
            if cumulative >= rank:
                if math.isinf(bound):
                    return requests, errors, lower
                share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
                return requests, errors, lower + (bound - lower) * share
            lower, below = bound, cumulative
        return requests, errors, lower


def route_window(sidecar_url: str, route: str) -> RouteWindow:
    """The route's counters from the sidecar's ``/metrics`` (the same series the AnalysisTemplate queries)."""
    text = httpx.get(f"{sidecar_url}/metrics", timeout=3.0).text
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("route") != route:
                continue
            if sample.name == "driftloop_sidecar_route_requests_total":
                requests += sample.value
                if sample.labels.get("code", "").startswith("5"):
                    errors += sample.value
            elif sample.name == "driftloop_sidecar_route_latency_seconds_bucket":
                buckets[float(sample.labels["le"])] = sample.value
    return RouteWindow(requests, errors, tuple(sorted(buckets.items())))


@dataclass(frozen=True)
class MonitorReading:
    """The drift monitor's series of one model at one moment (``None`` for a series it does not export)."""

    window_rows: float | None  # exported on every evaluation, an empty window too: "the monitor reports"
    drift_share: dict[str, float]  # model version -> share of drifted features (only versions it scored)
    schema_mismatches: float  # cumulative, all columns

    @classmethod
    def parse(cls, text: str, model: str) -> MonitorReading:
        rows: float | None = None
        shares: dict[str, float] = {}
        mismatches = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("model") != model:
                    continue
                if sample.name == "driftloop_window_rows":
                    rows = sample.value
                elif sample.name == "driftloop_drift_share":
                    shares[sample.labels.get("version", "")] = sample.value
                elif sample.name == "driftloop_payload_schema_mismatch_total":
                    mismatches += sample.value
        return cls(rows, shares, mismatches)


def monitor_reading(monitor_url: str, model: str) -> MonitorReading | None:
    """The monitor's ``/metrics`` (the series the AnalysisTemplate queries), or None when it does not answer."""
    try:
        answer = httpx.get(f"{monitor_url}/metrics", timeout=3.0)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    try:
        return MonitorReading.parse(answer.text, model)
    except ValueError:  # not the exposition format: not a monitor
        return None
