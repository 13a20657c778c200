"""The route-only router (``driftloop sidecar --no-capture``): the deployer's canary split, as cheap as Python allows.

In ``driftloop stack up`` the model servers capture in process, so this hop only picks a route by the routing file's
weights and passes bytes. It used to be the aiohttp proxy with capture off; at ~200 req/s on a 2-core box that hop
added ~14 ms at p99 (docs/benchmarks.md). Here it is an ``asyncio.Protocol`` per client connection: httptools parses
the request (method, target, headers, body — no request object), the route's :class:`ForwardPool` sends it on a
keep-alive connection and streams the answer's bytes back unchanged. What the canary analysis and the deployer read
is kept: ``driftloop_sidecar_route_*`` at ``/metrics``, the routing generation and per-route in-flight counts at
``/readyz``, one request id per request (the client's ``X-Request-ID`` or a new one, sent to the model server and
returned). Bad input gets a 4xx that names the problem; more than ``max_inflight`` requests get a fast 503.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import time
from collections import deque
from typing import Any, cast

import httptools
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitors.sidecar._config import SidecarConfig, cancel_all, champion_version_of, every
from monitors.sidecar._forward import Exchange, ForwardPool
from monitors.sidecar._metrics import SidecarMetrics
from monitors.sidecar._routes import Route, Router
from monitors.sidecar._upstream import UpstreamError

__all__ = ["RouteOnly", "serve_route_only"]

log = logging.getLogger("driftloop.sidecar")

# not forwarded: the hop's own (the router frames the request itself; Host is the model server's)
_DROPPED = frozenset(
    {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection", b"te",
     b"trailer", b"transfer-encoding", b"upgrade", b"host", b"content-length", b"expect"}
)  # fmt: skip
_MAX_HEAD_BYTES = 64 << 10
_MAX_PIPELINED = 16
_IDLE_TIMEOUT_S = 75.0  # a keep-alive connection with nothing in flight is closed after this (aiohttp's default)
_LOCAL_PATHS = (b"/metrics", b"/healthz", b"/readyz")
_HINTS = {
    400: "send one well-formed HTTP/1.1 request (Content-Length or chunked body)",
    405: "the router's own paths answer GET only",
    413: "send a smaller body or raise --max-body-mb",
    431: "send fewer or shorter headers (64 KiB in all at most)",
    502: "start the model server (or fix --upstream / the routing file), then retry",
    503: "the router is at --max-inflight; slow the client down or raise the limit",
    504: "the model server is overloaded or stuck; check its logs",
}
_REASONS = {200: b"OK", 400: b"Bad Request", 405: b"Method Not Allowed", 413: b"Payload Too Large",
            431: b"Request Header Fields Too Large", 502: b"Bad Gateway", 503: b"Service Unavailable",
            504: b"Gateway Timeout"}  # fmt: skip


def _response(status: int, body: bytes, content_type: bytes, request_id: bytes, *, close: bool = False) -> bytes:
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nX-Request-ID: %s\r\n%s\r\n" % (
        status, _REASONS[status], content_type, len(body), request_id, b"Connection: close\r\n" if close else b""
    )  # fmt: skip
    return head + body


def _error(status: int, code: str, message: str, request_id: bytes, *, close: bool = False) -> bytes:
    body = {"error_code": code, "message": message, "hint": _HINTS[status], "request_id": request_id.decode()}
    return _response(status, json.dumps(body).encode(), b"application/json", request_id, close=close)


def _new_request_id() -> bytes:
    """32 random hex digits, like ``uuid4().hex`` (what the scoring server makes) at a fifth of its cost."""
    return os.urandom(16).hex().encode()


class _Refused(Exception):
    """Raised from a parser callback once the client was answered with a 4xx and its connection is closing."""


class _Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "request_id", "url")

    def __init__(self) -> None:
        self.url = b""
        self.method = b""
        self.headers: list[bytes] = []
        self.body: list[bytes] = []
        self.request_id: bytes | None = None
        self.keep_alive = True


class _Client(asyncio.Protocol):
    """One client connection: parse requests, serve them one at a time (pipelined ones wait), stream answers back."""

    def __init__(self, server: RouteOnly) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.current = _Request()
        self.head_bytes = self.body_bytes = 0
        self.queue: deque[_Request] = deque()
        self.busy = self.paused = False
        self.sent = False  # bytes of the current answer went out (then an upstream failure can only close)
        self.upstream: asyncio.Transport | None = None
        self.last_active = time.monotonic()

    # -- the connection
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self.server.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.clients.discard(self)
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:  # a callback raised: httptools wraps what it raised
            if not isinstance(exc.__context__, _Refused):  # not a refusal: a bug, logged; the client gets a 400
                log.error("route-only router: reading a request failed", exc_info=exc.__context__ or exc)
                self.refuse(400, "BAD_REQUEST", "the router could not read this request")
        except httptools.HttpParserUpgrade:
            self.refuse(400, "UPGRADE_NOT_SUPPORTED", "protocol upgrades (WebSocket, h2c) are not routed")
        except httptools.HttpParserError as exc:
            self.refuse(400, "BAD_REQUEST", f"malformed HTTP request: {exc}")

    def pause_writing(self) -> None:  # the client reads slower than the model server answers: stop reading it
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    # -- Sink, for ForwardPool
    def send(self, data: bytes) -> None:
        self.sent = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def follow(self, upstream: asyncio.Transport | None) -> None:
        self.upstream = upstream

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self.current = _Request()
        self.head_bytes = self.body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.current.url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        lowered = name.lower()
        if lowered in _DROPPED:
            if lowered == b"content-length":
                length = int(value) if value.strip().isdigit() else -1
                if length < 0:
                    raise self.refuse(400, "BAD_REQUEST", "Content-Length is not a number of bytes")
                if length > self.server.config.max_body_bytes:
                    raise self.refuse(413, "BODY_TOO_LARGE", f"the body is {length} bytes, more than "
                                      f"{self.server.config.max_body_bytes}")  # fmt: skip
            elif lowered == b"expect" and value.lower() == b"100-continue" and self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        if lowered == b"x-request-id":
            self.current.request_id = value
        self.current.headers.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        self.current.method = self.parser.get_method()
        self.current.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > self.server.config.max_body_bytes:
            raise self.refuse(413, "BODY_TOO_LARGE", f"the body is more than {self.server.config.max_body_bytes} bytes")
        self.current.body.append(body)

    def on_message_complete(self) -> None:
        request = self.current
        if self.busy:
            self.queue.append(request)
            if len(self.queue) >= _MAX_PIPELINED and self.transport is not None:
                self.transport.pause_reading()
                self.paused = True
        else:
            self._start(request)

    def _count_head(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > _MAX_HEAD_BYTES:
            raise self.refuse(431, "HEADERS_TOO_LARGE", f"the request head is more than {_MAX_HEAD_BYTES} bytes")

    def refuse(self, status: int, code: str, message: str) -> _Refused:
        """Answer a request the router will not read to its end, and close (its remaining bytes are unframed)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_error(status, code, message, _new_request_id(), close=True))
            self.transport.close()
        return _Refused(message)  # a parser callback raises it, so that httptools stops reading

    # -- serving
    def _start(self, request: _Request) -> None:
        self.busy = True
        asyncio.get_running_loop().create_task(self._serve(request))

    async def _serve(self, request: _Request) -> None:
        try:
            path = request.url.split(b"?", 1)[0]
            if path in _LOCAL_PATHS:
                answer = await self.server.local(request.method, path)
                self.send(answer)
            else:
                await self.server.route(self, request)
        except Exception:  # never a traceback to the client; the connection is closed and the error logged
            log.exception("route-only router: request failed")
            request.keep_alive = False
        self.busy = self.sent = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not request.keep_alive:
            transport.close()
        elif self.queue:
            if self.paused and len(self.queue) < _MAX_PIPELINED:
                transport.resume_reading()
                self.paused = False
            self._start(self.queue.popleft())


