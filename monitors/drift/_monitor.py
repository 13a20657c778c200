"""The drift monitor loop: read the latest window, compare with the champion's reference, export, report.

One ``evaluate()`` is one pass and raises on failure; ``run()`` repeats it every interval and survives
any failure (counted in ``driftloop_monitor_errors_total``, logged with what to do), because a monitor
that dies on one bad file is a monitor nobody notices is gone. With ``wake_on_write`` (a local lake) it also
evaluates as soon as the sidecar wrote new payloads (the lake's ``_last_write`` marker changed), at most every
``min_gap_s``: drift is seen a fraction of a second after it lands instead of up to an interval later. Every
``compact_interval_s`` (``DRIFTLOOP_LAKE_COMPACT_INTERVAL``) it also compacts the lake's finished hours and deletes
those past ``DRIFTLOOP_LAKE_RETENTION`` (``monitors.lake_compaction``), so its reads stay fast as the lake grows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.config import Settings
from driftloop.errors import ConfigError, DriftloopError
from monitors.drift._compute import DriftOptions, DriftResult, check_column_options, compute_drift
from monitors.drift._metrics import MonitorMetrics
from monitors.drift._payloads import check_payloads
from monitors.drift._sources import LoadedReference, ReferenceSource

__all__ = ["Evaluation", "Monitor", "MonitorConfig"]

log = logging.getLogger("driftloop.monitor")

WindowReader = Callable[..., Any]  # monitors.lake.read_window's signature
_UPKEEP_MAX_HOURS = 4  # hours compacted per upkeep pass (one an hour is the steady state)
_WATCH_POLL_S = 0.1  # how often a watching monitor stats the lake's last-write marker (one stat call)


@dataclass(frozen=True)
class MonitorConfig:
    """One monitor's settings. The window, interval and drift share have no defaults here: their one source is
    ``driftloop.config.Settings`` (``from_settings``), which the ``driftloop monitor`` flags default to as well."""

    model: str
    lake_uri: str
    reports_dir: Path
    last_rows: int | None
    last_minutes: float | None
    interval_s: float
    options: DriftOptions
    min_rows: int = 1  # fewer rows in the window: no drift scored (the stack's monitor: DRIFTLOOP_MONITOR_MIN_ROWS)
    html_reports: bool = True
    report_every_s: float = 600.0  # at most one HTML report per model version per this period
    wake_on_write: bool = False  # also evaluate when the lake gets new payloads (local lakes; else: the interval)
    min_gap_s: float = 0.5  # between two evaluations started by writes (a busy lake must not pin a core)
    compact_interval_s: float = 0.0  # lake upkeep (compaction, retention) every this many seconds; 0: off
    retention_s: float = 0.0  # hour partitions older than this are deleted by the upkeep; 0: kept

    @classmethod
    def from_settings(cls, settings: Settings, model: str | None = None, **overrides: Any) -> MonitorConfig:
        """The stack's monitor for ``model`` (default: the settings' model); keyword arguments override fields."""
        values: dict[str, Any] = {
            "model": model or settings.model_name,
            "lake_uri": settings.lake_uri,
            "reports_dir": settings.home / "reports",
            "last_rows": settings.monitor_window_rows,
            "last_minutes": settings.monitor_window_minutes,
            "interval_s": settings.monitor_interval,
            "min_rows": settings.monitor_min_rows,
            "options": DriftOptions(drift_share=settings.monitor_drift_share),
            "compact_interval_s": settings.lake_compact_interval,
            "retention_s": settings.lake_retention,
        }
        return cls(**{**values, **overrides})

    def __post_init__(self) -> None:
        if self.last_rows is None and self.last_minutes is None:
            raise ConfigError("the window is unbounded", hint="give --last-rows N and/or --last-minutes T")
        if self.interval_s <= 0:
            raise ConfigError(f"interval {self.interval_s}s is not positive", hint="e.g. --interval 60")


@dataclass(frozen=True)
class Evaluation:
    """What one pass saw and concluded (also what ``--once --json`` prints)."""

    version: str
    rows: int
    result: DriftResult | None  # None: empty window, nothing computed
    mismatches: dict[str, int]
    mismatch_reasons: dict[str, str]
    malformed: int
    report: Path | None = None
    quality: dict[str, Any] | None = None  # live quality (monitors/feedback/quality.py); None without a QualityWatch

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "rows": self.rows,
            "drift": None if self.result is None else self.result.to_dict(),
            "schema_mismatches": {
                c: {"records": n, "reason": self.mismatch_reasons[c]} for c, n in self.mismatches.items()
            },
            "malformed": self.malformed,
            "report": None if self.report is None else str(self.report),
            **({} if self.quality is None else {"quality": self.quality}),
        }


def _default_reader() -> WindowReader:
    from monitors.lake import read_window

    return read_window


class Monitor:
    def __init__(
        self,
        config: MonitorConfig,
        source: ReferenceSource,
        metrics: MonitorMetrics | None = None,
        read_window: WindowReader | None = None,
        quality: Any = None,  # monitors.feedback.quality.QualityWatch: live quality from joined outcomes
    ) -> None:
        self.config = config
        self.quality = quality
        self.source = source
        self.metrics = metrics or MonitorMetrics(config.model)
        self.read_window = read_window or _default_reader()
        self._reference: LoadedReference | None = None
        self._seen_requests: set[Any] = set()
        self._seen_malformed: set[Any] = set()
        self._last_report: dict[str, float] = {}
        self._last_upkeep = float("-inf")

    def _resolve_reference(self) -> LoadedReference:
        try:
            reference = self.source.resolve()
        except DriftloopError as exc:
            if self._reference is None or isinstance(exc, ConfigError):
                raise
            self.metrics.errors.labels(self.config.model, "reference").inc()
            log.warning(
                "cannot refresh the champion (%s); still using version %s", exc.message, self._reference.version
            )
            return self._reference
        if self._reference is None or reference.version != self._reference.version:
            log.info(
                "reference: %s version %s (%d features)",
                self.config.model,
                reference.version,
                len(reference.profile.columns),
            )
        self._reference = reference
        return reference

    def _read(self) -> Any:
        since = None
        if self.config.last_minutes is not None:
            since = datetime.now(UTC) - timedelta(minutes=self.config.last_minutes)
        return self.read_window(self.config.lake_uri, self.config.model, last_rows=self.config.last_rows, since=since)

    def evaluate(self) -> Evaluation:
        """One pass: reference, window, schema check, drift, metrics, and a report when drift is detected."""
        reference = self._resolve_reference()
        check_column_options(reference.profile, self.config.options)  # ConfigError: the loop stops, loudly
        window = self._read()
        frame: pd.DataFrame = window.frame
        malformed_ids = set(window.malformed["_request_id"]) if len(window.malformed) else set()
        new_malformed = len(malformed_ids - self._seen_malformed)
        self._seen_malformed = malformed_ids
        if new_malformed:
            self.metrics.malformed.labels(self.config.model).inc(new_malformed)
            log.warning("%d malformed payload(s) captured (kept in the lake with their raw body)", new_malformed)
        ids = frame["_request_id"] if "_request_id" in frame.columns else pd.Series(range(len(frame)), dtype=object)
        fresh = ~ids.isin(self._seen_requests).to_numpy()
        self._seen_requests = set(ids)
        check = check_payloads(reference.profile, frame, pd.Series(fresh, index=frame.index))
        for column, count in check.counts.items():
            self.metrics.schema_mismatch.labels(self.config.model, column).inc(count)
            log.warning("schema mismatch: %d record(s) with %s %s", count, column, check.reasons[column])
        quality = self._watch_quality(reference, check.cleaned, frame)
        evaluation = Evaluation(reference.version, len(frame), None, check.counts, check.reasons, new_malformed,
                                quality=quality)  # fmt: skip
        if len(frame) == 0:
            self.metrics.publish_empty()
            self.metrics.succeeded()
            log.info("window empty: no drift computed (nothing exported but driftloop_window_rows=0)")
            return evaluation
        needed = min(self.config.min_rows, self.config.last_rows or self.config.min_rows)
        if len(frame) < needed:
            self.metrics.publish_empty(rows=len(frame))
            self.metrics.succeeded()
            log.info("window holds %d of the %d rows needed to score drift: not scored yet", len(frame), needed)
            return evaluation
        result = compute_drift(reference.profile, check.cleaned, self.config.options, strict=False)
        self.metrics.publish(reference.version, result)
        self.metrics.succeeded()
        share = "n/a" if result.drifted_share is None else f"{result.drifted_share:.2f}"
        log.info(
            "version %s: %d rows, drift share %s, drifted: %s",
            reference.version,
            len(frame),
            share,
            result.drifted_columns or "none",
        )
        report = self._maybe_report(reference, check.cleaned, result)
        return Evaluation(reference.version, len(frame), result, check.counts, check.reasons, new_malformed, report,
                          quality)  # fmt: skip

    def _watch_quality(
        self, reference: LoadedReference, current: pd.DataFrame, frame: pd.DataFrame
    ) -> dict[str, Any] | None:
        """Live quality, unseen categories and the scores' own drift (monitors/feedback/quality.py); a failure there
        never stops drift detection."""
        if self.quality is None:
            return None
        try:
            from monitors.feedback.quality import prediction_psi, unseen_category_share

            unseen = unseen_category_share(current, reference.profile)
            self.quality.metrics.publish_reference(reference.version, reference.evaluation_auc, unseen)
            deciles = reference.profile.metadata.get("score_deciles") or []
            served = frame["_prediction"] if "_prediction" in frame.columns else pd.Series(dtype=float)
            if "_model_version" in frame.columns:
                served = served[frame["_model_version"].astype(str) == reference.version]
            psi = prediction_psi(served, deciles) if len(served) >= self.quality.min_rows else None
            self.quality.metrics.publish_psi(reference.version, psi)
            versions = self.quality.evaluate(self.read_window, self.config.lake_uri, self.config.model)
        except Exception as exc:
            self.metrics.errors.labels(self.config.model, "quality").inc()
            log.error("live quality failed: %s: %s", type(exc).__name__, exc)
            return {"error": f"{type(exc).__name__}: {exc}"}
        return {"versions": [v.to_dict() for v in versions], "evaluation_auc": reference.evaluation_auc,
                "prediction_psi": psi, "unseen_category_share": unseen}  # fmt: skip

    def _maybe_report(self, reference: LoadedReference, current: pd.DataFrame, result: DriftResult) -> Path | None:
        if not (result.dataset_drift and self.config.html_reports):
            return None
        now = time.time()
        if now - self._last_report.get(reference.version, float("-inf")) < self.config.report_every_s:
            return None
        self._last_report[reference.version] = now
        from monitors.drift._evidently import write_html_report

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.config.reports_dir / f"{self.config.model}-v{reference.version}-{stamp}.html"
        kinds = {name: reference.profile.columns[name].kind for name in result.columns}
        try:
            write_html_report(reference.sample(), current, path, self.config.options, kinds)
        except Exception as exc:  # a report is a convenience: never let it stop the monitor
            self.metrics.errors.labels(self.config.model, "report").inc()
            log.error("drift detected but the HTML report failed: %s: %s", type(exc).__name__, exc)
            return None
        log.warning(
            "DRIFT DETECTED for %s version %s (%s); report: %s",
            self.config.model,
            reference.version,
            ", ".join(result.drifted_columns),
            path,
        )
        return path

    def _last_write(self) -> int | None:
        """The lake's last-write stamp, or None when not watching (off, a remote lake, or a failing lake)."""
        if not self.config.wake_on_write:
            return None
        from monitors.lake import last_write

        try:
            return last_write(self.config.lake_uri, self.config.model)
        except (OSError, DriftloopError):
            return None

    def _wait(self, stop: threading.Event, started: float, seen: int | None) -> None:
        """Until the interval has passed since the last evaluation ended, or (watching) the lake got new data."""
        deadline = time.monotonic() + self.config.interval_s
        if seen is None:
            stop.wait(self.config.interval_s)
            return
        while not stop.is_set() and time.monotonic() < deadline:
            stop.wait(min(_WATCH_POLL_S, max(0.0, deadline - time.monotonic())))
            if time.monotonic() - started >= self.config.min_gap_s and self._last_write() != seen:
                return

    def run(self, stop: threading.Event, max_evaluations: int | None = None) -> None:
        """Evaluate every interval (and, watching, on new data) until ``stop`` is set; failures never stop it."""
        done = 0
        while not stop.is_set():
            started, seen = time.monotonic(), self._last_write()  # before reading: a write during it wakes us
            try:
                self.evaluate()
            except ConfigError:
                raise
            except DriftloopError as exc:
                self.metrics.errors.labels(self.config.model, "evaluate").inc()
                log.error("evaluation failed: %s (hint: %s)", exc.message, exc.hint or "see the message")
            except Exception as exc:
                self.metrics.errors.labels(self.config.model, "evaluate").inc()
                log.exception("evaluation failed unexpectedly: %s", exc)
            self._upkeep()
            done += 1
            if max_evaluations is not None and done >= max_evaluations:
                return
            self._wait(stop, started, seen)

    def _upkeep(self) -> None:
        """Every ``compact_interval_s``: compact the lake's finished hours and apply retention (never fatal)."""
        if self.config.compact_interval_s <= 0 or time.monotonic() - self._last_upkeep < self.config.compact_interval_s:
            return
        self._last_upkeep = time.monotonic()
        from monitors.lake_compaction import compact, prune

        try:
            if self.config.retention_s > 0:  # first, so expired hours are not compacted for nothing
                pruned = prune(self.config.lake_uri, self.config.model, self.config.retention_s)
                if pruned.hours:
                    log.info("lake: deleted %d hour(s) older than %s (retention)", len(pruned.hours), pruned.cutoff)
            # a few hours per pass: a backlog (a monitor started on an old lake) never stalls evaluations for long
            compacted = compact(self.config.lake_uri, self.config.model, max_hours=_UPKEEP_MAX_HOURS)
            if compacted.hours:
                log.info("lake: compacted %d hour(s) (%d files merged)", len(compacted.hours),
                         sum(hour.inputs for hour in compacted.hours))  # fmt: skip
        except Exception as exc:  # upkeep is not the monitor's job: the next pass retries
            self.metrics.errors.labels(self.config.model, "lake_upkeep").inc()
            log.error("lake upkeep failed: %s: %s (next try in %.0f s)", type(exc).__name__, exc,
                      self.config.compact_interval_s)  # fmt: skip
