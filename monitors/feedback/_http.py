"""``POST /feedback`` on the receiver (``driftloop trigger serve``): ground-truth outcomes in, stored durably.

Request path: token (the receiver's) → size → content type → JSON → body shape (422 naming the problem) → each row
validated (bad ones counted ``malformed`` and reported) → the captured request ids looked up in the lake (an id not
captured is stored and counted ``unknown``) → ONE SQLite transaction (``_store.FeedbackStore.ingest``) → 200 with
the counts. An ``Idempotency-Key`` header names the batch: re-sent after a lost answer, it counts nothing twice.
The counts are exported from the store itself, so they survive restarts and a crash never inflates them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from driftloop.config import Settings
from monitors.feedback._parse import BodyError, parse_body
from monitors.feedback._store import RESULTS, FeedbackStore, feedback_store

__all__ = ["FEEDBACK_PATH", "FeedbackEndpoint", "KnownIds", "feedback_store"]

log = logging.getLogger("driftloop.feedback")
FEEDBACK_PATH = "/feedback"
REQUESTS = ("accepted", "unauthorized", "too_large", "unsupported_media_type", "invalid", "unavailable")
_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class KnownIds:
    """The request ids captured in the lake for some models, read one part file at a time (id column only) and
    cached per file (a part file is written once under its name), over the partitions of the last ``lookback``."""

    def __init__(self, lake_uri: str, models: Iterable[str], lookback_s: float) -> None:
        self.lake_uri, self.models, self.lookback_s = lake_uri, tuple(models), lookback_s
        self._by_file: dict[str, frozenset[str]] = {}

    def __call__(self) -> set[str]:
        import pyarrow.parquet as pq

        from monitors.lake import list_parts, partition_dir

        since = datetime.now(UTC) - timedelta(seconds=self.lookback_s + 3600)
        live: dict[str, frozenset[str]] = {}
        for model in self.models:
            oldest = partition_dir(self.lake_uri, model, since)
            for path in list_parts(self.lake_uri, model):
                if path.rsplit("/", 1)[0] < oldest:
                    continue
                ids = self._by_file.get(path)
                if ids is None:
                    try:
                        ids = frozenset(pq.read_table(path, columns=["_request_id"]).column(0).to_pylist())
                    except (OSError, ValueError):  # a file being replaced: read it next time
                        continue
                live[path] = ids
        self._by_file = live
        return set().union(*live.values()) if live else set()


class _StoreCollector(Collector):
    """``driftloop_feedback_outcomes_total{result}`` and ``driftloop_feedback_stored_outcomes``, read from the store
    at scrape time: durable counts, exactly what was committed."""

    def __init__(self, store: FeedbackStore) -> None:
        self.store = store

    def collect(self) -> Iterable[Any]:
        try:
            counts, stored = self.store.counts(), self.store.stored()
        except sqlite3.Error:
            return []
        family = CounterMetricFamily(
            "driftloop_feedback_outcomes", "Outcome rows received, by result (accepted rows may also be late or "
            "unknown; duplicates and malformed rows are not stored).", labels=["result"],
        )  # fmt: skip
        for result in RESULTS:
            family.add_metric([result], counts[result])
        gauge = GaugeMetricFamily("driftloop_feedback_stored_outcomes", "Outcomes in the store.", value=stored)
        return [family, gauge]


def _error(status: int, message: str, hint: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if hint:
        body["hint"] = hint
    return web.json_response(body, status=status)


class FeedbackEndpoint:
    def __init__(
        self,
        settings: Settings,
        authorized: Callable[[web.Request], bool],
        registry: CollectorRegistry,
        models: tuple[str, ...],
        max_body_bytes: int,
    ) -> None:
        self.settings = settings
        self.authorized = authorized
        self.max_body_bytes = max_body_bytes
        self.store = feedback_store(settings)
        self.known = KnownIds(settings.lake_uri, models, settings.feedback_late_after)
        self.requests = Counter(
            "driftloop_feedback_requests", "POST /feedback requests, by outcome.", ["outcome"], registry=registry
        )
        for outcome in REQUESTS:
            self.requests.labels(outcome)
        registry.register(_StoreCollector(self.store))

    def _refuse(self, outcome: str, response: web.Response) -> web.Response:
        self.requests.labels(outcome).inc()
        return response

    async def handle(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self._refuse(
                "unauthorized",
                _error(401, "missing or wrong bearer token", "send Authorization: Bearer <DRIFTLOOP_TRIGGER_TOKEN>"),
            )
        too_large = _error(413, f"body over {self.max_body_bytes} bytes", "send fewer outcomes per request")
        if (request.content_length or 0) > self.max_body_bytes:
            return self._refuse("too_large", too_large)
        if request.content_type != "application/json":
            return self._refuse(
                "unsupported_media_type", _error(415, f"content type {request.content_type!r} is not application/json")
            )
        key = request.headers.get("Idempotency-Key")
        if key is not None and not _KEY.fullmatch(key):
            return self._refuse("invalid", _error(422, "Idempotency-Key must be 1-128 of A-Z a-z 0-9 . _ : -"))
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse("too_large", too_large)
        hint = 'send [{"request_id": "...", "outcome": 0 or 1, "observed_at": "2026-01-01T00:00:00Z"}, ...]'
        now = time.time()
        try:
            rows, problems = parse_body(json.loads(raw), now, self.settings.feedback_max_rows)
        except BodyError as exc:
            return self._refuse("invalid", _error(422, str(exc), hint))
        except (ValueError, RecursionError):
            return self._refuse("invalid", _error(422, "the body is not valid UTF-8 JSON", hint))
        try:
            known = await asyncio.to_thread(self.known) if rows else set()
            result = await asyncio.to_thread(
                self.store.ingest, rows, malformed=problems, key=key,
                late_after_s=self.settings.feedback_late_after, known=known, now=now,
            )  # fmt: skip
        except sqlite3.Error as exc:  # not durable: the client must re-send
            log.error("feedback store failed: %s", exc)
            return self._refuse("unavailable", _error(503, f"feedback store unavailable: {exc}", "retry later"))
        self.requests.labels("accepted").inc()
        counts = result.counts
        log.info("feedback%s: %s", " (replayed batch)" if result.replayed else "",
                 ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "nothing")  # fmt: skip
        return web.json_response(result.to_dict())