class RouteOnly:
    """The router's state: routes, metrics, client connections; ``start()`` listens, ``close()`` drains."""

    def __init__(self, config: SidecarConfig) -> None:
        self.config = config
        self.metrics = SidecarMetrics()
        self.model_version = config.model_version or "unknown"
        self.clients: set[_Client] = set()
        self.inflight = 0
        self.router: Router | None = None
        self.server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._series: dict[tuple[str, int], tuple[Any, Any, Any]] = {}

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        config = self.config
        if any(config.spool_dir.glob("*.seg")) or any(config.spool_dir.glob("*.open")):
            # route only now, but a capturing run of this sidecar left payloads in its spool: ship them, not lose them
            self._tasks.append(asyncio.create_task(asyncio.to_thread(self._ship_leftovers)))

        def pool(url: str) -> ForwardPool:
            return ForwardPool(url, connect_timeout_s=config.connect_timeout_s, timeout_s=config.upstream_timeout_s)

        self.router = Router(config.upstream.rstrip("/"), config.model_version, config.routes_file, pool)
        await self.router.refresh()  # the routes in force from the first request on
        self._tasks.append(asyncio.create_task(every(config.routes_poll_s, self.router.refresh)))
        self._tasks.append(asyncio.create_task(every(10.0, self._close_idle)))
        if config.model_version is None and config.mlflow_uri:  # /readyz names the version
            self._tasks.append(asyncio.create_task(every(5.0, self._resolve_version, first=0.0)))
        gc.freeze()  # start-up objects are permanent: later collections (on the request path) skip them
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Client(self), host, port, backlog=1024)

    async def close(self, drain_s: float = 30.0) -> None:
        """Stop listening, let the requests in flight finish (up to ``drain_s``), then close everything."""
        if self.server is not None:
            self.server.close()
        deadline = time.monotonic() + drain_s
        while self.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for client in list(self.clients):
            if client.transport is not None:
                client.transport.close()
        await cancel_all(self._tasks)
        if self.router is not None:
            await self.router.close()

    async def route(self, client: _Client, request: _Request) -> None:
        """Forward one request to the route the weights pick; count it where the canary analysis looks."""
        assert self.router is not None
        request_id = request.request_id or _new_request_id()
        if self.inflight >= self.config.max_inflight:
            client.send(_error(503, "SIDECAR_OVERLOADED", f"{self.inflight} requests in flight", request_id))
            self.metrics.requests.labels(code="503").inc()
            return
        route = self.router.pick()
        headers = b"".join(request.headers)
        if request.request_id is None:
            headers += b"X-Request-ID: " + request_id + b"\r\n"
        body = b"".join(request.body)
        if body or request.method in (b"POST", b"PUT", b"PATCH"):
            headers += b"Content-Length: %d\r\n" % len(body)
        exchange = Exchange(client, request_id, request.method == b"HEAD")
        self.inflight += 1
        route.inflight += 1
        started = time.perf_counter()
        try:
            assert isinstance(route.pool, ForwardPool)
            await route.pool.forward(request.method, request.url, headers, body, exchange)
        except UpstreamError as exc:
            self.metrics.upstream_errors.labels(kind=exc.kind).inc()
            status = 504 if exc.kind == "timeout" else 502
            self._count(route, status, None)
            if client.sent:  # part of an answer went out: the client can only tell from the closed connection
                request.keep_alive = False
                return
            code, what = ("UPSTREAM_TIMEOUT", "did not answer") if status == 504 else ("UPSTREAM_UNAVAILABLE",
                                                                                       "is unreachable")  # fmt: skip
            client.send(_error(status, code, f"the model server {route.url} {what}: {exc}", request_id))
        else:
            self._count(route, exchange.status, time.perf_counter() - started)
            if exchange.close_client:
                request.keep_alive = False
        finally:
            self.inflight -= 1
            route.inflight -= 1

    def _count(self, route: Route, status: int, seconds: float | None) -> None:
        series = self._series.get((route.name, status))
        if series is None:
            metrics, code = self.metrics, str(status)
            series = (metrics.requests.labels(code=code), metrics.route_requests.labels(route=route.name, code=code),
                      metrics.route_latency.labels(route=route.name))  # fmt: skip
            self._series[(route.name, status)] = series
        series[0].inc()
        series[1].inc()
        if seconds is not None:
            series[2].observe(seconds)
            self.metrics.upstream_latency.observe(seconds)

    async def local(self, method: bytes, path: bytes) -> bytes:
        """``/metrics``, ``/healthz`` and ``/readyz``: the router's own, never forwarded."""
        request_id = _new_request_id()
        if method not in (b"GET", b"HEAD"):
            return _error(405, "METHOD_NOT_ALLOWED", f"{path.decode()} answers GET, not {method.decode()}", request_id)
        if path == b"/metrics":
            body, content_type, status = generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST.encode(), 200
        elif path == b"/healthz":
            body, content_type, status = b'{"status": "ok"}', b"application/json", 200
        else:
            report = await self._readiness()
            body, content_type = json.dumps(report).encode(), b"application/json"
            status = 200 if report["ready"] else 503
        answer = _response(status, body, content_type, request_id)
        return answer[: answer.index(b"\r\n\r\n") + 4] if method == b"HEAD" else answer

    async def _readiness(self) -> dict[str, Any]:
        """Ready when the primary route's model server answers; the same report as the capturing sidecar's."""
        assert self.router is not None
        primary = self.router.primary()
        problems = await self.router.probe_primary(self.config.ready_path)
        warnings = [f"routing file ignored, routes unchanged: {self.router.error}"] if self.router.error else []
        return {
            "ready": not problems,
            "problems": problems,
            "warnings": warnings,
            "capture": "in-process",  # the model servers capture; their own /metrics and shippers report the spool
            "spooled_bytes": None,
            "lake_error": None,
            "model_version": primary.model_version or self.model_version,
            "routing": self.router.report(),
        }

    async def _close_idle(self) -> None:
        """Close keep-alive connections idle past the timeout (a client cannot hold sockets open forever)."""
        cutoff = time.monotonic() - _IDLE_TIMEOUT_S
        for client in list(self.clients):
            if not client.busy and client.last_active < cutoff and client.transport is not None:
                client.transport.close()

    async def _resolve_version(self) -> None:
        version = await champion_version_of(self.config)
        if version is not None:
            self.model_version = version

    def _ship_leftovers(self) -> None:
        from monitors.sidecar.shipper import ship_leftovers

        outcome = ship_leftovers(self.config.spool_dir, self.config.lake_uri, self.config.model, timeout_s=60.0)
        if outcome is not None:  # None: another process ships this spool
            shipped, rows = outcome
            log.warning("route only: shipped %d payload rows a capturing run left in %s (%s)", rows,
                        self.config.spool_dir, "all of them" if shipped else "the rest stays there")  # fmt: skip


def serve_route_only(config: SidecarConfig, host: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
    """Route until SIGTERM/SIGINT, then drain the requests in flight and exit."""
    router = RouteOnly(config)
    loop.run_until_complete(router.start(host, port))
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        loop.run_until_complete(stop.wait())
    finally:
        loop.run_until_complete(router.close())
        loop.close()
