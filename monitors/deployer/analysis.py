"""The canary analysis, in one place: the conditions a canary must meet, as data.

From this data ``driftloop alerting`` generates the Argo Rollouts AnalysisTemplate
(``manifests/serving/base/analysis-template.yaml``, see ``_template.py``; ``--check`` fails CI when it is stale), and
``driftloop deployer`` judges each canary window locally with the same conditions — same names, same thresholds
(settings ``DRIFTLOOP_DEPLOYER_MAX_ERROR_RATE``, ``…_MAX_P99``, ``…_MIN_REQUESTS``, ``…_MAX_SCHEMA_MISMATCH`` and the
monitor's ``DRIFTLOOP_MONITOR_DRIFT_SHARE``), the same comparison (:meth:`Condition.judge`).

**Empty results** (argo-rollouts #1466, #1905: ``result[0]`` of an empty vector fails with "reflect: slice index out
of range" and the Rollout aborts; the guard often suggested instead, ``len(result) == 0 || …`` in the success
condition, would pass a canary nobody measured). Every query ends in ``or on() vector(-1)``, so Prometheus
always answers one sample (no index error in any Rollouts version), and -1 — "no data" — satisfies neither the
success nor the failure condition: the measurement is *Inconclusive*, and with ``inconclusiveLimit: 0`` the Rollout
pauses for a person. The conditions also start with ``len(result) > 0 &&`` so a provider that returns nothing
anyway cannot index out of range. Locally a value of ``None`` (no data) is the same -1: *inconclusive*; the deployer
waits for data up to ``DRIFTLOOP_DEPLOYER_ANALYSIS_TIMEOUT`` and then aborts (a person is not there to un-pause it).
"No data" is: fewer than ``min_requests`` canary requests (sidecar conditions) — and, for the p99, fewer than
``DRIFTLOOP_DEPLOYER_MIN_P99_REQUESTS`` (100): a 99th percentile of 20 requests is their slowest one, so one scheduling stall of a shared
machine would decide the canary (measured: 4 of 20 demo canaries failed that way at p99 ≈ 0.9 s) — or a monitor that does not report
(monitor conditions: no ``driftloop_window_rows`` series). A monitor that reports but has too few rows to test drift
yields 0 — "no evidence of drift" — explicitly (``or on() (0 * max(driftloop_window_rows…))``), and the deployer's
status says so.

**drift-share is a dry run by default** (``DRIFTLOOP_DEPLOYER_DRIFT_GATE=dry-run``; Argo Rollouts' ``spec.dryRun``):
measured, shown in the AnalysisRun and the deployer's status, never the verdict. Data drift comes with the traffic, not
with the canary: gating on it would refuse the very retrain a drift alert started (its model was trained before the
window drifted further) and every rollback while the data stays shifted, and the Rollout would fight the loop.
``gate`` makes it a condition like the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftloop.config import Settings

if TYPE_CHECKING:
    from monitors.deployer._servers import MonitorReading

__all__ = ["NO_DATA", "Condition", "Measurement", "Verdict", "conditions", "judge", "local_values"]

NO_DATA = -1.0  # what every query answers instead of an empty vector
RANGE = "2m"  # the window of the cluster's rate()/increase(): the Rollout's analysis runs 3 measurements 1 m apart

# label selectors of the cluster queries: the canary pods (sidecar series) and the serving namespace (monitor series)
_CANARY = 'namespace="{{args.namespace}}", rollouts_pod_template_hash="{{args.canary-hash}}"'


@dataclass(frozen=True)
class Condition:
    """One metric of the AnalysisTemplate. ``value`` passes when ``0 <= value <= limit`` (``< limit`` if strict),
    fails when above, and is inconclusive when negative (the -1 of an empty result) or NaN."""

    name: str
    summary: str
    source: str  # "sidecar" (the canary's route/pods) or "monitor" (the drift monitor)
    query: str  # PromQL before the empty-result wrapper; {{args.namespace}} / {{args.canary-hash}} placeholders
    limit: float
    strict: bool = False
    unit: str = ""
    dry_run: bool = False  # measured and reported, never the verdict (Argo Rollouts' spec.dryRun)

    @property
    def promql(self) -> str:
        return f"({self.query}) or on() vector({NO_DATA:g})"

    @property
    def _ok(self) -> str:
        return "<" if self.strict else "<="

    @property
    def _bad(self) -> str:
        return ">=" if self.strict else ">"

    @property
    def success_condition(self) -> str:
        return f"len(result) > 0 && result[0] >= 0 && result[0] {self._ok} {self.limit:g}"

    @property
    def failure_condition(self) -> str:
        return f"len(result) > 0 && result[0] {self._bad} {self.limit:g}"

    def judge(self, value: float | None, note: str = "") -> Measurement:
        """The template's two conditions on one value; None (no data) is the -1 of an empty result."""
        shown = NO_DATA if value is None else value
        if shown < 0 or math.isnan(shown):
            outcome = "inconclusive"
        elif shown < self.limit or (shown == self.limit and not self.strict):
            outcome = "pass"
        else:
            outcome = "fail"
        return Measurement(self.name, outcome, value, self.limit, self._ok, note, self.dry_run)


@dataclass(frozen=True)
class Measurement:
    condition: str
    outcome: str  # "pass" | "fail" | "inconclusive"
    value: float | None
    limit: float
    comparison: str
    note: str = ""
    dry_run: bool = False

    def __str__(self) -> str:
        if self.value is None:
            text = f"{self.condition}: no data"
        else:
            verb = "ok" if self.outcome == "pass" else "violates"
            text = f"{self.condition} {self.value:.4g} ({verb} {self.comparison} {self.limit:g})"
        notes = [n for n in (self.note, "dry-run: not gating" if self.dry_run else "") if n]
        return f"{text} [{'; '.join(notes)}]" if notes else text


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "pass" | "fail" | "inconclusive"
    reason: str
    measurements: tuple[Measurement, ...] = ()

    @property
    def failed(self) -> list[str]:
        return [m.condition for m in self.measurements if m.outcome == "fail" and not m.dry_run]


