"""Capture inside the scoring process: an ASGI middleware around MLflow's FastAPI scoring app, served by uvicorn.

The reverse proxy costs a second process hop and ~0.7 ms of Python per request; here the only extra work on
the request path is one ``os.write`` of the request/response pair to the spool (page cache), done before the
last byte of the answer is sent, so a ``kill -9`` loses nothing already answered, plus two metric updates (a
cached counter child, one histogram observation). fsync and sealing run on a background thread; the lake is
someone else's job: ``driftloop ship`` (the sidecar container, sharing the spool directory like a log shipper
sharing an ``emptyDir``) moves sealed segments to the lake.

The middleware answers ``GET /metrics`` itself with the proxy's series (``driftloop_sidecar_requests_total{code}``,
``_upstream_latency_seconds`` = the time the scoring app took, the spool's counters), so the canary analysis and
the ServiceMonitor read a serving pod the same way whichever mode captures.

    driftloop scoring-server --model-uri models:/credit-risk@champion --listen 127.0.0.1:5001 \\
        --spool /var/spool/driftloop --model-version 3     # or --pin model-pin.yaml (what the cluster pod runs)
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from monitors.sidecar._metrics import SidecarMetrics
from monitors.sidecar._spool import Capture, Spool

if TYPE_CHECKING:
    from monitors.sidecar._ship_child import ShipperChild

__all__ = ["METRICS_PATH", "CaptureConfig", "CaptureMiddleware", "SpoolChores", "capture_app", "serve_with_capture"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = b"x-request-id"
METRICS_PATH = "/metrics"
# status codes whose counter child exists from the start: a cached child skips ``labels()`` (a lock and a str) per
# request, and a series present at 0 lets ``rate()`` see its first increment (MLflow answers 400, 500, 504 on errors)
_COMMON_CODES = (200, 400, 500, 503, 504)
_METRICS_HEADERS = [(b"content-type", CONTENT_TYPE_LATEST.encode("latin-1"))]
_OVERLOADED_HEADERS = [(b"content-type", b"application/json"), (b"retry-after", b"1")]

log = logging.getLogger("driftloop.sidecar")


@dataclass(frozen=True)
class CaptureConfig:
    """What the in-process capture needs; the CLI fills it from flags, tests and benchmarks build it directly."""

    spool_dir: Path
    model_version: str = "unknown"
    capture_paths: tuple[str, ...] = ("/invocations",)
    max_spool_bytes: int = 1 << 30
    segment_bytes: int = 8 << 20
    segment_age_s: float = 5.0
    fsync_interval_s: float = 0.2
    max_capture_bytes: int = 4 << 20  # larger pairs are answered but not captured (counted as dropped)
    max_inflight: int = 64  # scoring requests admitted at once; beyond it a fast 503 (see CaptureMiddleware)
    prediction_threads: int = 2  # the thread pool MLflow's app predicts on (its default: cores + 4); 0 keeps it


class CaptureMiddleware:
    """Pure ASGI (no Starlette request objects: nothing allocated per request that the pair does not need).

    Only the capture paths are counted and timed: the kubelet's probes (``/ping`` every few seconds) would otherwise
    dilute the error rate and fill the canary analysis' minimum request count with no scoring traffic at all.

    Load shedding: MLflow's app runs each prediction on a thread pool and queues the rest without bound, so beyond
    its ceiling every answer comes later until clients time out (and retry, adding load). At most
    ``max_inflight`` scoring requests are admitted; the next one gets an immediate 503 with ``Retry-After`` and a
    JSON body saying so, counted under ``code="503"`` and not captured (no prediction was made). With the
    credit-risk champion (~11 ms a prediction) the default 64 bounds the wait of an admitted request to ~0.7 s.
    Predictions run on ``prediction_threads`` threads (MLflow's app uses the loop's default pool, cores + 4 threads):
    parsing and schema checks hold the GIL, so more threads only starve the event loop, and a shed 503 then took
    ~1 s instead of ~17 ms (bench/serving_path.py's overload leg, docs/benchmarks.md).
    """

    def __init__(self, app: ASGIApp, spool: Spool, config: CaptureConfig) -> None:
        self.app = app
        self.spool = spool
        self.config = config
        self.paths = frozenset(config.capture_paths)
        self.metrics = spool.metrics
        self._latency = self.metrics.upstream_latency
        self._by_code: dict[int, Counter] = {
            code: self.metrics.requests.labels(code=str(code)) for code in _COMMON_CODES
        }
        self._inflight = 0
        self._overloaded = _overloaded_body(config.max_inflight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.config.prediction_threads:
            asyncio.get_running_loop().set_default_executor(
                ThreadPoolExecutor(self.config.prediction_threads, thread_name_prefix="predict")
            )
        if scope["type"] != "http" or scope["path"] not in self.paths:
            if scope["type"] == "http" and scope["path"] == METRICS_PATH and scope["method"] in ("GET", "HEAD"):
                await self._serve_metrics(scope, send)
                return
            await self.app(scope, receive, send)
            return
        if self._inflight >= self.config.max_inflight:
            await self._shed(send)
            return
        self._inflight += 1
        try:
            await self._score(scope, receive, send)
        finally:
            self._inflight -= 1

    async def _score(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived, started = time.time(), time.perf_counter()
        request_id, content_type = "", "application/json"
        for name, value in scope["headers"]:
            if name == _REQUEST_ID:
                request_id = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
        request_id = request_id or uuid.uuid4().hex
        limit = self.config.max_capture_bytes
        request_chunks: list[bytes] = []
        response_chunks: list[bytes] = []
        sizes = [0]  # request + response bytes seen so far
        status = [500, 0]  # the answer's status; then 1 once its last chunk went out (counted)

        async def capturing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                sizes[0] += len(chunk)
                if sizes[0] <= limit:
                    request_chunks.append(chunk)
            return message

        async def capturing_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                status[0] = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _REQUEST_ID]
                headers.append((_REQUEST_ID, request_id.encode("latin-1")))
                message["headers"] = headers
            elif kind == "http.response.body":
                chunk = message.get("body", b"")
                sizes[0] += len(chunk)
                if sizes[0] <= limit:
                    response_chunks.append(chunk)
                if not message.get("more_body", False):  # the pair is complete: count, spool, then let it go out
                    elapsed = time.perf_counter() - started
                    status[1] = 1
                    self._count(status[0], elapsed)
                    self._capture(request_id, arrived, elapsed, status[0], content_type, sizes[0],
                                  request_chunks, response_chunks)  # fmt: skip
            await send(message)

        try:
            await self.app(scope, capturing_receive, capturing_send)
        except Exception:
            if not status[1]:  # the app failed before answering (uvicorn sends a 500 or drops it): an error, counted
                self._count(500, time.perf_counter() - started)
            raise

    def _count(self, status: int, elapsed: float) -> None:
        child = self._by_code.get(status)
        if child is None:  # a rarer code: cached from now on (at most the few hundred HTTP codes)
            child = self._by_code[status] = self.metrics.requests.labels(code=str(status))
        child.inc()
        self._latency.observe(elapsed)

    async def _shed(self, send: Send) -> None:
        """Answered before the body is read: the client learns at once, and the connection stays usable. Counted,
        not timed: the latency histogram is the model's (the canary's p99 must not look faster for shedding)."""
        self._by_code[503].inc()
        headers = [*_OVERLOADED_HEADERS, (b"content-length", str(len(self._overloaded)).encode("latin-1"))]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": self._overloaded})

    async def _serve_metrics(self, scope: Scope, send: Send) -> None:
        """The spool's registry in Prometheus' text format; scraped every 30 s, so rendered on the event loop."""
        body = generate_latest(self.metrics.registry)
        headers = [*_METRICS_HEADERS, (b"content-length", str(len(body)).encode("latin-1"))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    def _capture(
        self,
        request_id: str,
        arrived: float,
        elapsed: float,
        status: int,
        content_type: str,
        size: int,
        request: list[bytes],
        response: list[bytes],
    ) -> None:
        if size > self.config.max_capture_bytes:
            self.spool.metrics.dropped.labels(reason="body_too_large").inc()
            return
        capture = Capture(
            request_id=request_id,
            ts=arrived,
            model_version=self.config.model_version,
            status=status,
            latency_ms=elapsed * 1000.0,
            content_type=content_type,
            request=b"".join(request),
            response=b"".join(response),
        )
        self.spool.append(capture)


def _overloaded_body(limit: int) -> bytes:
    return json.dumps(
        {
            "error_code": "SERVER_OVERLOADED",
            "message": f"{limit} scoring requests are already in flight; retry after a second, or slow the client down",
            "hint": "raise `driftloop scoring-server --max-inflight` if the model is fast and clients wait long",
        }
    ).encode()


class SpoolChores:
    """fsync on an interval and seal segments once old, on a thread: never on the request path."""

    def __init__(self, spool: Spool, fsync_interval_s: float) -> None:
        self.spool = spool
        self.interval = fsync_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-chores", daemon=True)

    def start(self) -> SpoolChores:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Seal and fsync what is pending (the shipper takes it from there)."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.spool.close()

    def _run(self) -> None:
        rescanned = time.monotonic()
        while not self._stop.wait(self.interval):
            try:
                self.spool.sync()
                self.spool.seal_if_older_than()
                if time.monotonic() - rescanned >= 1.0:  # the shipper deletes what it shipped: free that room
                    self.spool.rescan()
                    rescanned = time.monotonic()
            except OSError as exc:  # a full or failing disk: appends count their own drops; keep trying
                log.warning("spool chores failed (%s); retrying", exc)


def capture_app(model_uri: str, config: CaptureConfig) -> tuple[ASGIApp, SpoolChores]:
    """MLflow's own scoring app for ``model_uri`` wrapped in the capture; the chores must be stopped at exit."""
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(model_uri)
    spool = Spool(
        config.spool_dir,
        SidecarMetrics(),
        max_bytes=config.max_spool_bytes,
        segment_bytes=config.segment_bytes,
        segment_age_s=config.segment_age_s,
    )
    chores = SpoolChores(spool, config.fsync_interval_s).start()
    return CaptureMiddleware(scoring_server.init(model), spool, config), chores


def serve_with_capture(
    model_uri: str, config: CaptureConfig, host: str, port: int, shipper: ShipperChild | None = None
) -> None:
    """Blocking: uvicorn, one worker, until SIGTERM/SIGINT; then the spool is sealed and fsync'd, and ``shipper``
    (``--ship``: the shipper as a child process) is stopped last, once it has shipped that final segment."""
    import gc
    import signal

    import uvicorn

    if shipper is not None:
        config.spool_dir.mkdir(parents=True, exist_ok=True)
        shipper.start()
    try:
        app, chores = capture_app(model_uri, config)
    except BaseException:
        if shipper is not None:
            shipper.stop()
        raise
    if shipper is not None:
        shipper.count_restarts_in(chores.spool.metrics.registry)
    gc.freeze()  # the loaded model and MLflow are permanent: later collections skip them
    # uvicorn handles SIGTERM (graceful shutdown), then re-raises it under the handler it found: with the default one
    # the process would die before the `finally`, leaving the last segment open and unsynced; this one returns
    signal.signal(signal.SIGTERM, lambda *_: None)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning"))
    try:
        server.run()
    finally:
        chores.stop()
        if shipper is not None:
            shipper.stop()
