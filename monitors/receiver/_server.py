"""``driftloop trigger serve``: Alertmanager's webhook in, one retraining Workflow per drift incident out.

It also takes the ground-truth outcomes, ``POST /feedback`` (``monitors/feedback/_http.py``, docs/feedback.md).

Request path (answers in milliseconds; Alertmanager cancels a slow receiver at ``group_interval``): token →
size → content type → JSON → webhook v4 schema → one decision per alert, committed in one SQLite transaction →
200. Only then does the background worker submit the ``pending`` incidents (retrying with backoff), so a crash
at any point either loses nothing (Alertmanager re-sends what got no 2xx) or leaves a ``pending`` row that the
next start finishes. See docs/alerting.md for the design.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from driftloop.config import Settings
from monitors.feedback._http import FEEDBACK_PATH, FeedbackEndpoint
from monitors.receiver._auth import resolve_token, token_matches
from monitors.receiver._metrics import ReceiverMetrics
from monitors.receiver._payload import Alert, Notification, ValidationError, describe
from monitors.receiver._store import DecisionStore, Outcome
from monitors.receiver._submit import (
    RETRAIN_TRIGGERS,
    RetrainSubmitter,
    alert_trigger,
    drifted_features,
    incident_key,
    workflow_name,
)

__all__ = ["MAX_BODY_BYTES", "Receiver", "serve"]

log = logging.getLogger("driftloop.trigger")

MAX_BODY_BYTES = 1024 * 1024
_FINISHED = {"Succeeded", "Failed", "Error"}
_POLL_RUNNING_S = 2.0


def _error(status: int, message: str, hint: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if hint:
        body["hint"] = hint
    return web.json_response(body, status=status)


class Receiver:
    def __init__(
        self,
        settings: Settings,
        *,
        submitter: RetrainSubmitter | None = None,
        models: tuple[str, ...] | None = None,
    ) -> None:
        self.settings = settings
        self.token = resolve_token(settings)
        self.models = models or (settings.model_name,)
        self.store = DecisionStore(settings.home / "trigger" / "decisions.db")
        self.submitter = submitter or RetrainSubmitter(settings)
        self.metrics = ReceiverMetrics(self.models)
        self.feedback = FeedbackEndpoint(settings, self._authorized, self.metrics.registry, self.models, MAX_BODY_BYTES)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    # ---- the web app --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/alertmanager", self.alertmanager)
        app.router.add_post(FEEDBACK_PATH, self.feedback.handle)
        app.router.add_get("/triggers", self.triggers)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_get("/healthz", self.healthz)
        app.on_startup.append(self._start_worker)
        app.on_cleanup.append(self._stop_worker)
        return app

    def _authorized(self, request: web.Request) -> bool:
        return token_matches(request.headers.get("Authorization"), self.token)

    def _refuse(self, outcome: str, response: web.Response) -> web.Response:
        self.metrics.notifications.labels(outcome).inc()
        return response

    async def alertmanager(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse(
                "unauthorized",
                _error(401, "missing or wrong bearer token", "send Authorization: Bearer <DRIFTLOOP_TRIGGER_TOKEN>"),
            )
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return self._refuse("too_large", _error(413, f"body over {MAX_BODY_BYTES} bytes"))
        if request.content_type != "application/json":
            return self._refuse(
                "unsupported_media_type", _error(415, f"content type {request.content_type!r} is not application/json")
            )
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse("too_large", _error(413, f"body over {MAX_BODY_BYTES} bytes"))
        try:
            notification = Notification.model_validate(json.loads(raw))
        except (ValueError, RecursionError) as exc:  # pydantic's ValidationError is a ValueError too
            message = describe(exc) if isinstance(exc, ValidationError) else "the body is not valid UTF-8 JSON"
            return self._refuse(
                "invalid", _error(422, message, "send Alertmanager's webhook payload version 4 (webhook_configs)")
            )
        try:
            outcomes = await self._decide(notification)
        except sqlite3.Error as exc:  # the decision is not durable: make Alertmanager re-send
            log.error("decision store failed: %s", exc)
            return self._refuse("unavailable", _error(503, f"decision store unavailable: {exc}", "retry later"))
        self.metrics.notifications.labels("accepted").inc()
        for outcome in outcomes:
            self.metrics.decisions.labels(outcome.decision).inc()
        if any(outcome.decision == "submit" for outcome in outcomes):
            self._wake.set()
        return web.json_response(
            {
                "decisions": [
                    {
                        "fingerprint": alert.fingerprint,
                        "decision": o.decision,
                        "reason": o.reason,
                        "incident": o.incident,
                    }
                    for alert, o in zip(notification.alerts, outcomes, strict=True)
                ]
            }
        )

    async def _decide(self, notification: Notification) -> list[Outcome]:
        entries = [await self._entry(notification, alert) for alert in notification.alerts]
        outcomes = await asyncio.to_thread(self.store.record, entries, self.settings.trigger_cooldown)
        for (entry, _), outcome in zip(entries, outcomes, strict=True):
            level = logging.WARNING if outcome.decision == "submit" else logging.INFO
            log.log(
                level, "%s %s %s: %s", outcome.decision, entry.get("model"), entry.get("fingerprint"), outcome.reason
            )
        return outcomes

    async def _entry(self, notification: Notification, alert: Alert) -> tuple[dict[str, Any], Outcome | None]:
        model = alert.labels.get("model", "")
        entry: dict[str, Any] = {
            "model": model or None, "fingerprint": alert.fingerprint, "status": alert.status,
            "group_key": notification.groupKey[:512],
        }  # fmt: skip
        name = alert.labels.get("alertname", "?")
        if alert.status != "firing":
            return entry, Outcome("ignored", f"{name} resolved: recorded, not acted on")
        if alert.labels.get("retrain") != "true":
            return entry, Outcome("ignored", f'{name} is not labelled retrain="true": recorded, not acted on')
        trigger = alert_trigger(alert.labels)
        if trigger not in RETRAIN_TRIGGERS:
            allowed = " | ".join(RETRAIN_TRIGGERS)
            return entry, Outcome("ignored", f"{name}: trigger {trigger[:40]!r} is not one an alert starts ({allowed})")
        if model not in self.models:
            known = ", ".join(self.models)
            return entry, Outcome("ignored", f"{name}: model {model!r} is not served here (known: {known})")
        starts_at = alert.startsAt.astimezone(UTC).isoformat()
        key = incident_key(model, alert.fingerprint, starts_at)
        entry.update(
            key=key, starts_at=starts_at, workflow=workflow_name(model, key),
            alert={"labels": alert.labels, "annotations": alert.annotations, "fingerprint": alert.fingerprint,
                   "generator_url": alert.generatorURL, "external_url": notification.externalURL,
                   "starts_at": starts_at},
        )  # fmt: skip
        if await asyncio.to_thread(self.store.known, key):
            return entry, None  # the store answers `duplicate`
        try:
            running = await asyncio.wait_for(asyncio.to_thread(self.submitter.in_flight, model), timeout=5)
        except Exception as exc:  # the Argo Server is down: decide anyway; the workflow's mutex still guards
            log.warning("in-flight check failed (%s); deciding without it", exc)
            running = None
        if running:
            return entry, Outcome("in-flight", f"retrain {running} of {model} is still running")
        return entry, None

    async def triggers(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "missing or wrong bearer token", "send Authorization: Bearer <token>")
        try:
            limit = min(max(int(request.query.get("limit", "1000")), 1), 100_000)
        except ValueError:
            return _error(422, "limit must be an integer")
        rows = await asyncio.to_thread(self.store.decisions, limit)
        incident = request.query.get("incident")
        if incident:
            rows = [row for row in rows if row["incident"] == incident]
        return web.json_response({"decisions": rows})

    async def metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        healthy = await asyncio.to_thread(self.store.healthy)
        return web.json_response({"status": "ok" if healthy else "store unavailable"}, status=200 if healthy else 503)

    # ---- the submission worker ----------------------------------------------------------------------
    async def _start_worker(self, app: web.Application) -> None:
        self._worker = threading.Thread(target=self._work, name="trigger-submit", daemon=True)
        self._worker.start()

    async def _stop_worker(self, app: web.Application) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            await asyncio.to_thread(self._worker.join, 30)

    def _work(self) -> None:
        """Submit pending incidents (those left by a crash first), then follow the runs to their end."""
        last_poll = 0.0
        while not self._stop.is_set():
            try:
                self.submit_pending()
                if time.monotonic() - last_poll > _POLL_RUNNING_S:
                    last_poll = time.monotonic()
                    self.follow_running()
            except Exception:  # never let the worker die: the store keeps the work
                log.exception("submission worker failed; retrying")
            self._wake.wait(1.0)
            self._wake.clear()

    def submit_pending(self) -> None:
        for incident in self.store.pending():
            if self._stop.is_set():
                return
            drift = alert_trigger(incident.alert["labels"]) == "drift"
            features = drifted_features(incident.alert, self.settings.prometheus_url, incident.model) if drift else []
            started = time.perf_counter()
            try:
                name = self.submitter.submit(incident.key, incident.model, incident.alert, features)
            except Exception as exc:
                retry_in = min(60.0, 2.0**incident.attempts)
                self.metrics.submission_failures.labels(incident.model).inc()
                self.store.mark_failed(incident.key, f"{type(exc).__name__}: {exc}", retry_in)
                log.error("submitting %s failed (attempt %d, retry in %.0f s): %s",
                          incident.workflow, incident.attempts + 1, retry_in, exc)  # fmt: skip
                continue
            self.metrics.submission_seconds.observe(time.perf_counter() - started)
            self.store.mark_submitted(incident.key)
            log.warning("submitted retraining workflow %s for %s (trigger %s, trigger-ref %s, drifted: %s)",
                        name, incident.model, alert_trigger(incident.alert["labels"]), incident.fingerprint,
                        ",".join(features) or "-")  # fmt: skip

    def follow_running(self) -> None:
        for key, model, workflow in self.store.running():
            try:
                phase = self.submitter.phase(workflow)
            except Exception:
                continue
            if phase in _FINISHED:
                self.store.mark_finished(key, phase)
                self.metrics.retrains_finished.labels(model, phase).inc()


def serve(settings: Settings, host: str, port: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    receiver = Receiver(settings)
    store_path: Path = receiver.store.path
    print(f"driftloop trigger: POST http://{host}:{port}/alertmanager and {FEEDBACK_PATH} (bearer token), decisions in "
          f"{store_path}, outcomes in {receiver.feedback.store.path}", flush=True)  # fmt: skip
    web.run_app(receiver.app(), host=host, port=port, print=None, access_log=None, shutdown_timeout=10)
