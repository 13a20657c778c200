"""Load shedding of the in-process scoring server: beyond ``max_inflight`` a fast 503, never a queue without bound.

MLflow's scoring app queues every request on its thread pool, so past its ceiling answers come later and later until
clients time out. The capture middleware admits ``max_inflight`` scoring requests; the next is answered at once
with a 503 that says what to do, counted but neither timed (the canary's p99 is the model's) nor captured (no
prediction was made), on a keep-alive connection that stays usable. Served here by real uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from monitors.sidecar import SidecarMetrics
from monitors.sidecar._spool import Spool, read_segment
from monitors.sidecar.inprocess import CaptureConfig, CaptureMiddleware
from tests._support import free_port
from tests.sidecar.conftest import wait_until


class _GatedModel:
    """An ASGI scoring app whose predictions wait until the test opens the gate (a model busy on its thread pool)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.waiting = 0
        self.threads: set[str] = set()

    def _predict(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.gate.wait(30)

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        while (await receive()).get("more_body"):
            pass
        if scope["path"] == "/ping":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        self.waiting += 1
        await asyncio.to_thread(self._predict)
        self.waiting -= 1
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"predictions": [0.5]}'})


def test_beyond_max_inflight_a_fast_503_that_is_counted_not_timed_not_captured(tmp_path: Path) -> None:
    model, metrics = _GatedModel(), SidecarMetrics()
    spool = Spool(tmp_path / "spool", metrics, max_bytes=1 << 20, segment_bytes=1 << 20, segment_age_s=3600)
    app = CaptureMiddleware(model, spool, CaptureConfig(spool_dir=tmp_path / "spool", max_inflight=2))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    body = b'{"dataframe_split": {"columns": ["age"], "data": [[30]]}}'
    try:
        wait_until(lambda: _answers(f"{url}/ping"), "uvicorn", timeout_s=30)
        with httpx.Client(base_url=url, timeout=10) as first, httpx.Client(base_url=url, timeout=10) as client:
            admitted = [threading.Thread(target=first.post, args=("/invocations",), kwargs={"content": body})]
            admitted.append(threading.Thread(target=httpx.post, args=(f"{url}/invocations",), kwargs={"content": body}))
            for request in admitted:
                request.start()
            wait_until(lambda: model.waiting == 2, "two predictions in flight", timeout_s=10)
            started = time.perf_counter()
            shed = client.post("/invocations", content=body)
            shed_s = time.perf_counter() - started
            assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
            assert shed.json()["error_code"] == "SERVER_OVERLOADED" and "--max-inflight" in shed.json()["hint"]
            assert shed_s < 1.0  # answered at once, while both admitted predictions still wait
            assert client.get("/ping").status_code == 200  # probes pass while scoring is full
            model.gate.set()
            for request in admitted:
                request.join(timeout=10)
            again = client.post("/invocations", content=body)  # the same keep-alive connection, room again
            assert again.status_code == 200 and again.json() == {"predictions": [0.5]}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    spool.seal_if_older_than(0.0)
    captures = [capture for segment in spool.sealed() for capture in read_segment(segment)[0]]
    spool.close()
    assert {name.rsplit("_", 1)[0] for name in model.threads} == {"predict"}  # the bounded pool, not the loop's
    assert sorted(capture.status for capture in captures) == [200, 200, 200]  # the 503 made no prediction
    assert metrics.requests.labels(code="503")._value.get() == 1
    assert metrics.requests.labels(code="200")._value.get() == 3
    histogram = {s.name: s.value for family in metrics.upstream_latency.collect() for s in family.samples}
    assert histogram["driftloop_sidecar_upstream_latency_seconds_count"] == 3  # the 503 is not timed


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
