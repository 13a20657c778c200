"""Real servers for tests and benchmarks: an aiohttp app (or the route-only router) on a random port in a
background thread, and a tiny model server that speaks MLflow's ``/invocations`` protocol (400 on bad payloads, like MLflow).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from monitors.payloads import PayloadError, parse_request
from monitors.sidecar._config import SidecarConfig

__all__ = ["BackgroundRouter", "BackgroundServer", "main", "stub_model_app", "stub_score"]


def stub_score(record: dict[str, Any]) -> float:
    """A deterministic score in [0, 1) from a record's content, so tests can recompute any prediction."""
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def stub_model_app(delay_s: float = 0.0) -> web.Application:
    """An MLflow-like scoring server: ``POST /invocations`` -> ``{"predictions": [...]}``, ``GET /ping``."""

    async def invocations(request: web.Request) -> web.Response:
        body = await request.read()
        if delay_s:
            await asyncio.sleep(delay_s)
        try:
            records = parse_request(body, request.headers.get("Content-Type", "application/json"))
        except PayloadError as exc:
            return web.json_response({"error_code": "BAD_REQUEST", "message": str(exc)}, status=400)
        return web.json_response({"predictions": [stub_score(record) for record in records]})

    async def ping(_: web.Request) -> web.Response:
        return web.Response(text="\n")

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/invocations", invocations)
    app.router.add_get("/ping", ping)
    return app


class _InThread:
    """A server on 127.0.0.1 (random free port by default) served by an event loop in a thread; a context manager."""

    def __init__(self, host: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.host = host
        self.port = port
        self._loop = loop
        self._thread = threading.Thread(target=self._loop.run_forever, name=type(self).__name__, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _open(self) -> int:
        """Listen; the port listened on."""
        raise NotImplementedError

    async def _shut(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        """Clean shutdown (the server's own cleanup runs); safe to call twice."""
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._shut(), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class BackgroundServer(_InThread):
    """Serve an aiohttp app from a thread (the app's startup and cleanup hooks run)."""

    def __init__(self, app_factory: Callable[[], web.Application], host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port, asyncio.new_event_loop())
        self._app_factory = app_factory
        self._runner: web.AppRunner | None = None

    async def _open(self) -> int:
        self._runner = web.AppRunner(self._app_factory(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        return int(self._runner.addresses[0][1])

    async def _shut(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class BackgroundRouter(_InThread):
    """The route-only router (``driftloop sidecar --no-capture``) from a thread, on uvloop as the CLI runs it;
    stopping it drains the requests in flight, as SIGTERM does."""

    def __init__(self, config: SidecarConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        from monitors.sidecar._route_only import RouteOnly
        from monitors.sidecar._run import new_loop

        super().__init__(host, port, new_loop())
        self.router = RouteOnly(config)

    async def _open(self) -> int:
        await self.router.start(self.host, self.port)
        return self.router.port

    async def _shut(self) -> None:
        await self.router.close()


def main() -> None:
    """``python -m monitors.sidecar.testing PORT``: serve the stub model server in the foreground."""
    import sys

    from monitors.sidecar._run import new_loop

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5001
    web.run_app(stub_model_app(), host="127.0.0.1", port=port, access_log=None, print=None, loop=new_loop())


if __name__ == "__main__":
    main()
