"""Live model quality: captured predictions joined to their outcomes by request id, scored per model version.

``join_outcomes`` is the join (lake window ⋈ outcome store on ``(request_id, row)``); ``live_quality`` computes ROC
AUC, log loss and expected calibration error per version and per segment value (``term``, ``home_ownership``: the
evaluation step's segments) over the labelled rows; ``unseen_category_share`` is the label-free signal of
categories the champion never saw. ``QualityWatch`` is what the monitor calls each pass: it reads its own window,
joins, and exports (``QualityMetrics``). A version or segment with fewer than ``min_rows`` labelled rows exports
nothing: a ROC AUC from 20 rows would fire alerts on noise.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, Gauge

from workflows.steps._evaluation import SEGMENT_COLUMNS
from workflows.steps._metrics import calibration_error, log_loss, roc_auc

__all__ = [
    "QualityMetrics",
    "QualityWatch",
    "VersionQuality",
    "join_outcomes",
    "live_quality",
    "prediction_psi",
    "unseen_category_share",
]

log = logging.getLogger("driftloop.monitor")


@dataclass(frozen=True)
class VersionQuality:
    version: str
    rows: int  # labelled rows
    auc: float
    log_loss: float
    calibration_error: float
    segments: dict[str, tuple[int, float]] = field(default_factory=dict)  # "term=60 months" -> (rows, auc)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "labelled_rows": self.rows, "roc_auc": self.auc, "log_loss": self.log_loss,
                "calibration_error": self.calibration_error,
                "segments": {k: {"rows": n, "roc_auc": a} for k, (n, a) in self.segments.items()}}  # fmt: skip


def join_outcomes(window: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """The window's rows that have an outcome, with a numeric ``_score`` in [0, 1] and the ``outcome``."""
    if window.empty or outcomes.empty or "_request_id" not in window.columns:
        return pd.DataFrame(columns=[*window.columns, "outcome", "_score"])
    left = window.copy()
    left["_row"] = left["_row"].astype("int64") if "_row" in left.columns else 0
    joined = left.merge(outcomes[["_request_id", "_row", "outcome"]], on=["_request_id", "_row"], how="inner")
    joined["_score"] = pd.to_numeric(joined["_prediction"], errors="coerce")
    return joined[joined["_score"].between(0.0, 1.0)].reset_index(drop=True)


def live_quality(joined: pd.DataFrame, min_rows: int) -> list[VersionQuality]:
    """ROC AUC, log loss and calibration error per model version (and segment) with at least ``min_rows`` labels
    of both classes."""
    out: list[VersionQuality] = []
    for version, group in joined.groupby("_model_version", sort=True):
        labels, scores = group["outcome"].to_numpy(), group["_score"].to_numpy(np.float64)
        if len(group) < min_rows or not 0 < labels.sum() < len(labels):
            continue
        segments: dict[str, tuple[int, float]] = {}
        for column in SEGMENT_COLUMNS:
            if column not in group.columns:
                continue
            for value, index in group.groupby(column, dropna=True).indices.items():
                auc = roc_auc(labels[index], scores[index])
                if len(index) >= min_rows and not math.isnan(auc):
                    segments[f"{column}={value}"] = (len(index), auc)
        out.append(VersionQuality(str(version), len(group), roc_auc(labels, scores), log_loss(labels, scores),
                                  calibration_error(labels, scores), segments))  # fmt: skip
    return out


def unseen_category_share(window: pd.DataFrame, profile: Any) -> dict[str, float]:
    """Per categorical feature of the reference profile: the share of the window's non-null values it never saw."""
    shares: dict[str, float] = {}
    for name, column in profile.columns.items():
        if column.kind != "categorical" or name not in window.columns:
            continue
        values = window[name].dropna()
        if len(values):
            shares[name] = float((~values.isin(set(column.categories))).mean())
    return shares


def prediction_psi(predictions: pd.Series, deciles: list[float]) -> float | None:
    """Population stability index of the served scores against the evaluation holdout's deciles (10 bins of 10 %
    each by construction): the output's own drift, no labels needed. Above ~0.2 the score distribution moved."""
    scores = pd.to_numeric(predictions, errors="coerce").dropna().to_numpy(np.float64)
    if len(deciles) != 9 or not len(scores):
        return None
    bins = np.searchsorted(np.asarray(deciles, dtype=np.float64), scores, side="right")
    actual = np.maximum(np.bincount(bins, minlength=10) / len(scores), 1e-4)
    return float(np.sum((actual - 0.1) * np.log(actual / 0.1)))


