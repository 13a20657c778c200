"""Weighted upstreams from a routing file: how ``driftloop deployer`` shifts traffic without restarting the sidecar.

The deployer (the only writer) replaces the file atomically (write + rename, mode 0600 under ``$DRIFTLOOP_HOME``:
the file system is the authentication — whoever may write there already owns the stack). The sidecar checks it
every ``poll_s`` and, when it changed, parses and validates it; a broken file is logged, counted and ignored, so a
bad write never takes traffic down. While no file exists the sidecar routes to its ``--upstream`` alone.

    {"generation": 7, "routes": [{"name": "v2", "url": "http://127.0.0.1:41001", "weight": 90, "model_version": "2"},
                                 {"name": "v3", "url": "http://127.0.0.1:41007", "weight": 10, "model_version": "3"}]}

A route whose weight drops to 0 gets no new requests but keeps its pool until its in-flight requests finished;
one that leaves the file is closed then. ``/readyz`` reports each route's in-flight count and the generation in
force, which is what the deployer waits on before it stops an old model server: no request is cut off.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from monitors.sidecar._upstream import UpstreamError, UpstreamResponse

__all__ = ["DEFAULT_ROUTE", "Route", "RoutePool", "Router", "parse_routes"]

log = logging.getLogger("driftloop.sidecar")

DEFAULT_ROUTE = "default"
_MAX_FILE_BYTES = 64 << 10
_MAX_ROUTES = 8


class RoutePool(Protocol):
    """What a route needs of its connections: one exchange (the readiness probe) and closing them."""

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        *,
        timeout_s: float | None = None,
    ) -> UpstreamResponse: ...

    async def close(self) -> None: ...


@dataclass
class Route:
    name: str
    url: str
    weight: float
    model_version: str | None
    pool: RoutePool
    inflight: int = 0


@dataclass(frozen=True)
class _Spec:
    name: str
    url: str
    weight: float
    model_version: str | None


def parse_routes(text: str) -> tuple[int, list[_Spec]]:
    """The generation and routes of a routing file; ValueError naming the problem otherwise."""
    document = json.loads(text)
    if not isinstance(document, dict) or not isinstance(document.get("routes"), list):
        raise ValueError('expected {"generation": N, "routes": [...]}')
    generation = document.get("generation", 0)
    if not isinstance(generation, int) or isinstance(generation, bool):
        raise ValueError("generation must be an integer")
    specs: list[_Spec] = []
    for index, item in enumerate(document["routes"][: _MAX_ROUTES + 1]):
        if index == _MAX_ROUTES:
            raise ValueError(f"more than {_MAX_ROUTES} routes")
        if not isinstance(item, dict):
            raise ValueError(f"routes[{index}] is not an object")
        name, url, weight = item.get("name"), item.get("url"), item.get("weight")
        if not isinstance(name, str) or not name or len(name) > 64:
            raise ValueError(f"routes[{index}].name must be a short string")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"routes[{index}].url must be an http(s) URL")
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise ValueError(f"routes[{index}].weight must be a number from 0 to 100")
        version = item.get("model_version")
        specs.append(_Spec(name, str(url).rstrip("/"), float(weight), None if version is None else str(version)))
    if len({spec.name for spec in specs}) != len(specs):
        raise ValueError("route names must be unique")
    if not any(spec.weight > 0 for spec in specs):
        raise ValueError("at least one route needs a weight above 0")
    return generation, specs


@dataclass
class Router:
    """The routes in force; ``pick()`` is on the request path (no I/O), ``refresh()`` runs in the background."""

    default_url: str
    default_version: str | None
    routes_file: Path | None
    pool_factory: Callable[[str], RoutePool]
    generation: int = -1  # -1: the --upstream alone (no file)
    error: str | None = None
    routes: list[Route] = field(default_factory=list)
    _retired: list[Route] = field(default_factory=list)
    _stamp: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.routes = [
            Route(DEFAULT_ROUTE, self.default_url, 100.0, self.default_version, self.pool_factory(self.default_url))
        ]

    def pick(self) -> Route:
        live = [route for route in self.routes if route.weight > 0]
        if len(live) == 1:
            return live[0]
        point = random.uniform(0, sum(route.weight for route in live))
        for route in live:
            point -= route.weight
            if point <= 0:
                return route
        return live[-1]

    def primary(self) -> Route:
        return max(self.routes, key=lambda route: route.weight)

    async def probe_primary(self, ready_path: str) -> list[str]:
        """What keeps the router from being ready: the primary route's model server not answering ``ready_path``."""
        primary = self.primary()
        try:
            probe = await primary.pool.request("GET", ready_path, [], b"", timeout_s=1.0)
        except UpstreamError as exc:
            return [f"model server {primary.url} unreachable: {exc}"]
        if probe.status >= 500:
            detail = probe.body[:200].decode("utf-8", "replace")
            return [f"model server {primary.url} answers {probe.status}: {detail}"]
        return []

    async def refresh(self) -> None:
        await self._close_drained()
        if self.routes_file is None:
            return
        try:
            stat = self.routes_file.stat()
        except FileNotFoundError:
            if self.generation != -1:
                log.warning("routing file %s removed: back to --upstream %s", self.routes_file, self.default_url)
                self._apply(-1, [_Spec(DEFAULT_ROUTE, self.default_url, 100.0, self.default_version)])
                self._stamp = None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            if stat.st_size > _MAX_FILE_BYTES:
                raise ValueError(f"larger than {_MAX_FILE_BYTES} bytes")
            generation, specs = parse_routes(self.routes_file.read_text())
        except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            self.error = f"{self.routes_file}: {exc}"
            log.error("ignoring the routing file (routes unchanged): %s", self.error)
            return
        self.error = None
        if generation != self.generation:
            self._apply(generation, specs)

    def _apply(self, generation: int, specs: list[_Spec]) -> None:
        by_url = {route.url: route for route in self.routes + self._retired}
        routes = []
        for spec in specs:
            route = by_url.pop(spec.url, None)
            if route is None:
                route = Route(spec.name, spec.url, spec.weight, spec.model_version, self.pool_factory(spec.url))
            else:
                route.name, route.weight, route.model_version = spec.name, spec.weight, spec.model_version
            routes.append(route)
        self._retired = [route for route in by_url.values()]
        for route in self._retired:
            route.weight = 0.0
        self.routes, self.generation = routes, generation
        log.info("routing generation %d: %s", generation, ", ".join(f"{r.name}={r.weight:g}" for r in routes))

    async def _close_drained(self) -> None:
        keep = []
        for route in self._retired:
            if route.inflight:
                keep.append(route)
            else:
                await route.pool.close()
        self._retired = keep

    async def close(self) -> None:
        for route in self.routes + self._retired:
            await route.pool.close()

    def report(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "file": str(self.routes_file) if self.routes_file else None,
            "error": self.error,
            "routes": [
                {
                    "name": r.name,
                    "url": r.url,
                    "weight": r.weight,
                    "model_version": r.model_version,
                    "inflight": r.inflight,
                }
                for r in self.routes + self._retired
            ],
        }
