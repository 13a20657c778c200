"""Durability: SIGKILL loses nothing already answered, and replay after a crash never duplicates."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from driftloop.errors import ConflictError
from monitors.lake import read_window
from monitors.payloads import encode_request
from monitors.sidecar import SidecarMetrics
from monitors.sidecar._spool import Capture, Spool
from monitors.sidecar._writer import LakeWriter
from tests._support import free_port
from tests.sidecar.conftest import MODEL, wait_until


def _start_sidecar(upstream_url: str, tmp_path: Path, port: int, segment_age: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "driftloop", "sidecar", "--listen", f"127.0.0.1:{port}", "--upstream", upstream_url,
        "--lake", str(tmp_path / "lake"), "--spool", str(tmp_path / "spool"), "--model", MODEL,
        "--model-version", "3", "--segment-age", segment_age,
    ]  # fmt: skip
    log = (tmp_path / "sidecar.log").open("ab")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/healthz"

    def healthy() -> bool:
        assert process.poll() is None, (tmp_path / "sidecar.log").read_text()
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, "the sidecar to come up", timeout_s=60)
    return process


def test_sigkill_loses_nothing_answered_and_replay_duplicates_nothing(upstream, tmp_path: Path) -> None:
    port = free_port()
    sidecar = _start_sidecar(upstream.url, tmp_path, port, segment_age="3600")  # nothing leaves the spool
    answered: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=5) as client:
            n = 0
            while not stop.is_set():
                body = encode_request([{"age": n, "income": 2.5 * n}], ["age", "income"])
                try:
                    reply = client.post(f"http://127.0.0.1:{port}/invocations", content=body)
                except httpx.HTTPError:
                    return  # the sidecar died under us: this one was never answered
                if reply.status_code == 200:
                    answered.append(reply.headers["X-Request-ID"])
                n += 1

    loader = threading.Thread(target=load)
    loader.start()
    try:
        wait_until(lambda: len(answered) >= 40, "40 answered requests")
        os.kill(sidecar.pid, signal.SIGKILL)
        sidecar.wait(timeout=30)
    finally:
        stop.set()
        loader.join(timeout=30)
    assert read_window(str(tmp_path / "lake"), MODEL).frame.empty  # everything was only in the spool

    restarted = _start_sidecar(upstream.url, tmp_path, port, segment_age="0.2")
    try:
        lake = str(tmp_path / "lake")
        wait_until(lambda: set(answered) <= set(read_window(lake, MODEL).frame["_request_id"]), "replay", 60)
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=60) == 0
    frame = read_window(lake, MODEL).frame
    assert not frame["_request_id"].duplicated().any()
    assert not list((tmp_path / "spool").glob("*.seg")) and not list((tmp_path / "spool").glob("*.open"))


def _capture(n: int) -> Capture:
    body = encode_request([{"x": n}], ["x"])
    return Capture(f"id-{n}", 1_700_000_000.0 + n, "1", 200, 1.0, "application/json", body, b'{"predictions": [0.5]}')


def test_crash_between_lake_write_and_segment_delete_replays_idempotently(tmp_path: Path) -> None:
    metrics = SidecarMetrics()
    spool = Spool(tmp_path / "spool", metrics, max_bytes=1 << 20, segment_bytes=300, segment_age_s=60)
    for n in range(10):
        assert spool.append(_capture(n))
    spool.seal_if_older_than(0.0)
    segments = spool.sealed()
    assert len(segments) > 1  # segment_bytes forced several segments
    kept = tmp_path / "kept"
    kept.mkdir()
    for segment in segments:
        shutil.copy(segment, kept / segment.name)
    writer = LakeWriter(spool, str(tmp_path / "lake"), MODEL, metrics)
    assert writer.write_pending() == len(segments)
    for copy in kept.iterdir():  # "the process died before deleting them"
        shutil.copy(copy, spool.directory / copy.name)
    spool.close()
    reopened = Spool(tmp_path / "spool", SidecarMetrics(), max_bytes=1 << 20, segment_bytes=300, segment_age_s=60)
    assert LakeWriter(reopened, str(tmp_path / "lake"), MODEL, metrics).write_pending() == len(segments)
    frame = read_window(str(tmp_path / "lake"), MODEL).frame
    assert sorted(frame["_request_id"]) == sorted(f"id-{n}" for n in range(10))
    reopened.close()


def test_torn_tail_is_counted_and_the_rest_is_kept(tmp_path: Path) -> None:
    metrics = SidecarMetrics()
    spool = Spool(tmp_path / "spool", metrics, max_bytes=1 << 20, segment_bytes=1 << 20, segment_age_s=60)
    for n in range(3):
        spool.append(_capture(n))
    spool.close()
    (segment,) = (tmp_path / "spool").glob("*.seg")
    with segment.open("ab") as handle:
        handle.write(_capture(99).encode()[:-5])  # power loss in the middle of a write
    reopened = Spool(tmp_path / "spool", metrics, max_bytes=1 << 20, segment_bytes=1 << 20, segment_age_s=60)
    LakeWriter(reopened, str(tmp_path / "lake"), MODEL, metrics).write_pending()
    assert read_window(str(tmp_path / "lake"), MODEL).frame["_request_id"].tolist() == ["id-0", "id-1", "id-2"]
    assert metrics.registry.get_sample_value("driftloop_sidecar_dropped_total", {"reason": "torn_frame"}) == 1
    reopened.close()


def test_a_spool_has_one_owner(tmp_path: Path) -> None:
    first = Spool(tmp_path / "spool", SidecarMetrics(), max_bytes=1024, segment_bytes=1024, segment_age_s=1)
    with pytest.raises(ConflictError, match="in use by another sidecar"):
        Spool(tmp_path / "spool", SidecarMetrics(), max_bytes=1024, segment_bytes=1024, segment_age_s=1)
    first.close()
