"""The deployer's files (routing file, state) and its own Prometheus metrics (``/metrics`` of its status endpoint)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = [
    "EVENTS",
    "DeployerMetrics",
    "file_generation",
    "recorded_servers_running",
    "routes_file",
    "runs_model_server",
    "scrape_targets_file",
    "state_file",
    "write_atomic",
]

EVENTS = ("deployed", "digest_mismatch", "smoke_failed", "analysis_failed", "error")


@dataclass
class DeployerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.events = Counter("driftloop_deployer_events_total", "Deployments by outcome.", ["event"],
                              registry=self.registry)  # fmt: skip
        for event in EVENTS:
            self.events.labels(event=event)
        self.serving = Gauge("driftloop_deployer_serving_info", "1 for the version serving all traffic.", ["version"],
                             registry=self.registry)  # fmt: skip
        self.canary_weight = Gauge("driftloop_deployer_canary_weight", "Share (%) of traffic on the canary.",
                                   registry=self.registry)  # fmt: skip


def routes_file(home: Path) -> Path:
    """The routing file the deployer writes and the stack's sidecar follows (``--routes``)."""
    return home / "deployer" / "routes.json"


def state_file(home: Path) -> Path:
    """What the deployer serves and which model servers it runs (written after every change; read at its restart)."""
    return home / "deployer" / "state.json"


def runs_model_server(pid: int, model_dir: str) -> bool:
    """``pid`` runs our ``scoring-server`` on ``model_dir`` (not a PID recycled for something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"scoring-server" in cmdline and model_dir.encode() in cmdline


def recorded_servers_running(home: Path) -> list[int]:
    """The model servers the state records that still run (each leads its own process group, with its shipper).

    The deployer stops them on SIGTERM; these are what a SIGKILL or a crash of it left: ``driftloop stack down``
    stops them after it (``leftover_groups`` in ``driftloop/stack/services.py``).
    """
    try:
        state = json.loads(state_file(home).read_text())
        recorded = [(int(server["pid"]), str(server["model_dir"])) for server in state.get("servers", [])]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []
    return [pid for pid, model_dir in recorded if runs_model_server(pid, model_dir)]


def scrape_targets_file(home: Path) -> Path:
    """The model servers the deployer runs, in Prometheus' ``file_sd`` format: the local stack's Prometheus scrapes
    their ``/metrics`` (capture, spool and shedding series) as a PodMonitor would on a cluster."""
    return home / "deployer" / "scrape-targets.json"


def file_generation(path: Path) -> int:
    """The generation of the routing file on disk (0 when there is none or it is not ours)."""
    try:
        generation = json.loads(path.read_text()).get("generation", 0)
        return generation if type(generation) is int else 0  # not a bool
    except (OSError, ValueError, AttributeError):
        return 0


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
