"""Ground-truth feedback: ``POST /feedback`` on the real receiver and ``driftloop feedback``, the outcome store's
counting (duplicate, late, unknown, malformed: never double-counted), and a SIGKILL mid-ingest that loses nothing
and counts nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from monitors.feedback._store import FeedbackStore, OutcomeRow
from monitors.lake import LakeRow, write_rows
from tests._support import driftloop, free_port
from tests.receiver.conftest import MODEL, TOKEN, Proc


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    home = tmp_path_factory.mktemp("feedback") / "home"
    home.mkdir()
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "DRIFTLOOP_HOME": str(home), "DRIFTLOOP_TRIGGER_URL": url, "DRIFTLOOP_TRIGGER_TOKEN": TOKEN,
           "DRIFTLOOP_MODEL_NAME": MODEL, "DRIFTLOOP_ARGO_SERVER": f"http://127.0.0.1:{free_port()}",
           "DRIFTLOOP_FEEDBACK_MAX_ROWS": "50", "DRIFTLOOP_FEEDBACK_LATE_AFTER": "3600"}  # fmt: skip
    captured = datetime.now(UTC)
    rows = [LakeRow(f"req-{i}", captured, "1", 200, 1.0, inputs={"age": 30}, prediction=0.2) for i in range(10)]
    write_rows(str(home / "lake"), MODEL, rows, "seed")
    process = Proc(["trigger", "serve"], env, url + "/healthz", home / "trigger.log")
    process.start()
    try:
        yield url, env, home
    finally:
        process.stop()


def _post(url: str, body: Any, *, token: str = TOKEN, key: str | None = None, raw: bytes | None = None,
          content_type: str = "application/json") -> httpx.Response:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    if key:
        headers["Idempotency-Key"] = key
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(url + "/feedback", content=content, headers=headers, timeout=30)


def _counters(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    out = {}
    for line in text.splitlines():
        if line.startswith("driftloop_feedback_outcomes_total{"):
            name = line.split('result="')[1].split('"')[0]
            out[name] = float(line.rsplit(" ", 1)[1])
    return out


def test_outcomes_are_stored_once_and_every_result_is_counted(receiver: tuple[str, dict[str, str], Path]) -> None:
    url, _, _ = receiver
    now = datetime.now(UTC)
    before = _counters(url)
    body = [
        {"request_id": "req-1", "outcome": 1, "observed_at": _iso(now)},
        {"request_id": "req-2", "outcome": 0, "observed_at": now.timestamp()},
        {"request_id": "req-2", "outcome": 1, "observed_at": _iso(now)},  # duplicate in the same batch: first wins
        {"request_id": "req-3", "outcome": True, "observed_at": _iso(now - timedelta(hours=3))},  # late
        {"request_id": "never-served", "outcome": 0, "observed_at": _iso(now)},  # unknown id: stored, counted
        {"request_id": "req-4", "outcome": 2, "observed_at": _iso(now)},  # malformed
        {"request_id": "req-5", "outcome": 1},  # malformed: no observed_at
        {"request_id": "req-6", "outcome": 1, "observed_at": _iso(now + timedelta(days=1))},  # future: malformed
    ]
    answer = _post(url, body)
    assert answer.status_code == 200, answer.text
    counts = answer.json()["counts"]
    assert counts == {"accepted": 4, "duplicate": 1, "late": 1, "unknown": 1, "malformed": 3}
    problems = {p["index"]: p["error"] for p in answer.json()["problems"]}
    assert "outcome must be 0 or 1" in problems[5] and "observed_at" in problems[6] and "future" in problems[7]
    again = _post(url, body[:2]).json()["counts"]  # re-sent without a key: duplicates, not new outcomes
    assert again["accepted"] == 0 and again["duplicate"] == 2
    after = _counters(url)
    assert {k: after[k] - before.get(k, 0) for k in after} == {
        "accepted": 4, "duplicate": 3, "late": 1, "unknown": 1, "malformed": 3}  # fmt: skip
    stored = FeedbackStore(receiver[2] / "feedback" / "outcomes.db").outcomes_for(["req-2"])
    assert stored["outcome"].tolist() == [0]


def test_a_batch_resent_with_its_idempotency_key_counts_nothing_twice(
    receiver: tuple[str, dict[str, str], Path],
) -> None:
    url, _, _ = receiver
    body = [{"request_id": f"req-{i}", "outcome": i % 2, "row": 1, "observed_at": time.time()} for i in range(5)]
    first = _post(url, body, key="batch-7")
    before = _counters(url)
    second = _post(url, body, key="batch-7")
    assert first.json()["counts"]["accepted"] == 5 and second.json()["replayed"] is True
    assert second.json()["counts"] == first.json()["counts"] and _counters(url) == before


@pytest.mark.parametrize(
    ("kwargs", "status", "named"),
    [
        ({"body": {"rows": []}}, 422, "JSON list of outcomes"),
        ({"body": None, "raw": b"{not json"}, 422, "not valid UTF-8 JSON"),
        ({"body": None, "raw": b"\xff\xfe"}, 422, "not valid UTF-8 JSON"),
        ({"body": [{"request_id": "x", "outcome": 1, "observed_at": 1}] * 51}, 422, "at most 50"),
        ({"body": [], "key": "bad key!"}, 422, "Idempotency-Key"),
        ({"body": [], "content_type": "text/plain"}, 415, "application/json"),
        ({"body": [], "token": "wrong"}, 401, "token"),
        ({"body": None, "raw": b"[" + b" " * (1024 * 1024 + 10) + b"]"}, 413, "body over"),
    ],
)
def test_bad_requests_are_refused_naming_the_problem_never_5xx(
    receiver: tuple[str, dict[str, str], Path], kwargs: dict[str, Any], status: int, named: str
) -> None:
    url, _, _ = receiver
    before = _counters(url)
    answer = _post(url, **kwargs)
    assert answer.status_code == status and named in answer.json()["error"], answer.text
    assert _counters(url) == before


def test_driftloop_feedback_posts_a_parquet_file_idempotently(
    receiver: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    url, env, _ = receiver
    now = pd.Timestamp.now(tz="UTC")
    frame = pd.DataFrame({"request_id": [f"req-{i}" for i in range(7, 10)], "outcome": [1, 0, 1],
                          "observed_at": [now] * 3, "row": [0, 0, 0]})  # fmt: skip
    frame.to_parquet(tmp_path / "outcomes.parquet")
    first = driftloop(env, "feedback", "--file", str(tmp_path / "outcomes.parquet"), timeout=120)
    assert first.returncode == 0 and "3 accepted" in first.stdout, first.stdout + first.stderr
    second = driftloop(env, "feedback", "--file", str(tmp_path / "outcomes.parquet"), timeout=120)
    assert second.returncode == 0 and "3 accepted" in second.stdout  # the same batch: replayed, not re-counted
    assert _counters(url)["accepted"] >= 3
    frame.drop(columns=["observed_at"]).to_parquet(tmp_path / "bad.parquet")
    bad = driftloop(env, "feedback", "--file", str(tmp_path / "bad.parquet"), timeout=120)
    assert bad.returncode != 0 and "observed_at" in bad.stderr


_CHILD = """
import sys, time
from pathlib import Path
from monitors.feedback._store import FeedbackStore, OutcomeRow
store = FeedbackStore(Path(sys.argv[1]))
for batch in range(int(sys.argv[2])):
    rows = [OutcomeRow(f"r{batch}-{i}", i % 2, time.time()) for i in range(200)]
    store.ingest(rows, key=f"b{batch}")
    print(batch, flush=True)
