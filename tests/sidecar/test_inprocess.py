"""In-process capture: MLflow's real scoring app with the capture middleware under uvicorn, and the shipper.

Losslessness as for the reverse proxy: ``kill -9`` of the scoring process loses nothing answered, a lake outage
loses nothing, the shipper never writes a row twice, and a full spool still answers (drops are counted).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from driftloop.errors import ConflictError
from monitors.lake import read_window
from monitors.payloads import encode_request, parse_predictions
from monitors.sidecar import SidecarMetrics
from monitors.sidecar._spool import Capture, Spool, read_segment
from monitors.sidecar.inprocess import CaptureConfig, CaptureMiddleware
from monitors.sidecar.shipper import Shipper
from tests._support import free_port
from tests.sidecar.conftest import MODEL, wait_until

MODEL_CODE = """
import mlflow
import pandas as pd


class Score(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.Series(model_input["age"].astype(float) / 100.0)


mlflow.models.set_model(Score())
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    directory = tmp_path_factory.mktemp("inprocess")
    code = directory / "score_model.py"
    code.write_text(MODEL_CODE)
    example = pd.DataFrame({"age": [30], "income": [1000.0]})
    path = directory / "model"
    mlflow.pyfunc.save_model(str(path), python_model=str(code), pip_requirements=["mlflow"],
                             signature=infer_signature(example, pd.Series([0.3])))  # fmt: skip
    return path


def _scoring_server(model: Path, spool: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "driftloop", "scoring-server", "--model-uri", str(model), "--listen",
               f"127.0.0.1:{port}", "--spool", str(spool), "--model-version", "4", "--segment-age", "3600"]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT)

    def up() -> bool:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, "the scoring server", timeout_s=120)
    return process


def test_kill_9_and_a_lake_outage_lose_nothing_answered_and_duplicate_nothing(model_dir: Path, tmp_path: Path) -> None:
    port, spool, lake = free_port(), tmp_path / "spool", tmp_path / "lake"
    server = _scoring_server(model_dir, spool, port, tmp_path / "server.log")
    answered: dict[str, float] = {}
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=5) as client:
            n = 0
            while not stop.is_set():
                body = encode_request([{"age": n % 90, "income": 2.5 * n}], ["age", "income"])
                try:
                    reply = client.post(f"http://127.0.0.1:{port}/invocations", content=body,
                                        headers={"Content-Type": "application/json"})  # fmt: skip
                except httpx.HTTPError:
                    return  # killed under us: never answered
                assert reply.status_code == 200, reply.text
                answered[reply.headers["X-Request-ID"]] = parse_predictions(reply.content)[0]  # type: ignore[assignment]
                n += 1

    loader = threading.Thread(target=load)
    loader.start()
    try:
        wait_until(lambda: len(answered) >= 40, "40 answered requests", timeout_s=60)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    finally:
        stop.set()
        loader.join(timeout=30)
    assert list(spool.glob("*.open")) and not list(spool.glob("*.seg"))  # all of it only in the open segment

    lake.write_text("the lake is down")  # unwritable even for root: its root is a file
    shipper = Shipper(spool, str(lake), MODEL, poll_s=0.05, max_backoff_s=0.1)
    try:
        with pytest.raises(OSError):
            shipper.ship_pending()  # sealed the orphan (no writer holds the spool), could not write it
        assert len(list(spool.glob("*.seg"))) == 1 and shipper.shipped_rows == 0
        lake.unlink()  # the lake is back
        shipper.ship_pending()
        assert shipper.ship_pending() == []  # nothing left, and nothing shipped twice
    finally:
        shipper.close()
    frame = read_window(str(lake), MODEL).frame
    assert not frame["_request_id"].duplicated().any()
    assert set(answered) <= set(frame["_request_id"])  # every answered request; at most one more in flight
    assert len(frame) - len(answered) <= 1
    rows = frame.set_index("_request_id").loc[list(answered)]
    assert rows["_prediction"].tolist() == pytest.approx(list(answered.values()))
    assert (rows["_model_version"] == "4").all() and (rows["_status"] == 200).all()


async def _app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """A minimal ASGI model server: echoes the body's length, 400 on an empty body."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    status = 200 if body else 400
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"predictions": [', "more_body": True})
    await send({"type": "http.response.body", "body": str(len(body)).encode() + b"]}"})


def test_middleware_spools_the_pair_before_answering_and_answers_when_full(tmp_path: Path) -> None:
    metrics = SidecarMetrics()
    spool = Spool(tmp_path / "spool", metrics, max_bytes=700, segment_bytes=1 << 20, segment_age_s=3600)
    config = CaptureConfig(spool_dir=tmp_path / "spool", model_version="9", max_capture_bytes=300)
    middleware = CaptureMiddleware(_app, spool, config)

    async def requests() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://s") as client:
            sent = [await client.post("/invocations", content=b'{"inputs": [1]}', headers={"X-Request-ID": "r-1"})]
            sent.append(await client.post("/invocations", content=b""))
            sent.append(await client.post("/ping", content=b"not captured"))
            sent.append(await client.post("/invocations", content=b"x" * 400))
            return sent + [await client.post("/invocations", content=b'{"inputs": [2]}') for _ in range(6)]

    try:
        first, bad, other, huge, *answers = asyncio.run(requests())
        assert first.headers["x-request-id"] == "r-1" and first.json() == {"predictions": [15]}
        assert bad.status_code == 400 and len(bad.headers["x-request-id"]) == 32  # generated when absent
        assert other.status_code == huge.status_code == 200
        assert all(answer.status_code == 200 for answer in answers)  # a full spool never refuses a request
        spool.seal_if_older_than(0.0)
        captures = [capture for segment in spool.sealed() for capture in read_segment(segment)[0]]
    finally:
        spool.close()
    assert [c.request_id for c in captures[:2]] == ["r-1", bad.headers["x-request-id"]]
    assert captures[0].request == b'{"inputs": [1]}' and captures[0].response == b'{"predictions": [15]}'
    assert (captures[0].status, captures[1].status, captures[0].model_version) == (200, 400, "9")
    assert 2 < len(captures) < 8  # the spool filled up: later pairs were dropped, not the requests
    assert metrics.dropped.labels(reason="body_too_large")._value.get() == 1
    assert metrics.dropped.labels(reason="spool_full")._value.get() == 8 - len(captures)


def test_one_shipper_per_spool_and_a_live_writers_open_segment_is_left_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", SidecarMetrics(), max_bytes=1 << 20, segment_bytes=1 << 20, segment_age_s=3600)
    shipper = Shipper(tmp_path / "spool", str(tmp_path / "lake"), MODEL)
    try:
        with pytest.raises(ConflictError, match="already shipped"):
            Shipper(tmp_path / "spool", str(tmp_path / "lake"), MODEL)
        spool.append(Capture("r-1", 1.0, "1", 200, 1.0, "application/json", b'{"inputs": [1]}', b"[0.5]"))
        assert shipper.seal_orphans() == 0 and shipper.ship_pending() == []  # the writer is alive: not an orphan
        spool.seal_if_older_than(0.0)
        assert [w.rows for w in shipper.ship_pending()] == [1] and not spool.sealed()
    finally:
        shipper.close()
        spool.close()