class QualityMetrics:
    def __init__(self, model: str, registry: CollectorRegistry) -> None:
        self.model = model
        labels = ["model", "version"]
        self.auc = Gauge("driftloop_live_auc", "ROC AUC of served predictions against their outcomes (window).",
                         labels, registry=registry)  # fmt: skip
        self.log_loss = Gauge("driftloop_live_log_loss", "Log loss of served predictions against their outcomes.",
                              labels, registry=registry)  # fmt: skip
        self.calibration = Gauge("driftloop_live_calibration_error", "Expected calibration error (10 bins), live.",
                                 labels, registry=registry)  # fmt: skip
        self.rows = Gauge("driftloop_live_labelled_rows", "Captured predictions in the window that have an outcome.",
                          labels, registry=registry)  # fmt: skip
        self.segment_auc = Gauge("driftloop_live_segment_auc", "Live ROC AUC per segment value (term, home_ownership).",
                                 [*labels, "segment"], registry=registry)  # fmt: skip
        self.evaluation_auc = Gauge(
            "driftloop_evaluation_auc", "The champion's ROC AUC on its evaluation holdout (what live AUC is held to).",
            labels, registry=registry,
        )  # fmt: skip
        self.prediction_psi = Gauge(
            "driftloop_prediction_psi", "Population stability index of served scores against the champion's "
            "evaluation holdout deciles (the output's drift; > 0.2: moved).", labels, registry=registry,
        )  # fmt: skip
        self.unseen = Gauge("driftloop_unseen_category_share", "Share of a categorical feature's values in the window "
                            "that the champion's reference never saw.", ["model", "version", "feature"],
                            registry=registry)  # fmt: skip
        self._series: set[tuple[str, ...]] = set()
        self._segments: set[tuple[str, ...]] = set()
        self._unseen: set[tuple[str, ...]] = set()
        self._evaluation: set[tuple[str, ...]] = set()
        self._psi: set[tuple[str, ...]] = set()

    def publish(self, results: list[VersionQuality]) -> None:
        series: set[tuple[str, ...]] = set()
        segments: set[tuple[str, ...]] = set()
        for result in results:
            key = (self.model, result.version)
            self.auc.labels(*key).set(result.auc)
            self.log_loss.labels(*key).set(result.log_loss)
            self.calibration.labels(*key).set(result.calibration_error)
            self.rows.labels(*key).set(result.rows)
            series.add(key)
            for segment, (_, auc) in result.segments.items():
                self.segment_auc.labels(*key, segment).set(auc)
                segments.add((*key, segment))
        for gone in self._series - series:
            for gauge in (self.auc, self.log_loss, self.calibration, self.rows):
                gauge.remove(*gone)
        for gone in self._segments - segments:
            self.segment_auc.remove(*gone)
        self._series, self._segments = series, segments

    def publish_psi(self, version: str, psi: float | None) -> None:
        current: set[tuple[str, ...]] = {(self.model, version)} if psi is not None else set()
        for key in self._psi - current:
            self.prediction_psi.remove(*key)
        if psi is not None:
            self.prediction_psi.labels(self.model, version).set(psi)
        self._psi = current

    def publish_reference(self, version: str, evaluation_auc: float | None, unseen: dict[str, float]) -> None:
        current: set[tuple[str, ...]] = {(self.model, version)} if evaluation_auc is not None else set()
        for key in self._evaluation - current:
            self.evaluation_auc.remove(*key)
        if evaluation_auc is not None:
            self.evaluation_auc.labels(self.model, version).set(evaluation_auc)
        self._evaluation = current
        shares: set[tuple[str, ...]] = {(self.model, version, name) for name in unseen}
        for key in self._unseen - shares:
            self.unseen.remove(*key)
        for name, share in unseen.items():
            self.unseen.labels(self.model, version, name).set(share)
        self._unseen = shares


class QualityWatch:
    """One monitor's live quality: its window of the lake, the outcome store, the metrics."""

    def __init__(self, store: Any, metrics: QualityMetrics, *, last_rows: int, last_minutes: float | None,
                 min_rows: int) -> None:  # fmt: skip
        self.store, self.metrics = store, metrics
        self.last_rows, self.last_minutes, self.min_rows = last_rows, last_minutes, min_rows

    def evaluate(self, read_window: Any, lake_uri: str, model: str) -> list[VersionQuality]:
        since = None if self.last_minutes is None else datetime.now(UTC) - timedelta(minutes=self.last_minutes)
        frame = read_window(lake_uri, model, last_rows=self.last_rows, since=since).frame
        outcomes = self.store.outcomes_for(frame["_request_id"]) if len(frame) else pd.DataFrame()
        results = live_quality(join_outcomes(frame, outcomes), self.min_rows)
        self.metrics.publish(results)
        for result in results:
            log.info("live quality of %s v%s: ROC AUC %.4f over %d labelled rows", model, result.version, result.auc,
                     result.rows)  # fmt: skip
        return results
