"""The sidecar's Prometheus metrics, in a registry of its own so several sidecars can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["DROP_REASONS", "ShipperMetrics", "SidecarMetrics"]

# Why a captured payload may be dropped; every drop is counted under one of these labels.
DROP_REASONS = ("spool_full", "body_too_large", "spool_error", "torn_frame")

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SidecarMetrics:
    """Counters the proxy and the lake writer update; exposed at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        prefix = "driftloop_sidecar_"
        self.requests = Counter(
            prefix + "requests_total", "Requests proxied, by HTTP status.", ["code"], registry=self.registry
        )
        self.captured = Counter(prefix + "captured_total", "Payloads appended to the spool.", registry=self.registry)
        self.dropped = Counter(
            prefix + "dropped_total", "Payloads not captured, by reason.", ["reason"], registry=self.registry
        )
        for reason in DROP_REASONS:
            self.dropped.labels(reason=reason)
        self.spooled_bytes = Gauge(
            prefix + "spooled_bytes", "Bytes in the spool not yet written to the lake.", registry=self.registry
        )
        self.spool_segments = Gauge(
            prefix + "spool_segments", "Sealed spool segments waiting for the lake.", registry=self.registry
        )
        self.lake_write_seconds, self.lake_write_errors, self.lake_rows, self.malformed = _lake_series(self.registry)
        self.upstream_latency = Histogram(
            prefix + "upstream_latency_seconds",
            "Time the model server took to answer.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            prefix + "upstream_errors_total",
            "Requests the upstream could not answer, by kind.",
            ["kind"],
            registry=self.registry,
        )
        # per route (a model server behind the routing file): what `driftloop deployer` judges a canary by
        self.route_requests = Counter(
            prefix + "route_requests_total",
            "Requests answered, by route (model server) and HTTP status (502/504: the route did not answer).",
            ["route", "code"],
            registry=self.registry,
        )
        self.route_latency = Histogram(
            prefix + "route_latency_seconds",
            "Time each route's model server took to answer.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )


class ShipperMetrics:
    """The lake half of :class:`SidecarMetrics`, under the same names, for ``driftloop ship --metrics-listen``.

    The shipper is a process of its own (the in-process capture's sidecar container), so it exports its own
    registry; only the series it updates, so a sum over a pod's targets counts nothing twice (the spool gauges
    and request series come from the scoring process's ``/metrics``).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        prefix = "driftloop_sidecar_"
        self.dropped = Counter(
            prefix + "dropped_total", "Payloads not captured, by reason.", ["reason"], registry=self.registry
        )
        self.torn = self.dropped.labels(reason="torn_frame")  # the one reason the shipper sees
        self.lake_write_seconds, self.lake_write_errors, self.lake_rows, self.malformed = _lake_series(self.registry)


def _lake_series(registry: CollectorRegistry) -> tuple[Histogram, Counter, Counter, Counter]:
    """The series of writing spool segments to the lake: the proxy and the shipper export them under one name."""
    prefix = "driftloop_sidecar_"
    return (
        Histogram(prefix + "lake_write_seconds", "Time to write one spool segment to the lake.",
                  buckets=_LATENCY_BUCKETS, registry=registry),
        Counter(prefix + "lake_write_errors_total", "Failed lake writes (retried).", registry=registry),
        Counter(prefix + "lake_rows_total", "Inference records written to the lake.", registry=registry),
        Counter(prefix + "malformed_total", "Captured requests whose body is not a scoring payload.", registry=registry),
    )  # fmt: skip
