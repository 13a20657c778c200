"""Capture inside the scoring process: an ASGI middleware around MLflow's FastAPI scoring app, served by uvicorn.

The reverse proxy costs a second process hop and ~0.7 ms of Python per request; here the only extra work on
the request path is one ``os.write`` of the request/response pair to the spool (page cache), done before the
last byte of the answer is sent, so a ``kill -9`` loses nothing already answered. fsync and sealing run on a
background thread; the lake is someone else's job: ``driftloop ship`` (the sidecar container, sharing the spool
directory like a log shipper sharing an ``emptyDir``) moves sealed segments to the lake.

    driftloop scoring-server --model-uri models:/credit-risk@champion --listen 127.0.0.1:5001 \\
        --spool /var/spool/driftloop --model credit-risk --model-version 3
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitors.sidecar._metrics import SidecarMetrics
from monitors.sidecar._spool import Capture, Spool

__all__ = ["CaptureConfig", "CaptureMiddleware", "SpoolChores", "capture_app", "serve_with_capture"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = b"x-request-id"

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


class CaptureMiddleware:
    """Pure ASGI (no Starlette request objects: nothing allocated per request that the pair does not need)."""

    def __init__(self, app: ASGIApp, spool: Spool, config: CaptureConfig) -> None:
        self.app = app
        self.spool = spool
        self.config = config
        self.paths = frozenset(config.capture_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
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
        status = [500]

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
                if not message.get("more_body", False):  # the pair is complete: spool it, then let it go out
                    self._capture(request_id, arrived, started, status[0], content_type, sizes[0],
                                  request_chunks, response_chunks)  # fmt: skip
            await send(message)

        await self.app(scope, capturing_receive, capturing_send)

    def _capture(
        self,
        request_id: str,
        arrived: float,
        started: float,
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
            latency_ms=(time.perf_counter() - started) * 1000.0,
            content_type=content_type,
            request=b"".join(request),
            response=b"".join(response),
        )
        self.spool.append(capture)


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


def serve_with_capture(model_uri: str, config: CaptureConfig, host: str, port: int) -> None:
    """Blocking: uvicorn, one worker, until SIGTERM/SIGINT; then the spool is sealed and fsync'd."""
    import gc

    import uvicorn

    app, chores = capture_app(model_uri, config)
    gc.freeze()  # the loaded model and MLflow are permanent: later collections skip them
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning"))
    try:
        server.run()
    finally:
        chores.stop()
