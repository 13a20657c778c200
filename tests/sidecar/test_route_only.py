"""The route-only router (`driftloop sidecar --no-capture`, what `driftloop stack up` runs): bytes in, bytes out,
with one request id per request, per-route series, and a named 4xx/5xx for everything it will not pass on.

Real servers on 127.0.0.1: the router in a thread, aiohttp model servers (or a raw socket one where a server must
misbehave), clients over httpx or raw sockets for requests httpx refuses to send.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from monitors.sidecar import SidecarConfig
from monitors.sidecar.testing import BackgroundRouter, BackgroundServer, stub_model_app
from tests.sidecar.conftest import metric


def _echo_app(delay_s: float = 0.0) -> web.Application:
    """A model server that answers with what it got (method, body, headers) and echoes the request id, like
    `driftloop scoring-server` does."""

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if delay_s and request.path != "/ping":  # the readiness probe stays fast
            await asyncio.sleep(delay_s)
        if request.path == "/big":
            return web.Response(body=b"x" * (4 << 20))
        answer = {"method": request.method, "body": body.decode(), "path": request.path_qs,
                  "headers": {k.lower(): v for k, v in request.headers.items()}}  # fmt: skip
        rid = request.headers.get("X-Request-ID")
        return web.json_response(answer, headers={"X-Request-ID": rid} if rid else None)

    app = web.Application(client_max_size=64 << 20)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
def route_only(tmp_path: Path) -> Iterator[Callable[..., BackgroundRouter]]:
    started: list[BackgroundRouter] = []

    def start(upstream: str, **overrides: Any) -> BackgroundRouter:
        config = SidecarConfig(upstream=upstream, lake_uri=str(tmp_path / "lake"), spool_dir=tmp_path / "spool",
                               model="credit-risk", model_version="4", capture=False, **overrides)  # fmt: skip
        router = BackgroundRouter(config).start()
        started.append(router)
        return router

    yield start
    for router in started:
        router.stop()


def _raw(port: int, data: bytes, *, timeout_s: float = 5.0) -> bytes:
    """Send bytes, read until the router closes the connection (or the timeout), return what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def _one_answer(data: bytes) -> tuple[bytes, bytes]:
    """The body of the first answer in ``data`` (Content-Length framed) and the bytes after it."""
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:])
    return rest[:length], rest[length:]


def test_one_request_id_goes_to_the_model_server_and_back_once() -> None:
    with BackgroundServer(_echo_app) as model, BackgroundServer(stub_model_app) as silent:
        for upstream, echoes in ((model, True), (silent, False)):
            config = SidecarConfig(upstream=upstream.url, lake_uri="unused", spool_dir=Path("/nonexistent-spool"),
                                   model="m", model_version="1", capture=False)  # fmt: skip
            with BackgroundRouter(config) as router, httpx.Client() as client:
                given = client.post(f"{router.url}/invocations", json={"inputs": [{"age": 1}]},
                                    headers={"X-Request-ID": "client-id-1"})  # fmt: skip
                made = client.post(f"{router.url}/invocations", json={"inputs": [{"age": 1}]})
                assert given.status_code == made.status_code == 200
                assert given.headers.get_list("X-Request-ID") == ["client-id-1"]
                assert len(made.headers.get_list("X-Request-ID")) == 1 and len(made.headers["X-Request-ID"]) == 32
                if echoes:  # the model server saw the same ids, and the body and path unchanged
                    seen = made.json()
                    assert seen["headers"]["x-request-id"] == made.headers["X-Request-ID"]
                    assert json.loads(seen["body"]) == {"inputs": [{"age": 1}]} and seen["path"] == "/invocations"
                    assert seen["headers"]["host"] == upstream.url.removeprefix("http://")


def test_chunked_pipelined_head_and_large_answers_pass_intact(route_only) -> None:  # type: ignore[no-untyped-def]
    with BackgroundServer(_echo_app) as model:
        router = route_only(model.url)
        chunked = (b"POST /invocations?x=1 HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")  # fmt: skip
        head = b"HEAD /ping HTTP/1.1\r\nHost: r\r\n\r\n"
        last = b"GET /last HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n"
        answer = _raw(router.port, chunked + head + last)  # three pipelined requests on one connection
        first, rest = _one_answer(answer)
        echoed = json.loads(first)
        assert echoed["body"] == "hello world" and echoed["path"] == "/invocations?x=1"
        assert "transfer-encoding" not in echoed["headers"] and echoed["headers"]["content-length"] == "11"
        head_answer, rest = rest.split(b"\r\n\r\n", 1)  # the HEAD answer: a Content-Length, no body
        assert head_answer.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: " in head_answer
        third, rest = _one_answer(rest)
        assert json.loads(third)["path"] == "/last" and rest == b""  # in order, then closed as asked
        with httpx.Client() as client:
            big = client.get(f"{router.url}/big")
            assert big.status_code == 200 and big.content == b"x" * (4 << 20)
            expect = _raw(router.port, b"POST /e HTTP/1.1\r\nHost: r\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
                          b"Connection: close\r\n\r\nok")  # fmt: skip
            assert expect.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK") and b'"body": "ok"' in expect
            assert (
                metric(client, router.url, "driftloop_sidecar_route_requests_total", 'code="200",route="default"') == 5
            )


