"""One decision per alert, against the real receiver and engine: auth, limits, shapes, and every decision kind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest

from tests.receiver.conftest import MODEL, TOKEN, Loop, alert, notification, now


def _decisions(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["decision"] for item in response.json()["decisions"]]


def _until(probe, timeout: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.parametrize("token", ["", "wrong", TOKEN + "x"])
def test_without_the_right_token_it_is_401_and_nothing_is_recorded(loop: Loop, token: str) -> None:
    before = len(loop.history())
    response = loop.post(notification(alert("f00d01", now())), token=token)
    assert response.status_code == 401 and "token" in response.json()["error"]
    assert len(loop.history()) == before
    assert httpx.get(loop.url + "/triggers", timeout=5).status_code == 401


def test_a_body_over_one_mib_is_413(loop: Loop) -> None:
    response = httpx.post(loop.url + "/alertmanager", content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                          headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}, timeout=30)  # fmt: skip
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({**notification(alert("f00d02", now())), "version": "3"}, "version"),
        ({**notification(alert("f00d02", now())), "alerts": []}, "alerts"),
        (notification({**alert("f00d02", now()), "fingerprint": "not hex!"}), "alerts.0.fingerprint"),
        (notification({**alert("f00d02", now()), "startsAt": "yesterday"}), "alerts.0.startsAt"),
        ([1, 2, 3], "(body)"),
    ],
)
def test_a_wrong_version_or_shape_is_422_naming_the_field(loop: Loop, body: object, named: str) -> None:
    response = loop.post(body)
    assert response.status_code == 422 and named in response.json()["error"], response.text


def test_not_json_is_422_and_a_wrong_content_type_415(loop: Loop) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    bad = httpx.post(
        loop.url + "/alertmanager", content=b"{nope", headers={**headers, "Content-Type": "application/json"}
    )
    assert bad.status_code == 422 and "JSON" in bad.json()["error"]
    text = httpx.post(loop.url + "/alertmanager", content=b"{}", headers={**headers, "Content-Type": "text/plain"})
    assert text.status_code == 415


def test_only_firing_retrain_alerts_of_a_known_model_act(loop: Loop) -> None:
    started = now() - timedelta(minutes=5)
    body = notification(
        alert("aa0001", started, status="resolved"),
        alert("aa0002", started, alertname="DriftloopPayloadSchemaMismatch", retrain="false", severity="page"),
        alert("aa0003", started, model="someone-else"),
        alert("aa0004", started, trigger="manual"),  # an alert never starts a manual (or schedule) run
    )
    assert _decisions(loop.post(body)) == ["ignored", "ignored", "ignored", "ignored"]
    reasons = [row["reason"] for row in loop.history()[:4]]
    assert any("resolved" in r for r in reasons) and any('retrain="true"' in r for r in reasons)
    assert any("someone-else" in r for r in reasons) and any("trigger 'manual'" in r for r in reasons)


def test_submit_then_duplicate_then_cooldown_then_history(loop: Loop) -> None:
    before = {w["metadata"]["name"] for w in loop.drift_workflows()}
    started = now()
    # the drifted features, as Prometheus renders them into the alert (unsorted here, with one invalid name)
    drifted = {**alert("bb0001", started), "annotations": {"drifted_features": "term,age,,bad name;rm"}}
    first = loop.post(notification(drifted))
    assert _decisions(first) == ["submit"]
    # the same incident from an HA peer (another groupKey), and a later notification of it
    assert _decisions(loop.post(notification(alert("bb0001", started), group_key="{}/{x}:{y}"))) == ["duplicate"]
    # another incident of the same model inside the cooldown, while the first retrain may already run: either guard
    # stops it, and which one answers depends on whether the engine lists the first run yet (both are correct)
    blocked = _decisions(loop.post(notification(alert("bb0002", started + timedelta(seconds=1)))))
    assert blocked in (["cooldown"], ["in-flight"]), blocked
    created = _until(lambda: [w for w in loop.drift_workflows() if w["metadata"]["name"] not in before])
    assert len(created) == 1
    workflow = created[0]
    parameters = {p["name"]: p.get("value") for p in workflow["spec"]["arguments"]["parameters"]}
    assert parameters["trigger"] == "drift" and parameters["trigger-ref"] == "bb0001"
    assert parameters["model-name"] == MODEL
    assert json.loads(parameters["drifted-features"]) == ["age", "term"]  # the register step records this list
    labels, annotations = workflow["metadata"]["labels"], workflow["metadata"]["annotations"]
    assert labels["driftloop.io/trigger"] == "drift" and labels["driftloop.io/alert-fingerprint"] == "bb0001"
    assert annotations["driftloop.io/alert-generator-url"].startswith("http://prometheus.example/graph")
    assert annotations["driftloop.io/alertmanager-url"].startswith("http://127.0.0.1:9093/#/alerts?filter=")
    assert annotations["driftloop.io/drifted-features"] == "age,term"
    submitted = _until(
        lambda: [r for r in loop.history() if r["decision"] == "submit" and r["submission"] != "pending"]
    )
    assert submitted[0]["workflow"] == workflow["metadata"]["name"] and submitted[0]["fingerprint"] == "bb0001"
    cli = subprocess.run([sys.executable, "-m", "driftloop", "trigger", "history", "--json"], env=loop.env,
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    rows = json.loads(cli.stdout)
    assert {row["decision"] for row in rows} >= {"submit", "duplicate", "ignored", *blocked}
    table = subprocess.run([sys.executable, "-m", "driftloop", "trigger", "history"], env=loop.env,
                           capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
    assert workflow["metadata"]["name"] in table and blocked[0] in table


def test_metrics_and_health(loop: Loop) -> None:
    assert httpx.get(loop.url + "/healthz", timeout=5).json() == {"status": "ok"}
    text = httpx.get(loop.url + "/metrics", timeout=5).text
    for name in ("driftloop_trigger_notifications_total", "driftloop_trigger_decisions_total",
                 "driftloop_trigger_submission_seconds_bucket", "driftloop_trigger_submission_failures_total",
                 "driftloop_trigger_retrains_finished_total"):  # fmt: skip
        assert name in text
    assert 'driftloop_trigger_notifications_total{outcome="unauthorized"}' in text
