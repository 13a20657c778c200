"""Keep-alive connections to one model server that stream its answer straight to the client, bytes as they come.

The route-only router (``_route_only``) needs no response object: it parses the answer only to know where it ends
(httptools, the C parser uvicorn uses), whether it may keep the connection, its status (for the canary's
per-route series) and whether it already carries an ``X-Request-ID`` (else the router adds the one it sent). Every
byte is written to the client's transport unchanged, once the head is in; nothing is copied into Python objects
beyond that head. A request on an idle connection the server closed meanwhile (uvicorn drops idle ones after 5 s)
is retried once on a fresh connection if not one byte of answer came back, as every proxy does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, cast

import httptools

from monitors.sidecar._upstream import Endpoint, UpstreamError, UpstreamPool, UpstreamResponse

__all__ = ["Exchange", "ForwardPool", "Sink"]

_MAX_IDLE = 64
_REQUEST_ID = b"x-request-id"


class Sink(Protocol):
    """Where an answer's bytes go: the client connection the request came in on."""

    def send(self, data: bytes) -> None: ...
    def follow(self, upstream: asyncio.Transport | None) -> None: ...


@dataclass(eq=False)
class Exchange:
    """One request's answer as it streams: its status, whether the client connection must close after it."""

    sink: Sink
    request_id: bytes
    head_only: bool  # HEAD: the answer has a head and no body, whatever its Content-Length says
    done: asyncio.Future[None] | None = None
    status: int = 0
    received: bool = False  # any byte of answer came back (then a lost connection is never retried)
    close_client: bool = False  # the answer ends with the connection (no length): the client's must close too