"""


def test_a_crash_mid_ingest_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    """A writer SIGKILLed while ingesting batches; then every batch is re-sent (what a client that got no answer
    does). Before and after the re-send, the durable counts equal the rows stored: a batch is all in or all out."""
    path, batches = tmp_path / "outcomes.db", 300
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), str(batches)], stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).parents[2])  # fmt: skip
    assert child.stdout is not None
    for _ in range(5):  # let it commit a few batches, then kill it in the middle of the next ones
        child.stdout.readline()
    time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    store = FeedbackStore(path)
    counts = store.counts()
    assert 5 * 200 <= store.stored() < batches * 200, "the kill must land mid-ingest"
    assert counts["accepted"] == store.stored() and store.stored() % 200 == 0 and counts["duplicate"] == 0
    for batch in range(batches):  # the client re-sends everything
        store.ingest([OutcomeRow(f"r{batch}-{i}", i % 2, time.time()) for i in range(200)], key=f"b{batch}")
    counts = store.counts()
    assert store.stored() == batches * 200 == counts["accepted"] and counts["duplicate"] == 0


def test_traffic_with_outcomes_sends_the_true_labels_late(receiver: tuple[str, dict[str, str], Path]) -> None:
    """`driftloop traffic --with-outcomes` against a scoring stub: every answered row's generator label reaches the
    store under its (request id, row), no earlier than the delay after its request."""
    from features.generator import generate
    from monitors.sidecar.testing import BackgroundServer, stub_model_app

    _, env, home = receiver
    store = FeedbackStore(home / "feedback" / "outcomes.db")
    before = store.stored()
    with BackgroundServer(stub_model_app) as stub:
        started = time.time()
        result = driftloop(env, "traffic", "--target", stub.url, "--scenario", "concept-drift", "--rps", "10",
                           "--duration", "1", "--batch", "3", "--rows", "30", "--seed", "3", "--with-outcomes",
                           "--outcome-delay", "2", timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "outcomes: 30 accepted" in result.stdout  # 10 requests x 3 rows; not captured by a sidecar: unknown
    assert store.stored() - before == 30
    labels = generate("concept-drift", rows=30, seed=3)["default_12m"].tolist()
    run = next(line for line in result.stdout.splitlines() if "outcomes:" in line)
    assert "30 unknown" in run
    with store._connect() as db:
        rows = db.execute("SELECT request_id, row, outcome, received_at FROM outcomes WHERE request_id LIKE "
                          "'traffic-%' ORDER BY received_at").fetchall()  # fmt: skip
    assert rows[0][3] >= started + 2  # late by the delay
    by_request = {(r[0].rsplit("-", 1)[1], r[1]): r[2] for r in rows}
    assert [by_request[(str(n), row)] for n in range(10) for row in range(3)] == labels
