"""The deployer's files (routing file, state) and its own Prometheus metrics (``/metrics`` of its status endpoint)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["EVENTS", "DeployerMetrics", "file_generation", "routes_file", "scrape_targets_file", "write_atomic"]

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
