"""The engine's HTTP front under pressure: a capped number of request threads (503 past it, fast) and clients
that hang up mid-request or mid-answer (one quiet log line each, no traceback), against a real ``engine serve``."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from tests.engine_api.conftest import NAMESPACE, EngineProcess
from workflows.engine.server import MAX_REQUEST_THREADS
from workflows.engine.store import WORKFLOW, Store


def _connect(engine: EngineProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", engine.port), timeout=5)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a client killed mid-transfer does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.fixture
def idle_clients(shared_engine: EngineProcess) -> Iterator[list[socket.socket]]:
    clients: list[socket.socket] = []
    yield clients
    for client in clients:
        client.close()


def test_request_threads_are_capped_and_the_overflow_gets_a_fast_503(
    shared_engine: EngineProcess, idle_clients: list[socket.socket]
) -> None:
    engine = shared_engine
    for _ in range(MAX_REQUEST_THREADS):  # each holds a thread: it sent half a request line and waits
        client = _connect(engine)
        client.sendall(b"GET /api/v1/vers")
        idle_clients.append(client)
    time.sleep(0.3)  # let the server accept them all
    assert engine.http.get(engine.url + "/api/v1/version", timeout=5).status_code == 503
    asked = time.monotonic()
    answer = engine.http.get(engine.url + "/api/v1/version", timeout=5)
    assert answer.status_code == 503, answer.text
    assert time.monotonic() - asked < 1.0, "a refusal must not wait for a slot"
    assert "retry" in answer.json()["message"] and answer.headers["Retry-After"] == "1"
    for client in idle_clients:
        client.close()
    idle_clients.clear()
    deadline = time.monotonic() + 5
    while (status := engine.http.get(engine.url + "/api/v1/version", timeout=5).status_code) != 200:
        assert time.monotonic() < deadline, f"the slots never came back (last status {status})"
        time.sleep(0.05)


def test_a_client_that_hangs_up_is_one_quiet_log_line(shared_engine: EngineProcess) -> None:
    engine = shared_engine
    bulky = {  # stored beside the engine (the store is safe across processes): a 250 KB list answer, no run
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": WORKFLOW,
        "metadata": {"name": "hang-up", "namespace": NAMESPACE, "annotations": {"bulk": "x" * 250_000}},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "suspend": {}}]},
        "status": {"phase": "Succeeded", "nodes": {}},
    }
    store = Store.open(engine.home)
    try:
        store.create(bulky)
    finally:
        store.close()
    log_start = engine.log.stat().st_size
    auth = f"Authorization: Bearer {engine.token}\r\n".encode() if engine.token else b""
    for _ in range(3):
        mid_request = _connect(engine)  # hangs up in the middle of its request line
        mid_request.sendall(b"GET /api/v1/workflows/")
        _reset(mid_request)
        mid_answer = socket.socket()  # asks for the list, reads a little of it, and hangs up
        mid_answer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        mid_answer.settimeout(5)
        mid_answer.connect(("127.0.0.1", engine.port))
        mid_answer.sendall(
            f"GET /api/v1/workflows/{NAMESPACE} HTTP/1.0\r\nHost: 127.0.0.1\r\n".encode() + auth + b"\r\n"
        )
        assert mid_answer.recv(100).startswith(b"HTTP/1.0 200")
        time.sleep(0.1)  # the server is blocked writing into the full window now
        _reset(mid_answer)
    time.sleep(0.3)
    assert engine.http.get(engine.url + "/api/v1/version", timeout=5).status_code == 200
    log = engine.log.read_text()[log_start:]
    assert "Traceback" not in log and "Exception occurred during processing" not in log, log[-3000:]
