"""The monitor's Prometheus metrics, on a registry of its own (so tests and several monitors never collide).

Per-version series are removed when they stop being true (new champion, empty window, a column that
could not be tested), so a dashboard never shows a stale drift score as if it were current.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitors.drift._compute import DriftResult

__all__ = ["MonitorMetrics"]


class MonitorMetrics:
    def __init__(self, model: str, registry: CollectorRegistry | None = None) -> None:
        self.model = model
        self.registry = registry or CollectorRegistry()
        feature_labels = ["model", "version", "feature", "method"]
        self.feature_score = Gauge(
            "driftloop_feature_drift_score",
            "Drift score of a feature: p-value (ks, chisquare, z) or distance (wasserstein, jensenshannon).",
            feature_labels,
            registry=self.registry,
        )
        self.feature_drifted = Gauge(
            "driftloop_feature_drifted",
            "1 when the feature drifted at its threshold.",
            feature_labels,
            registry=self.registry,
        )
        self.drift_share = Gauge(
            "driftloop_drift_share",
            "Share of tested features that drifted.",
            ["model", "version"],
            registry=self.registry,
        )
        self.dataset_drift = Gauge(
            "driftloop_dataset_drift",
            "1 when the drift share reached the dataset threshold.",
            ["model", "version"],
            registry=self.registry,
        )
        self.window_rows = Gauge(
            "driftloop_window_rows", "Well-formed records in the evaluated window.", ["model"], registry=self.registry
        )
        self.schema_mismatch = Counter(
            "driftloop_payload_schema_mismatch",
            "Records whose column is missing, unexpected or of the wrong type versus the model's reference.",
            ["model", "column"],
            registry=self.registry,
        )
        self.malformed = Counter(
            "driftloop_payload_malformed",
            "Captured requests that could not be parsed.",
            ["model"],
            registry=self.registry,
        )
        self.errors = Counter(
            "driftloop_monitor_errors", "Evaluations that failed, by stage.", ["model", "stage"], registry=self.registry
        )
        self.last_success = Gauge(
            "driftloop_monitor_last_success_timestamp_seconds",
            "Unix time of the last evaluation that completed (an empty window counts).",
            registry=self.registry,
        )
        self._feature_series: set[tuple[str, str, str, str]] = set()
        self._version_series: set[tuple[str, str]] = set()

    def publish(self, version: str, result: DriftResult) -> None:
        """Export one evaluation, removing the series it no longer supports."""
        feature_series = set()
        for name, column in result.columns.items():
            labels = (self.model, version, name, column.method)
            self.feature_score.labels(*labels).set(column.score)
            self.feature_drifted.labels(*labels).set(1.0 if column.drifted else 0.0)
            feature_series.add(labels)
        self._drop_features(self._feature_series - feature_series)
        self._feature_series = feature_series
        share = result.drifted_share
        if share is None:
            self._drop_versions(self._version_series)
            self._version_series = set()
        else:
            self._drop_versions(self._version_series - {(self.model, version)})
            self.drift_share.labels(self.model, version).set(share)
            self.dataset_drift.labels(self.model, version).set(1.0 if result.dataset_drift else 0.0)
            self._version_series = {(self.model, version)}
        self.window_rows.labels(self.model).set(result.current_rows)

    def publish_empty(self, rows: int = 0) -> None:
        """No records, or too few to score: no drift series at all (a score from them would mislead), the count."""
        self._drop_features(self._feature_series)
        self._feature_series = set()
        self._drop_versions(self._version_series)
        self._version_series = set()
        self.window_rows.labels(self.model).set(rows)

    def succeeded(self) -> None:
        self.last_success.set(time.time())

    def _drop_features(self, series: set[tuple[str, str, str, str]]) -> None:
        for labels in series:
            self.feature_score.remove(*labels)
            self.feature_drifted.remove(*labels)

    def _drop_versions(self, series: set[tuple[str, str]]) -> None:
        for labels in series:
            self.drift_share.remove(*labels)
            self.dataset_drift.remove(*labels)
