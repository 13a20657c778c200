"""The reverse proxy: forward to the model server, capture the pair into the spool, answer.

It routes by the deployer's routing file too (weighted). With ``capture=False`` (``--no-capture``: the model
servers behind capture in process) the leaner route-only router of ``_route_only`` runs instead of this app.

The only work on the request path besides forwarding is one ``os.write`` of the capture to the spool
(page cache). Everything slow — fsync, sealing, parquet, the lake — happens in background tasks or the
writer thread. ``/metrics``, ``/healthz`` and ``/readyz`` belong to the sidecar; every other path is
proxied, and the capture paths (``/invocations``) are also captured.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import uuid

from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitors.sidecar._config import SidecarConfig, cancel_all, champion_version_of, every
from monitors.sidecar._metrics import SidecarMetrics
from monitors.sidecar._routes import Route, Router
from monitors.sidecar._spool import Capture, Spool
from monitors.sidecar._upstream import UpstreamError, UpstreamPool, UpstreamResponse
from monitors.sidecar._writer import LakeWriter

__all__ = ["REQUEST_ID_HEADER", "Sidecar", "SidecarConfig"]

log = logging.getLogger("driftloop.sidecar")

REQUEST_ID_HEADER = "X-Request-ID"
_HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailers",
        "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Content-Encoding",
    )
)  # fmt: skip


class Sidecar:
    """The aiohttp application plus its spool and lake writer; ``app()`` wires their lifetimes together."""

    def __init__(self, config: SidecarConfig) -> None:
        if not config.capture:
            raise ValueError("route only (capture=False) is served by monitors.sidecar._route_only.RouteOnly")
        self.config = config
        self.upstream = config.upstream.rstrip("/")
        self.metrics = SidecarMetrics()
        self.model_version = config.model_version or "unknown"
        self.spool: Spool | None = None
        self.writer: LakeWriter | None = None
        self.router: Router | None = None
        self._inflight = 0
        self._tasks: list[asyncio.Task[None]] = []

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, _: web.Application) -> None:
        config = self.config
        self.spool = Spool(
            config.spool_dir,
            self.metrics,
            max_bytes=config.max_spool_bytes,
            segment_bytes=config.segment_bytes,
            segment_age_s=config.segment_age_s,
        )
        self.writer = LakeWriter(self.spool, config.lake_uri, config.model, self.metrics, poll_s=config.lake_poll_s)
        self.writer.start()
        gc.freeze()  # start-up objects are permanent: later collections (on the request path) skip them

        def pool(url: str) -> UpstreamPool:
            return UpstreamPool(
                url,
                limit=config.max_inflight,
                connect_timeout_s=config.connect_timeout_s,
                timeout_s=config.upstream_timeout_s,
            )

        self.router = Router(self.upstream, config.model_version, config.routes_file, pool)
        await self.router.refresh()  # the routes in force from the first request on
        self._tasks += [
            asyncio.create_task(every(config.routes_poll_s, self.router.refresh)),
            asyncio.create_task(every(config.fsync_interval_s, self._sync)),
            asyncio.create_task(every(min(1.0, config.segment_age_s / 2), self._seal_old)),
        ]
        if config.model_version is None and config.mlflow_uri:
            self._tasks.append(asyncio.create_task(every(5.0, self._resolve_version, first=0.0)))

    async def _on_cleanup(self, _: web.Application) -> None:
        await cancel_all(self._tasks)
        if self.router is not None:
            await self.router.close()
        if self.spool is not None:
            self.spool.seal_if_older_than(0.0)
            if self.writer is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.writer.stop)
            self.spool.close()

    async def _sync(self) -> None:
        assert self.spool is not None
        await asyncio.get_running_loop().run_in_executor(None, self.spool.sync)

    async def _seal_old(self) -> None:
        assert self.spool is not None
        self.spool.seal_if_older_than()

    async def _resolve_version(self) -> None:
        """Which registered version the champion alias points at, so every capture names its model version."""
        version = await champion_version_of(self.config)
        if version is not None:
            self.model_version = version

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        if self._inflight >= self.config.max_inflight:
            return self._error(503, "SIDECAR_OVERLOADED", f"{self._inflight} requests in flight", request_id)
        self._inflight += 1
        try:
            return await self._forward(request, request_id)
        finally:
            self._inflight -= 1

    async def _forward(self, request: web.Request, request_id: str) -> web.StreamResponse:
        assert self.router is not None
        arrived = time.time()
        body = await request.read()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        headers.append((REQUEST_ID_HEADER, request_id))
        route = self.router.pick()
        started = time.perf_counter()
        try:
            upstream = await self._send(route, request.method, request.path_qs, headers, body)
        except UpstreamError as exc:
            self.metrics.upstream_errors.labels(kind=exc.kind).inc()
            if exc.kind == "timeout":
                response = self._error(504, "UPSTREAM_TIMEOUT", f"the model server did not answer: {exc}", request_id)
            else:
                message = f"the model server is unreachable: {exc}"
                response = self._error(502, "UPSTREAM_UNAVAILABLE", message, request_id)
        else:
            elapsed = time.perf_counter() - started
            self.metrics.upstream_latency.observe(elapsed)
            self.metrics.route_latency.labels(route=route.name).observe(elapsed)
            out_headers = CIMultiDict((k, v) for k, v in upstream.headers if k.lower() not in _HOP_BY_HOP)
            out_headers[REQUEST_ID_HEADER] = request_id
            response = web.Response(body=upstream.body, status=upstream.status, headers=out_headers)
            self.metrics.requests.labels(code=str(upstream.status)).inc()
        self.metrics.route_requests.labels(route=route.name, code=str(response.status)).inc()
        if self.spool is not None and request.path in self.config.capture_paths:
            latency_ms = (time.perf_counter() - started) * 1000.0
            self._capture(request, request_id, arrived, response, body, latency_ms, route)
        return response

    async def _send(
        self, route: Route, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> UpstreamResponse:
        """One exchange on ``route``, counted in flight so the deployer knows when an old route has drained."""
        route.inflight += 1
        try:
            return await route.pool.request(method, target, headers, body)
        finally:
            route.inflight -= 1

    def _capture(
        self,
        request: web.Request,
        request_id: str,
        arrived: float,
        response: web.Response,
        body: bytes,
        latency_ms: float,
        route: Route,
    ) -> None:
        """Append the pair to the spool before the response is returned (the durability promise)."""
        assert self.spool is not None
        answer = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""
        if len(body) + len(answer) > self.config.max_capture_bytes:
            self.metrics.dropped.labels(reason="body_too_large").inc()
            return
        capture = Capture(
            request_id=request_id,
            ts=arrived,
            model_version=route.model_version or self.model_version,
            status=response.status,
            latency_ms=latency_ms,
            content_type=request.headers.get("Content-Type", "application/json"),
            request=body,
            response=answer,
        )
        self.spool.append(capture)

    def _error(self, status: int, code: str, message: str, request_id: str) -> web.Response:
        hints = {
            502: f"start the model server at {self.upstream} (or fix --upstream), then retry",
            503: "the sidecar is at --max-inflight; slow the client down or raise the limit",
            504: f"the model server at {self.upstream} is overloaded or stuck; check its logs",
        }
        body = {"error_code": code, "message": message, "hint": hints[status], "request_id": request_id}
        self.metrics.requests.labels(code=str(status)).inc()
        return web.json_response(body, status=status, headers={REQUEST_ID_HEADER: request_id})

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        """Ready when the model server answers; lake and spool trouble are reported as warnings only."""
        assert self.router is not None
        primary = self.router.primary()
        problems = await self.router.probe_primary(self.config.ready_path)
        warnings = []  # they never make the sidecar unready: traffic must not stop because the lake lags
        if self.spool is not None and self.spool.dropping:
            warnings.append("spool full: new payloads are dropped (and counted) until the lake catches up")
        if self.router.error:
            warnings.append(f"routing file ignored, routes unchanged: {self.router.error}")
        lake_error = self.writer.last_error if self.writer is not None else None
        if lake_error:
            warnings.append(f"lake write failing, payloads wait in the spool: {lake_error}")
        report = {
            "ready": not problems,
            "problems": problems,
            "warnings": warnings,
            "capture": "proxy",
            "spooled_bytes": self.spool.total_bytes if self.spool is not None else None,
            "lake_error": lake_error,
            "model_version": primary.model_version or self.model_version,
            "routing": self.router.report(),
        }
        return web.Response(
            text=json.dumps(report), status=200 if not problems else 503, content_type="application/json"
        )
