"""The sidecar's upstream client against a raw server that answers in every HTTP/1.1 framing."""

from __future__ import annotations

import asyncio

import pytest

from monitors.sidecar._upstream import UpstreamError, UpstreamPool

CANNED = {
    b"/length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nTrailer: x\r\n\r\n",
    b"/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof",
    b"/empty": b"HTTP/1.1 204 No Content\r\n\r\n",
    b"/garbage": b"NOT HTTP AT ALL\r\n\r\n",
}


async def _serve(close_after_each: bool) -> tuple[asyncio.Server, int, list[int]]:
    """A raw HTTP/1.1 server; ``close_after_each`` drops keep-alive connections silently (a stale-socket trap)."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1]
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)  # fmt: skip
                await reader.readexactly(length)
                writer.write(CANNED[path])
                await writer.drain()
                if close_after_each or path == b"/close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


def test_every_framing_is_read_and_keep_alive_is_reused() -> None:
    async def scenario() -> None:
        server, port, connections = await _serve(close_after_each=False)
        pool = UpstreamPool(f"http://127.0.0.1:{port}", limit=4, connect_timeout_s=1, timeout_s=5)
        length = await pool.request("POST", "/length", [("X-Request-ID", "r1")], b"body")
        assert (length.status, length.body) == (200, b"hello")
        assert [v for k, v in length.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
        assert (await pool.request("GET", "/chunked", [], b"")).body == b"hello"
        assert (await pool.request("GET", "/empty", [], b"")).status == 204
        assert len(connections) == 1  # one keep-alive connection served all three
        assert (await pool.request("GET", "/close", [], b"")).body == b"until-eof"
        assert (await pool.request("GET", "/length", [], b"")).body == b"hello"
        assert len(connections) == 2  # 'Connection: close' was honoured
        with pytest.raises(UpstreamError) as error:
            await pool.request("GET", "/garbage", [], b"")
        assert error.value.kind == "protocol"
        await pool.close()
        server.close()

    asyncio.run(scenario())


def test_a_silently_closed_idle_connection_is_retried_once() -> None:
    async def scenario() -> None:
        server, port, connections = await _serve(close_after_each=True)
        pool = UpstreamPool(f"http://127.0.0.1:{port}", limit=4, connect_timeout_s=1, timeout_s=5)
        for _ in range(3):
            assert (await pool.request("POST", "/length", [], b"x")).body == b"hello"
            await asyncio.sleep(0.05)  # let the server's close arrive
        assert len(connections) == 3
        await pool.close()
        server.close()

    asyncio.run(scenario())


def test_unreachable_and_slow_upstreams_are_told_apart() -> None:
    async def scenario() -> None:
        server, port, _ = await _serve(close_after_each=False)
        server.close()
        await server.wait_closed()
        pool = UpstreamPool(f"http://127.0.0.1:{port}", limit=1, connect_timeout_s=1, timeout_s=5)
        with pytest.raises(UpstreamError) as refused:
            await pool.request("GET", "/length", [], b"")
        assert refused.value.kind == "unreachable" and "cannot connect" in str(refused.value)

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # never answers

        mute = await asyncio.start_server(silent, "127.0.0.1", 0)
        slow = UpstreamPool(f"http://127.0.0.1:{mute.sockets[0].getsockname()[1]}", limit=1,
                            connect_timeout_s=1, timeout_s=0.2)  # fmt: skip
        with pytest.raises(UpstreamError) as timed_out:
            await slow.request("GET", "/", [], b"")
        assert timed_out.value.kind == "timeout"
        mute.close()

    asyncio.run(scenario())


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="not an http"):
        UpstreamPool("ftp://example", limit=1, connect_timeout_s=1, timeout_s=1)


def test_after_a_quiet_spell_every_stale_pooled_connection_is_skipped() -> None:
    """The model server (uvicorn) closes keep-alive connections idle for 5 s, so after a pause *every* pooled socket
    is stale: the retry must use a fresh connection, not the next stale one (seen as 502s in `make demo`)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # GETs without a body; close after 0.2 s without a request, like a keep-alive timeout
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.2)
                writer.write(CANNED[b"/length"])
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        pool = UpstreamPool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", limit=4,
                            connect_timeout_s=1, timeout_s=5)  # fmt: skip
        answers = await asyncio.gather(*(pool.request("GET", "/length", [], b"") for _ in range(3)))
        assert [answer.body for answer in answers] == [b"hello"] * 3  # three pooled connections now
        await asyncio.sleep(0.6)  # the server closes all three
        for _ in range(3):
            assert (await pool.request("GET", "/length", [], b"")).body == b"hello"
        await pool.close()
        server.close()

    asyncio.run(scenario())