def conditions(settings: Settings) -> tuple[Condition, ...]:
    """The canary conditions with the thresholds of ``settings`` (the template is generated from the defaults)."""
    model = f'model="{settings.model_name}"'  # one monitor per model, in the monitoring namespace (not the canary's)
    requests = f"driftloop_sidecar_requests_total{{{_CANARY}}}"
    enough = f"sum(increase({requests}[{RANGE}])) >= {settings.deployer_min_requests}"
    p99_requests = max(settings.deployer_min_requests, settings.deployer_min_p99_requests)
    enough_for_p99 = f"sum(increase({requests}[{RANGE}])) >= {p99_requests}"
    errors = f'driftloop_sidecar_requests_total{{{_CANARY}, code=~"5.."}}'
    buckets = f"driftloop_sidecar_upstream_latency_seconds_bucket{{{_CANARY}}}"
    monitor_up = f"0 * max(driftloop_window_rows{{{model}}})"  # 0 while the monitor reports, empty when it is gone
    return (
        Condition(
            "error-rate",
            "share of the canary's answers that are 5xx (or the model server did not answer)",
            "sidecar",
            f"((sum(rate({errors}[{RANGE}])) or on() vector(0)) / sum(rate({requests}[{RANGE}]))) and on() ({enough})",
            settings.deployer_max_error_rate,
        ),
        Condition(
            "p99-latency",
            "99th percentile of the canary's model-server latency",
            "sidecar",
            f"histogram_quantile(0.99, sum by (le) (rate({buckets}[{RANGE}]))) and on() ({enough_for_p99})",
            settings.deployer_max_p99,
            unit="s",
        ),
        Condition(
            "drift-share",
            "share of features whose live distribution drifted from the canary model's training reference",
            "monitor",
            f"max(driftloop_drift_share{{{model}}}) or on() ({monitor_up})",
            settings.monitor_drift_share,
            strict=True,  # the monitor's dataset drift is share >= threshold
            dry_run=settings.deployer_drift_gate != "gate",
        ),
        Condition(
            "payload-schema-mismatch",
            "payload records whose columns or types differ from the model's reference",
            "monitor",
            f"sum(increase(driftloop_payload_schema_mismatch_total{{{model}}}[{RANGE}])) or on() ({monitor_up})",
            settings.deployer_max_schema_mismatch,
        ),
    )


def judge(
    checks: tuple[Condition, ...], values: Mapping[str, float | None], notes: Mapping[str, str] | None = None
) -> Verdict:
    """Every condition on its value: any failure fails (naming each), else any missing value is inconclusive.
    A dry-run condition is measured and reported but decides nothing."""
    notes = notes or {}
    measured = tuple(c.judge(values.get(c.name), notes.get(c.name, "")) for c in checks)
    gating = [m for m in measured if not m.dry_run]
    failed = [m for m in gating if m.outcome == "fail"]
    if failed:
        return Verdict("fail", "; ".join(map(str, failed)), measured)
    pending = [m for m in gating if m.outcome == "inconclusive"]
    if pending:
        return Verdict("inconclusive", "; ".join(map(str, pending)), measured)
    return Verdict("pass", "; ".join(map(str, measured)), measured)


def local_values(
    min_requests: int,
    canary: tuple[int, int, float | None],
    version: str,
    monitor_start: MonitorReading | None,
    monitor_now: MonitorReading | None,
    *,
    min_p99_requests: int = 0,
) -> tuple[dict[str, float | None], dict[str, str]]:
    """What the deployer reads for one canary window, as the values of the template's queries (None: the -1).

    ``canary`` is (requests, errors, p99 s) of the canary's route since the window began (the sidecar's
    ``driftloop_sidecar_route_*`` series: locally the route tells the canary apart, on a cluster the pod hash). The
    monitor's drift share is the canary version's: the alias moved with the promotion commit, so the monitor scores
    the live traffic against the canary model's reference (a share it exports for another version is stale).
    """
    requests, errors, p99 = canary
    min_p99 = max(min_requests, min_p99_requests)  # a p99 of fewer requests is their maximum
    values: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    enough, enough_for_p99 = requests >= min_requests, requests >= min_p99
    if not enough:
        notes["error-rate"] = f"{requests} canary requests, need {min_requests}"
    if not enough_for_p99:
        notes["p99-latency"] = f"{requests} canary requests, a p99 needs {min_p99}"
    values["error-rate"] = errors / requests if enough else None
    values["p99-latency"] = p99 if enough_for_p99 else None
    if monitor_now is None or monitor_now.window_rows is None:
        values["drift-share"] = values["payload-schema-mismatch"] = None
        notes["drift-share"] = notes["payload-schema-mismatch"] = "the monitor does not report"
        return values, notes
    share = monitor_now.drift_share.get(version)
    if share is None:
        notes["drift-share"] = f"v{version} not scored yet ({monitor_now.window_rows:g} rows in the window): 0"
    values["drift-share"] = share if share is not None else 0.0
    baseline = monitor_start.schema_mismatches if monitor_start is not None else monitor_now.schema_mismatches
    values["payload-schema-mismatch"] = max(0.0, monitor_now.schema_mismatches - baseline)
    return values, notes
