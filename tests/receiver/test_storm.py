"""The alert storm: 1,000 notifications for one incident — concurrent, replayed, reordered, mixed with unrelated
alerts, under the different groupKeys HA peers produce — with the receiver SIGTERMed and SIGKILLed mid-storm
(senders retry until a 2xx, as Alertmanager does) → exactly one retraining workflow. A second incident inside
the cooldown submits nothing; after the cooldown, one more. And a crash between deciding and submitting is
finished on restart."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.receiver.conftest import Loop, alert, notification, now, running_loop


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    """A loop of its own: the cooldown is per model, so a retrain another test submitted would swallow the storm."""
    with running_loop(tmp_path_factory.mktemp("storm") / "home") as running:
        yield running


STORM = 1000
GROUP_KEYS = [
    '{}:{alertname="DriftloopFeatureDrift"}',
    '{}/{retrain="true"}:{alertname="DriftloopFeatureDrift", model="credit-risk"}',
    '{}/{alertname=~"Driftloop.*"}:{alertname="DriftloopFeatureDrift", model="credit-risk"}',
]


def _deliver(loop: Loop, client: httpx.Client, body: dict[str, Any], deadline: float) -> int:
    """Send until a 2xx, as Alertmanager retries; returns the attempts it took."""
    attempts = 0
    while True:
        attempts += 1
        try:
            if loop.post(body, client=client).status_code == 200:
                return attempts
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not delivered after {attempts} attempts")
        time.sleep(0.05)


def _storm_bodies(fingerprint: str, started: Any, other: str) -> list[dict[str, Any]]:
    rng = random.Random(8)
    incident = alert(fingerprint, started)
    unrelated = [
        alert("cc0001", started, alertname="DriftloopPayloadSchemaMismatch", retrain="false", severity="page"),
        alert("cc0002", started, model="another-model"),
        alert("cc0003", started - timedelta(hours=1), status="resolved"),
        alert(other, started + timedelta(seconds=2)),  # a second incident of the model: inside the cooldown
    ]
    bodies = []
    for index in range(STORM):
        mixed = [incident, *rng.sample(unrelated, rng.randint(0, len(unrelated)))]
        rng.shuffle(mixed)  # reordered inside the group
        if index % 10 == 3:  # a resolved notification of the same incident arriving out of order
            mixed.append({**incident, "status": "resolved", "endsAt": (started + timedelta(minutes=1)).isoformat()})
        bodies.append(notification(*mixed, group_key=GROUP_KEYS[index % len(GROUP_KEYS)]))
    rng.shuffle(bodies)
    return bodies


@pytest.mark.slow
def test_an_alert_storm_with_restarts_submits_exactly_one_workflow(loop: Loop) -> None:
    before = {w["metadata"]["name"] for w in loop.drift_workflows()}
    started = now() + timedelta(days=1)  # an incident key no other test uses
    bodies = _storm_bodies("dd0001", started, other="dd0002")
    deadline = time.monotonic() + 120
    sent = [0]
    lock = threading.Lock()

    def worker(chunk: list[dict[str, Any]]) -> int:
        with httpx.Client() as client:
            total = 0
            for body in chunk:
                total += _deliver(loop, client, body, deadline)
                with lock:
                    sent[0] += 1
            return total

    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(worker, bodies[i::12]) for i in range(12)]
        for at, signum in ((250, signal.SIGTERM), (600, signal.SIGKILL)):
            while sent[0] < at:
                time.sleep(0.01)
            loop.receiver.signal(signum)  # mid-storm: graceful stop, then a crash
            loop.receiver.start()
        attempts = sum(future.result() for future in futures)
    assert attempts > STORM, "the restarts should have made some deliveries retry"

    def created() -> list[dict[str, Any]]:
        return [w for w in loop.drift_workflows() if w["metadata"]["name"] not in before]

    deadline = time.monotonic() + 30
    while not created() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # would a late duplicate submission show up?
    runs = created()
    assert len(runs) == 1, [w["metadata"]["name"] for w in runs]
    # deliveries are reordered: whichever of the two incidents arrives first is retrained, the other waits
    first = runs[0]["metadata"]["labels"]["driftloop.io/alert-fingerprint"]
    assert first in {"dd0001", "dd0002"}
    second = ({"dd0001", "dd0002"} - {first}).pop()
    history = [row for row in loop.history(limit=100_000) if row["fingerprint"] in {"dd0001", "dd0002"}]
    kinds = {row["decision"] for row in history if row["fingerprint"] == first and row["status"] == "firing"}
    assert kinds == {"submit", "duplicate"}
    assert sum(row["decision"] == "submit" for row in history) == 1
    assert {r["decision"] for r in history if r["fingerprint"] == second and r["status"] == "firing"} <= {"cooldown", "duplicate"}

    # after the cooldown (restart with a 1 s cooldown) and once the first retrain finished: one more
    loop.client().wait(runs[0]["metadata"]["name"], timeout=60, poll_seconds=0.3)
    loop.receiver.stop()
    loop.receiver.start(DRIFTLOOP_TRIGGER_COOLDOWN="1")
    time.sleep(1.1)
    answer = loop.post(notification(alert("dd0003", started + timedelta(hours=1))))
    assert [d["decision"] for d in answer.json()["decisions"]] == ["submit"]
    deadline = time.monotonic() + 30
    while len(created()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(created()) == 2


@pytest.mark.slow
def test_a_crash_after_deciding_but_before_submitting_is_finished_on_restart(loop: Loop) -> None:
    loop.receiver.stop()
    loop.receiver.start(DRIFTLOOP_TRIGGER_COOLDOWN="1")
    time.sleep(1.1)
    loop.engine.stop()  # the Argo Server is down: the decision is durable, the submission cannot happen
    try:
        started = now() + timedelta(days=2)
        answer = loop.post(notification(alert("ee0001", started)))
        assert [d["decision"] for d in answer.json()["decisions"]] == ["submit"]
        deadline = time.monotonic() + 20
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            row = next(r for r in loop.history() if r["fingerprint"] == "ee0001")
            if row["error"]:
                break
            time.sleep(0.2)
        assert row["submission"] == "pending" and row["error"], row  # the failure is surfaced
        failures = httpx.get(loop.url + "/metrics", timeout=5).text
        assert 'driftloop_trigger_submission_failures_total{model="credit-risk"} 0.0' not in failures
        loop.receiver.signal(signal.SIGKILL)
    finally:
        loop.engine.start()
    loop.receiver.start()
    deadline = time.monotonic() + 30
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not runs:
        runs = [
            w for w in loop.drift_workflows() if w["metadata"]["labels"]["driftloop.io/alert-fingerprint"] == "ee0001"
        ]
        time.sleep(0.2)
    assert len(runs) == 1
    row = next(r for r in loop.history() if r["fingerprint"] == "ee0001" and r["decision"] == "submit")
    assert row["workflow"] == runs[0]["metadata"]["name"]
