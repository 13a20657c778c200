"""The receiver's Prometheus metrics, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["DECISIONS", "OUTCOMES", "ReceiverMetrics"]

DECISIONS = ("ignored", "duplicate", "cooldown", "in-flight", "submit")
OUTCOMES = ("accepted", "unauthorized", "too_large", "unsupported_media_type", "invalid", "unavailable")
_PHASES = ("Succeeded", "Failed", "Error")


class ReceiverMetrics:
    def __init__(self, models: tuple[str, ...]) -> None:
        self.registry = CollectorRegistry()
        prefix = "driftloop_trigger_"
        self.notifications = Counter(
            prefix + "notifications", "Webhook notifications received, by outcome.", ["outcome"], registry=self.registry
        )
        self.decisions = Counter(
            prefix + "decisions", "Alert decisions, by kind.", ["decision"], registry=self.registry
        )
        self.submission_seconds = Histogram(
            prefix + "submission_seconds",
            "Time to create the retraining Workflow at the Argo Server.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.submission_failures = Counter(
            prefix + "submission_failures", "Failed submission attempts (retried).", ["model"], registry=self.registry
        )
        self.retrains_finished = Counter(
            prefix + "retrains_finished", "Drift retrains that finished, by phase.", ["model", "phase"],
            registry=self.registry,
        )  # fmt: skip
        for outcome in OUTCOMES:
            self.notifications.labels(outcome)
        for decision in DECISIONS:
            self.decisions.labels(decision)
        for model in models:  # increase() needs the series before the first failure
            self.submission_failures.labels(model)
            for phase in _PHASES:
                self.retrains_finished.labels(model, phase)
