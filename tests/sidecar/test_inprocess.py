"""In-process capture: MLflow's real scoring app with the capture middleware under uvicorn, and the shipper.

Losslessness as for the reverse proxy: ``kill -9`` of the scoring process loses nothing answered, a lake outage
loses nothing, the shipper never writes a row twice, and a full spool still answers (drops are counted). The pod's
pair (scoring server + shipper, as in manifests/serving/base/rollout.yaml) exports the proxy's series the canary
analysis reads, stamps the pin's version, and a SIGTERM to both at once (a pod stopping) still ships everything.
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
from tests.sidecar.conftest import MODEL, metric, wait_until
from workflows.gitops.pin import ModelPin

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


def _scoring_server(model: Path, spool: Path, port: int, log: Path, *options: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "driftloop", "scoring-server", "--model-uri", str(model), "--listen",
               f"127.0.0.1:{port}", "--spool", str(spool), *options]  # fmt: skip
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
    server = _scoring_server(model_dir, spool, port, tmp_path / "server.log", "--model-version", "4",
                             "--segment-age", "3600")  # fmt: skip
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


def test_the_pods_pair_exports_the_proxy_series_stamps_the_pin_and_ships_everything_on_sigterm(
    model_dir: Path, tmp_path: Path
) -> None:
    """As in the Rollout: scoring-server --pin + ship --pin --metrics-listen on one spool, then both SIGTERMed."""
    port, ship_port, spool, lake = free_port(), free_port(), tmp_path / "spool", tmp_path / "lake"
    pin = tmp_path / "model-pin.yaml"  # another model name than the settings' default: the lake partition follows it
    pin.write_text(ModelPin("staging", "pinned-risk", "12", "run-1", "models:/pinned-risk/12", "0" * 64, "fp",
                            "snap-1", "abc123").to_yaml())  # fmt: skip
    server = _scoring_server(model_dir, spool, port, tmp_path / "server.log", "--pin", str(pin), "--segment-age", "2")
    ship_log = tmp_path / "ship.log"
    shipper = subprocess.Popen(
        [sys.executable, "-m", "driftloop", "ship", "--spool", str(spool), "--lake", str(lake), "--pin", str(pin),
         "--metrics-listen", f"127.0.0.1:{ship_port}", "--poll", "0.05", "--drain-timeout", "30"],
        stdout=ship_log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base, ship = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ship_port}"
    json_type = {"Content-Type": "application/json"}
    ids: list[str] = []
    try:
        with httpx.Client(timeout=10) as client:

            def score(record: dict[str, object], expected: int) -> None:
                reply = client.post(f"{base}/invocations", content=encode_request([record], list(record)),
                                    headers=json_type)  # fmt: skip
                assert reply.status_code == expected, reply.text
                ids.append(reply.headers["X-Request-ID"])

            for n in range(5):
                score({"age": 30 + n, "income": 1.0}, 200)
            score({"nope": 1}, 400)  # MLflow enforces the signature; still answered, counted and captured
            for path in ("/ping", "/health", "/ping"):  # MLflow's own, untouched, and not counted as scoring traffic
                assert client.get(base + path).status_code == 200
            assert metric(client, base, "driftloop_sidecar_requests_total", 'code="200"') == 5
            assert metric(client, base, "driftloop_sidecar_requests_total", 'code="400"') == 1
            assert metric(client, base, "driftloop_sidecar_requests_total", 'code="500"') == 0  # cached, exported
            assert metric(client, base, "driftloop_sidecar_upstream_latency_seconds_count") == 6
            assert 0 < metric(client, base, "driftloop_sidecar_upstream_latency_seconds_sum") < 60
            assert metric(client, base, "driftloop_sidecar_upstream_latency_seconds_bucket", 'le="+Inf"') == 6
            assert metric(client, base, "driftloop_sidecar_captured_total") == 6
            assert client.get(f"{base}/metrics").headers["content-type"].startswith("text/plain")

            def shipped() -> float:
                try:
                    return metric(client, ship, "driftloop_sidecar_lake_rows_total")
                except httpx.HTTPError:
                    assert shipper.poll() is None, ship_log.read_text()[-3000:]
                    return 0.0

            wait_until(lambda: shipped() == 6, "the shipper's /metrics to count 6 lake rows", timeout_s=60)
            assert metric(client, ship, "driftloop_sidecar_lake_write_errors_total") == 0
            assert metric(client, ship, "driftloop_sidecar_lake_write_seconds_count") >= 1
            assert "driftloop_sidecar_requests_total" not in client.get(f"{ship}/metrics").text  # no double count
            for n in range(3):  # still in the open segment (2 s) when the pod stops
                score({"age": 50 + n, "income": 2.0}, 200)
            assert list(spool.glob("*.open"))
        server.send_signal(signal.SIGTERM)  # the kubelet signals both containers at once
        shipper.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        assert shipper.wait(timeout=60) == 0, ship_log.read_text()[-3000:]
    finally:
        for process in (server, shipper):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    assert not list(spool.glob("*.open")) and not list(spool.glob("*.seg")), ship_log.read_text()[-3000:]
    frame = read_window(str(lake), "pinned-risk").frame
    assert sorted(frame["_request_id"]) == sorted(ids)  # all nine, once each, under the pin's model name
    assert set(frame["_model_version"]) == {"12"}
    assert sorted(frame["_status"]) == [200] * 8 + [400]


async def _flaky(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """/invocations answering 503 on ``/invocations?busy``, raising on ``?crash``, else 200."""
    while (await receive()).get("more_body"):
        pass
    if scope["query_string"] == b"crash":
        raise RuntimeError("the model blew up")
    status = 503 if scope["query_string"] == b"busy" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"[1]"})


def test_middleware_counts_every_code_and_crash_and_answers_metrics_itself(tmp_path: Path) -> None:
    metrics = SidecarMetrics()
    spool = Spool(tmp_path / "spool", metrics, max_bytes=1 << 20, segment_bytes=1 << 20, segment_age_s=3600)
    middleware = CaptureMiddleware(_flaky, spool, CaptureConfig(spool_dir=tmp_path / "spool"))
    transport = httpx.ASGITransport(app=middleware, raise_app_exceptions=False)

    async def requests() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            for query in ("", "", "?busy", "?crash", "?busy"):
                await client.post("/invocations" + query, content=b'{"inputs": [1]}')
            await client.post("/other", content=b"passes through, not counted")
            return await client.get("/metrics"), await client.head("/metrics"), await client.post("/metrics")

    try:
        scraped, head, posted = asyncio.run(requests())
    finally:
        spool.close()
    requests_total = {code: metrics.requests.labels(code=code)._value.get() for code in ("200", "503", "500")}
    assert requests_total == {"200": 2, "503": 2, "500": 1}  # a rarer code is counted too; the crash as a 500
    assert 'driftloop_sidecar_requests_total{code="503"} 2.0' in scraped.text
    assert "driftloop_sidecar_upstream_latency_seconds_count 5.0" in scraped.text
    assert 'driftloop_sidecar_dropped_total{reason="spool_full"} 0.0' in scraped.text
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    assert posted.status_code == 200 and posted.content == b"[1]"  # only GET/HEAD are the middleware's


def test_drain_waits_for_the_scoring_process_to_seal_and_release_then_ships_the_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", SidecarMetrics(), max_bytes=1 << 20, segment_bytes=1 << 20, segment_age_s=3600)
    shipper = Shipper(tmp_path / "spool", str(tmp_path / "lake"), MODEL, poll_s=0.02)
    closed = threading.Event()

    def scoring_process_exits() -> None:
        spool.close()  # seals the open segment and releases the spool's flock
        closed.set()

    closer = threading.Timer(0.3, scoring_process_exits)
    try:
        spool.append(Capture("r-1", 1.0, "1", 200, 1.0, "application/json", b'{"inputs": [1]}', b"[0.5]"))
        assert shipper.drain(0.2) is False  # the writer is alive: its open segment is not an orphan
        closer.start()  # the scoring process exits a little later
        assert shipper.drain(30) is True
    finally:
        if closer.is_alive():
            closer.join()
        shipper.close()
        if not closed.is_set():  # never twice: its fd number may belong to someone else by now
            spool.close()
    assert not list((tmp_path / "spool").glob("*.open")) and not list((tmp_path / "spool").glob("*.seg"))
    assert read_window(str(tmp_path / "lake"), MODEL).frame["_request_id"].tolist() == ["r-1"]
    assert shipper.metrics.lake_rows._value.get() == 1


def _children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (from /proc: no psutil)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(proc.name))
    return found


def _score_n(port: int, n: int) -> set[str]:
    ids = set()
    with httpx.Client(timeout=10) as client:
        for i in range(n):
            body = encode_request([{"age": i, "income": 1.0}], ["age", "income"])
            reply = client.post(f"http://127.0.0.1:{port}/invocations", content=body,
                                headers={"Content-Type": "application/json"})  # fmt: skip
            assert reply.status_code == 200, reply.text
            ids.add(reply.headers["X-Request-ID"])
    return ids


def _lake_ids(lake: Path) -> list[str]:
    return read_window(str(lake), MODEL).frame["_request_id"].tolist() if lake.exists() else []


def test_ship_flag_runs_a_supervised_shipper_that_drains_after_sigterm_or_kill_9(model_dir: Path, tmp_path: Path) -> None:
    """`scoring-server --ship` (the stack and the deployer, where no kubelet runs the pod's second container): its
    shipper child is restarted when it dies, a SIGTERM to the group ships the last segment before both exit, and
    after a `kill -9` of the server the orphaned shipper seals and ships the open segment, then exits."""
    lake = tmp_path / "lake"
    ship = ("--ship", "--lake", str(lake), "--model", MODEL, "--model-version", "7")
    port, spool = free_port(), tmp_path / "spool-term"
    server = subprocess.Popen(  # its own group, as the deployer starts it: one kill -TERM -pgid reaches both
        [sys.executable, "-m", "driftloop", "scoring-server", "--model-uri", str(model_dir), "--listen",
         f"127.0.0.1:{port}", "--spool", str(spool), "--segment-age", "3600", *ship],
        stdout=(tmp_path / "term.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: _ping(port), "the scoring server", timeout_s=120)
        (first_shipper,) = wait_until(lambda: _children(server.pid), "its shipper child", timeout_s=30)
        assert _shipper_restarts(port) == 0.0
        os.kill(first_shipper, signal.SIGKILL)  # the shipper dies: the server restarts it
        wait_until(lambda: (c := _children(server.pid)) and c != [first_shipper], "a new shipper", timeout_s=30)
        assert _shipper_restarts(port) == 1.0  # counted where an operator looks (no kubelet counts it here)
        sent = _score_n(port, 25)
        os.killpg(server.pid, signal.SIGTERM)  # the pod's SIGTERM: server and shipper at once
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    assert sorted(_lake_ids(lake)) == sorted(sent)  # the segment sealed at exit (age 3600 s) reached the lake
    assert not list(spool.glob("*.seg")) and not list(spool.glob("*.open"))

    port, spool = free_port(), tmp_path / "spool-kill"
    server = _scoring_server(model_dir, spool, port, tmp_path / "kill.log", "--segment-age", "3600", *ship)
    (shipper,) = wait_until(lambda: _children(server.pid), "its shipper child", timeout_s=30)
    more = _score_n(port, 15)
    os.kill(server.pid, signal.SIGKILL)
    server.wait(timeout=30)
    wait_until(lambda: not Path(f"/proc/{shipper}").exists() or b"Z" in _state(shipper), "the orphaned shipper "
               "to drain and exit", timeout_s=60)  # fmt: skip
    ids = _lake_ids(lake)
    assert sorted(ids) == sorted(sent | more) and len(ids) == len(set(ids))  # once each, nothing lost


def _shipper_restarts(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    (line,) = [line for line in text.splitlines() if line.startswith("driftloop_sidecar_shipper_restarts_total ")]
    return float(line.split()[1])


def _ping(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return b"Z"
