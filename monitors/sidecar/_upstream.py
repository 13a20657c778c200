"""A lean HTTP/1.1 keep-alive client for the one upstream the sidecar talks to.

aiohttp's client session does a great deal per request (URL objects, cookies, redirects, tracing,
timeouts as tasks) and costs about as much CPU as the whole server side; the sidecar needs none of it. This
pool writes the request head and body in one call and parses the response with ``readuntil``/``readexactly``
(Content-Length, chunked, or read-to-close). A request on a reused connection that the server had closed
meanwhile is retried once on a fresh one, as every proxy does.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

__all__ = ["Endpoint", "UpstreamError", "UpstreamPool", "UpstreamResponse"]

_NO_BODY_STATUSES = frozenset({204, 304})
_T = TypeVar("_T")


class UpstreamError(Exception):
    """The upstream did not answer: ``kind`` is 'unreachable', 'timeout' or 'protocol'."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class Endpoint:
    """One model server's address, parsed once: where to connect, the Host header to send, the path prefix."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    prefix: str
    host_header: str

    @classmethod
    def parse(cls, base_url: str) -> Endpoint:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream {base_url!r} is not an http(s) URL")
        tls = ssl.create_default_context() if parts.scheme == "https" else None
        return cls(parts.hostname, parts.port or (443 if tls else 80), tls, parts.path.rstrip("/"),
                   parts.netloc.rsplit("@", 1)[-1])  # fmt: skip

    async def connecting(self, opening: Awaitable[_T], timeout_s: float) -> _T:
        """Await a connection being opened to this endpoint; an :class:`UpstreamError` that says why it failed."""
        try:
            async with asyncio.timeout(timeout_s):
                return await opening
        except TimeoutError:
            raise UpstreamError("unreachable", f"connect to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            raise UpstreamError(
                "unreachable", f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None


class UpstreamPool:
    """Keep-alive connections to one ``http(s)://host:port``; at most ``limit`` requests at a time."""

    def __init__(self, base_url: str, *, limit: int, connect_timeout_s: float, timeout_s: float) -> None:
        self._endpoint = endpoint = Endpoint.parse(base_url)
        self._prefix = endpoint.prefix
        self._host_header = endpoint.host_header
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(limit)
        self._connect_timeout_s = connect_timeout_s
        self._timeout_s = timeout_s

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        *,
        timeout_s: float | None = None,
    ) -> UpstreamResponse:
        lines = [f"{method} {self._prefix}{target} HTTP/1.1", f"Host: {self._host_header}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
        async with self._slots:
            try:
                async with asyncio.timeout(timeout_s or self._timeout_s):
                    return await self._exchange(method, head + body)
            except TimeoutError:
                raise UpstreamError("timeout", f"no answer within {timeout_s or self._timeout_s:g}s") from None

    async def close(self) -> None:
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()

    async def _exchange(self, method: str, payload: bytes) -> UpstreamResponse:
        for attempt in (1, 2):
            reused = attempt == 1 and bool(self._idle)  # the retry never takes another (likely as stale) idle one
            reader, writer = self._idle.pop() if reused else await self._connect()
            try:
                writer.write(payload)
                response, keep_alive = await _read_response(reader, method)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                writer.close()
                if reused and attempt == 1:
                    continue  # the server closed an idle keep-alive connection: retry once on a fresh one
                raise UpstreamError("unreachable", f"connection lost: {exc or type(exc).__name__}") from None
            except (ValueError, asyncio.LimitOverrunError) as exc:
                writer.close()
                raise UpstreamError("protocol", f"malformed response: {exc}") from None
            if keep_alive:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return response
        raise AssertionError("unreachable")

    async def _connect(self) -> _Connection:
        endpoint = self._endpoint
        opening = asyncio.open_connection(endpoint.host, endpoint.port, ssl=endpoint.tls, limit=1 << 20)
        return await endpoint.connecting(opening, self._connect_timeout_s)


async def _read_response(reader: asyncio.StreamReader, method: str) -> tuple[UpstreamResponse, bool]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *header_lines = head[:-4].split("\r\n")
    version, status_text = status_line.split(" ", 2)[:2]
    status = int(status_text)
    headers = []
    length: int | None = None
    chunked = False
    keep_alive = version == "HTTP/1.1"
    for line in header_lines:
        name, _, value = line.partition(":")
        value = value.strip()
        lowered = name.strip().lower()
        if lowered == "content-length":
            length = int(value)
        elif lowered == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif lowered == "connection":
            keep_alive = value.lower() != "close" and (keep_alive or value.lower() == "keep-alive")
        headers.append((name.strip(), value))
    if method == "HEAD" or status in _NO_BODY_STATUSES or status < 200:
        body = b""
    elif chunked:
        body = await _read_chunked(reader)
    elif length is not None:
        body = await reader.readexactly(length)
    else:
        body, keep_alive = await reader.read(), False
    return UpstreamResponse(status, headers, body), keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])
