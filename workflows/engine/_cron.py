"""CronWorkflows fire on the engine: schedules (croniter), timezone, suspend, concurrencyPolicy,
startingDeadlineSeconds, history limits, and ``status.lastScheduledTime`` / ``status.active``.

The scheduler is a thread that calls :meth:`CronScheduler.tick` every second; ``tick`` takes the current time
as an argument so tests drive it with any clock. Without ``timezone`` schedules are read in UTC (Argo would use
the controller's local zone, which on a cluster is usually UTC too). A schedule missed while the engine was down
fires on start only within ``startingDeadlineSeconds`` of its time, as in Argo.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from driftloop.errors import ConflictError, DriftloopError, EngineError
from workflows.engine.store import CRON_WORKFLOW, WORKFLOW, Store
from workflows.spec.submit import CRON_LABEL, workflow_from_cron

__all__ = ["CronScheduler", "latest_due", "schedules_of"]

log = logging.getLogger(__name__)

_UNFINISHED = ("", "Pending", "Running")
_FAILED = ("Failed", "Error")


def schedules_of(spec: dict[str, Any]) -> list[str]:
    """``spec.schedules`` (Argo ≥ 3.6) or the single ``spec.schedule`` (may hold several, comma-separated)."""
    if spec.get("schedules"):
        return [str(s) for s in spec["schedules"]]
    return [s.strip() for s in str(spec.get("schedule") or "").split(",") if s.strip()]


def _zone(spec: dict[str, Any]) -> ZoneInfo:
    name = spec.get("timezone") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise EngineError(
            f"unknown timezone {name!r} in CronWorkflow", hint="use an IANA name such as Europe/Paris"
        ) from None


def latest_due(spec: dict[str, Any], after: datetime, now: datetime) -> datetime | None:
    """The latest scheduled time t with ``after < t <= now`` (in UTC), or None when nothing was due."""
    zone = _zone(spec)
    best: datetime | None = None
    for expression in schedules_of(spec):
        if not croniter.is_valid(expression):
            raise EngineError(f"invalid cron schedule {expression!r}", hint="use 5 fields, e.g. '*/5 * * * *'")
        local_now = (now + timedelta(seconds=1)).astimezone(zone).replace(microsecond=0)
        previous = croniter(expression, local_now).get_prev(datetime).astimezone(UTC)
        if previous <= now and previous > after and (best is None or previous > best):
            best = previous
    return best


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(text)  # "…Z" from the engine, "…+00:00" after a Hera round trip
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class CronScheduler:
    """Fires due CronWorkflows through ``submit`` (the controller's) and records their status."""

    def __init__(
        self,
        store: Store,
        submit: Callable[[dict[str, Any], str], dict[str, Any]],
        terminate: Callable[[str, str], Any],
        *,
        started: datetime | None = None,
    ) -> None:
        self.store = store
        self._submit = submit
        self._terminate = terminate
        self._started = started or datetime.now(UTC)
        self._checked: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, interval: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.tick(datetime.now(UTC))
                except Exception:  # a bad cron must not kill the scheduler
                    log.exception("cron scheduler tick failed")

        self._thread = threading.Thread(target=loop, name="cron-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def tick(self, now: datetime) -> list[dict[str, Any]]:
        """Fire every CronWorkflow due at ``now``; returns the workflows created."""
        created = []
        for cron in self.store.list(CRON_WORKFLOW):
            try:
                workflow = self._consider(cron, now)
            except DriftloopError as exc:
                log.warning("cron workflow %s: %s", cron["metadata"]["name"], exc.message)
                continue
            if workflow is not None:
                created.append(workflow)
            self._trim_history(cron)
        return created

    def _after(self, cron: dict[str, Any], now: datetime) -> datetime:
        meta, spec = cron["metadata"], cron.get("spec", {})
        key = meta["uid"]
        if key not in self._checked:
            after = max(_timestamp(meta.get("creationTimestamp")) or self._started, self._started)
            last = _timestamp((cron.get("status") or {}).get("lastScheduledTime"))
            deadline = spec.get("startingDeadlineSeconds")
            if last is not None and deadline is not None:  # catch up on a run missed while the engine was down
                after = max(last, now - timedelta(seconds=float(deadline)))
            self._checked[key] = after
        return self._checked[key]

    def _consider(self, cron: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        meta, spec = cron["metadata"], cron.get("spec", {})
        due = latest_due(spec, self._after(cron, now), now)
        self._checked[meta["uid"]] = now
        if due is None or spec.get("suspend"):
            return None
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and (now - due).total_seconds() > float(deadline):
            log.info("cron workflow %s missed its deadline for %s", meta["name"], due)
            return None
        namespace = meta.get("namespace", "")
        active = self._active(namespace, meta["name"])
        policy = spec.get("concurrencyPolicy") or "Allow"
        if active and policy == "Forbid":
            return None
        if active and policy == "Replace":
            for workflow in active:
                self._terminate(namespace, workflow["metadata"]["name"])
        workflow = workflow_from_cron(cron)
        workflow["metadata"]["name"] = f"{meta['name']}-{int(due.timestamp())}"
        try:
            created = self._submit(workflow, namespace)
        except ConflictError:  # already fired for this time (engine restarted meanwhile)
            return None
        self._record(cron, due, created)
        return created

    def _active(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return self.store.list(WORKFLOW, namespace, label_selector=f"{CRON_LABEL}={name}", phases=_UNFINISHED)

    def _record(self, cron: dict[str, Any], due: datetime, created: dict[str, Any]) -> None:
        meta = cron["metadata"]
        fresh = self.store.find(CRON_WORKFLOW, meta.get("namespace"), meta["name"])
        if fresh is None:
            return
        status = fresh.setdefault("status", {})
        status["lastScheduledTime"] = due.strftime("%Y-%m-%dT%H:%M:%SZ")
        active = self._active(meta.get("namespace", ""), meta["name"])
        refs = {w["metadata"]["name"]: w for w in [*active, created]}
        status["active"] = [
            {
                "kind": WORKFLOW,
                "apiVersion": "argoproj.io/v1alpha1",
                "name": n,
                "namespace": w["metadata"]["namespace"],
                "uid": w["metadata"]["uid"],
            }
            for n, w in refs.items()
        ]
        self.store.update(fresh)

    def _trim_history(self, cron: dict[str, Any]) -> None:
        """Keep successfulJobsHistoryLimit (3) succeeded and failedJobsHistoryLimit (1) failed runs."""
        meta, spec = cron["metadata"], cron.get("spec", {})
        namespace = meta.get("namespace", "")
        selector = f"{CRON_LABEL}={meta['name']}"
        for phases, limit in (
            (("Succeeded",), int(spec.get("successfulJobsHistoryLimit", 3))),
            (_FAILED, int(spec.get("failedJobsHistoryLimit", 1))),
        ):
            finished = self.store.list(WORKFLOW, namespace, label_selector=selector, phases=phases)
            for workflow in finished[: max(len(finished) - limit, 0)]:
                try:
                    self.store.delete(WORKFLOW, namespace, workflow["metadata"]["name"])
                except DriftloopError:
                    continue