class _Lost(Exception):
    """No complete answer: ``kind`` as :class:`UpstreamError` names it; ``received`` whether part of one came."""

    def __init__(self, kind: str, received: bool, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.received = received


class _Connection(asyncio.Protocol):
    """One upstream connection; ``begin`` sends a request, the answer resolves ``exchange.done``."""

    def __init__(self, release: Callable[[_Connection, bool], None]) -> None:
        self._release = release  # ForwardPool._release: keep it idle, or close it
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.exchange: Exchange | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._head = bytearray()
        self._flushed = self._headers_done = self._complete = self._has_id = self._framed = self._keep = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes

    def begin(self, exchange: Exchange, payload: bytes) -> None:
        assert self.transport is not None
        self.exchange = exchange
        self._parser = httptools.HttpResponseParser(self)
        self._head.clear()
        self._flushed = self._headers_done = self._complete = self._has_id = self._framed = self._keep = False
        exchange.sink.follow(self.transport)
        self.transport.write(payload)

    # httptools callbacks (the answer's head; the body is never handed to Python as parts)
    def on_header(self, name: bytes, _value: bytes) -> None:
        lowered = name.lower()
        if lowered == _REQUEST_ID:
            self._has_id = True
        elif lowered in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        assert self._parser is not None and self.exchange is not None
        self._headers_done = True
        self._keep = self._parser.should_keep_alive()  # known from the head (after the message llhttp resets it)
        self.exchange.status = status = self._parser.get_status_code()
        if self.exchange.head_only or status in (204, 304):
            self._complete = True

    def on_message_complete(self) -> None:
        self._complete = True

    def data_received(self, data: bytes) -> None:
        exchange, parser = self.exchange, self._parser
        if exchange is None or parser is None:  # bytes nobody asked for: the server is confused, drop it
            self._abort()
            return
        exchange.received = True
        try:
            if self._flushed:
                parser.feed_data(data)
                exchange.sink.send(data)
            else:
                self._head += data
                parser.feed_data(data)
                if self._headers_done:
                    self._flush(exchange)
        except httptools.HttpParserError as exc:
            self._fail("protocol", f"malformed answer: {exc}")
            return
        if self._complete:
            self._finish(exchange, keep=self._keep and not self.closed)

    def _flush(self, exchange: Exchange) -> None:
        """The head is in: send it (with the request id when the server did not echo one) and what followed it."""
        self._flushed = True
        head = self._head
        if not self._has_id:
            line_end = head.index(b"\r\n") + 2
            head[line_end:line_end] = b"X-Request-ID: " + exchange.request_id + b"\r\n"
        exchange.sink.send(bytes(head))
        head.clear()

    def _finish(self, exchange: Exchange, *, keep: bool) -> None:
        self.exchange = self._parser = None
        exchange.sink.follow(None)
        if exchange.done is not None and not exchange.done.done():
            exchange.done.set_result(None)
        self._release(self, keep)

    def _fail(self, kind: str, reason: str) -> None:
        exchange = self.exchange
        self.exchange = self._parser = None
        self._abort()
        if exchange is not None:
            exchange.sink.follow(None)
            if exchange.done is not None and not exchange.done.done():
                exchange.done.set_exception(_Lost(kind, exchange.received, reason))

    def _abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        exchange = self.exchange
        if exchange is None:
            return
        if self._flushed and not self._framed:  # an answer without a length ends with its connection
            exchange.close_client = True
            self._finish(exchange, keep=False)
        else:
            self._fail("unreachable", f"connection lost: {exc or 'closed by the model server'}")

    def timed_out(self, after_s: float) -> None:
        self._fail("timeout", f"no answer within {after_s:g}s")


class ForwardPool:
    """Keep-alive connections to one ``http(s)://host:port[/prefix]``; also answers the router's own probes."""

    def __init__(self, base_url: str, *, connect_timeout_s: float, timeout_s: float) -> None:
        self._endpoint = endpoint = Endpoint.parse(base_url)
        self._prefix = endpoint.prefix.encode()
        self._host_line = b"Host: " + endpoint.host_header.encode() + b"\r\n"
        self._idle: deque[_Connection] = deque()
        self._connect_timeout_s = connect_timeout_s
        self._timeout_s = timeout_s
        # /readyz probes the model server through a plain client (once a second at most: not the data path)
        self._probe = UpstreamPool(base_url, limit=4, connect_timeout_s=connect_timeout_s, timeout_s=timeout_s)

    async def forward(self, method: bytes, target: bytes, headers: bytes, body: bytes, exchange: Exchange) -> None:
        """Send one request (``headers``: its ``Name: value\\r\\n`` lines); its answer streams to ``exchange.sink``.

        Raises :class:`UpstreamError` when no complete answer came; ``exchange.received`` says whether part of
        one already reached the client (then only closing its connection is left).
        """
        payload = b"".join((method, b" ", self._prefix, target, b" HTTP/1.1\r\n", self._host_line, headers,
                            b"\r\n", body))  # fmt: skip
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            connection = self._take_idle() if attempt == 1 else None
            reused = connection is not None
            if connection is None:
                connection = await self._connect()
            exchange.done = loop.create_future()
            connection.begin(exchange, payload)
            timer = loop.call_later(self._timeout_s, connection.timed_out, self._timeout_s)
            try:
                await exchange.done
                return
            except _Lost as lost:
                if reused and not lost.received:
                    continue  # the server closed an idle keep-alive connection: retry once on a fresh one
                raise UpstreamError(lost.kind, str(lost)) from None
            finally:
                timer.cancel()
        raise AssertionError("unreachable")

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        *,
        timeout_s: float | None = None,
    ) -> UpstreamResponse:
        return await self._probe.request(method, target, headers, body, timeout_s=timeout_s)

    async def close(self) -> None:
        while self._idle:
            self._idle.pop()._abort()
        await self._probe.close()

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        return None

    def _release(self, connection: _Connection, keep: bool) -> None:
        if keep and len(self._idle) < _MAX_IDLE:
            self._idle.append(connection)
        else:
            connection.closed = True
            if connection.transport is not None:
                connection.transport.close()

    async def _connect(self) -> _Connection:
        endpoint = self._endpoint
        opening = asyncio.get_running_loop().create_connection(
            lambda: _Connection(self._release), endpoint.host, endpoint.port, ssl=endpoint.tls
        )
        _, connection = await endpoint.connecting(opening, self._connect_timeout_s)
        return connection