@pytest.mark.parametrize(
    ("request_bytes", "status", "named"),
    [
        (b"GARBAGE\r\n\r\n", b"400", b"malformed HTTP request"),
        (b"POST /invocations HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", b"400", b"Content-Length"),
        (
            b"POST /invocations HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"400",
            b"malformed HTTP request",
        ),  # request smuggling: both framings at once
        (b"POST /invocations HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", b"413", b"more than 1048576"),
        (
            b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"100000\r\n"
            + b"a" * 0x100000
            + b"\r\n"
            + b"10\r\n"
            + b"a" * 16
            + b"\r\n0\r\n\r\n",
            b"413",
            b"more than 1048576 bytes",
        ),
        (b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"a" * (70 << 10) + b"\r\n\r\n", b"431", b"request head"),
        (b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", b"400", b"upgrades"),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", b"405", b"answers GET"),
    ],
    ids=["garbage", "bad-length", "smuggling", "huge-length", "huge-chunked", "huge-head", "upgrade", "post-metrics"],
)
def test_bad_requests_get_a_4xx_that_names_the_problem(route_only, request_bytes, status, named, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING)
    with BackgroundServer(_echo_app) as model:
        router = route_only(model.url, max_body_bytes=1 << 20)
        answer = _raw(router.port, request_bytes)
        assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert named.decode() in body["message"] and body["hint"] and body["request_id"]
        with httpx.Client() as client:  # and the router still serves
            assert client.post(f"{router.url}/invocations", content=b"{}").status_code == 200
    # a client's bad request is not the router's error: no traceback in its log (uvloop logs one at ERROR for a
    # protocol callback that raises)
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def test_a_model_server_down_slow_or_broken_gets_502_504_and_the_route_counts_it(route_only) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{unused.getsockname()[1]}"
    down = route_only(dead)
    with httpx.Client() as client:
        answer = client.post(f"{down.url}/invocations", content=b"{}")
        assert answer.status_code == 502 and answer.json()["error_code"] == "UPSTREAM_UNAVAILABLE"
        assert "cannot connect" in answer.json()["message"] and answer.headers["X-Request-ID"]
        assert metric(client, down.url, "driftloop_sidecar_route_requests_total", 'code="502",route="default"') == 1
        with BackgroundServer(lambda: _echo_app(delay_s=2.0)) as slow:
            router = route_only(slow.url, upstream_timeout_s=0.3)
            answer = client.post(f"{router.url}/invocations", content=b"{}")
            assert answer.status_code == 504 and "did not answer" in answer.json()["message"]
            assert metric(client, router.url, "driftloop_sidecar_upstream_errors_total", 'kind="timeout"') == 1
        with _RawServer(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut short") as truncating:
            router = route_only(truncating)
            with pytest.raises(httpx.RemoteProtocolError):  # part of the answer went out: only a close is honest
                client.post(f"{router.url}/invocations", content=b"{}")
        with _RawServer(lambda _: b"HTTP/1.1 200 OK\r\n\r\nthe end is the close") as unframed:
            router = route_only(unframed)
            answer = client.post(f"{router.url}/invocations", content=b"{}")
            assert answer.status_code == 200 and answer.content == b"the end is the close"


def test_beyond_max_inflight_the_router_refuses_fast_and_drains_on_stop(route_only) -> None:  # type: ignore[no-untyped-def]
    with BackgroundServer(lambda: _echo_app(delay_s=1.0)) as slow:
        router = route_only(slow.url, max_inflight=2)
        results: list[int] = []

        def post() -> None:
            with httpx.Client(timeout=10) as client:
                results.append(client.post(f"{router.url}/invocations", content=b"{}").status_code)

        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(0.4)
        with httpx.Client() as client:
            began = time.monotonic()
            refused = client.post(f"{router.url}/invocations", content=b"{}")
            assert refused.status_code == 503 and time.monotonic() - began < 0.5
            assert refused.json()["error_code"] == "SIDECAR_OVERLOADED"
            routing = client.get(f"{router.url}/readyz").json()["routing"]
            assert routing["routes"][0]["inflight"] == 2
        router.stop()  # SIGTERM's path: stop listening, let the two in flight finish
        for thread in threads:
            thread.join()
        assert results == [200, 200]


class _RawServer:
    """A model server that answers every request with fixed bytes and then closes: misbehaviour on demand."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self._answer = answer
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(65536)
                conn.sendall(self._answer(data))

    def __enter__(self) -> str:
        self._thread.start()
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __exit__(self, *_: object) -> None:
        self._sock.close()


def test_connections_are_kept_alive_on_both_sides(route_only) -> None:  # type: ignore[no-untyped-def]
    """A connection per request would double the router's cost and the model server's (it did, once: llhttp forgets
    keep-alive after the message, so it is read from the head)."""
    peers: set[object] = set()

    def counting_app() -> web.Application:
        async def answer(request: web.Request) -> web.Response:
            peers.add(request.transport.get_extra_info("peername") if request.transport else None)
            await request.read()
            return web.json_response({"predictions": [0.5]})

        app = web.Application()
        app.router.add_post("/invocations", answer)
        return app

    with BackgroundServer(counting_app) as model:
        router = route_only(model.url)
        with socket.create_connection(("127.0.0.1", router.port), timeout=5) as sock:
            for n in range(50):  # one client connection, request after request
                sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: r\r\nContent-Length: 2\r\n\r\n{}")
                answer = b""
                while not answer.endswith(b'{"predictions": [0.5]}'):
                    chunk = sock.recv(65536)
                    assert chunk, f"the router closed the client's connection after {n} requests"
                    answer += chunk
        assert len(peers) == 1  # and one upstream connection carried all 50
