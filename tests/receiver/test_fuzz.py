"""Fuzzing the real receiver: generated bodies and headers → never a 5xx, never a submission, still healthy.

The default example count keeps this around 15 s; the issue's 10,000 run with
``DRIFTLOOP_FUZZ_EXAMPLES=10000 .venv/bin/python -m pytest tests/receiver/test_fuzz.py``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.receiver.conftest import MODEL, TOKEN, Loop, alert, notification, now

EXAMPLES = int(os.environ.get("DRIFTLOOP_FUZZ_EXAMPLES", "400"))

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
_labels = st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=6)
_fields = ["version", "groupKey", "status", "receiver", "alerts", "externalURL", "truncatedAlerts"]
_alert_fields = ["status", "labels", "startsAt", "fingerprint", "generatorURL", "annotations"]


@st.composite
def _mutated(draw: st.DrawFn) -> Any:
    """A valid notification with one field (of it or of an alert) replaced by generated JSON — never acting."""
    body = notification(alert("fa11", now(), model=draw(st.sampled_from(["", "other", MODEL + "x"]))))
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return body  # valid and harmless (an unknown model): 200, ignored
    if choice == 1:
        body[draw(st.sampled_from(_fields))] = draw(_json)
    else:
        body["alerts"][0][draw(st.sampled_from(_alert_fields))] = draw(_json | _labels)
    return body


_bodies = (
    st.binary(max_size=300).map(lambda raw: ("raw", raw))
    | _json.map(lambda value: ("json", value))
    | _mutated().map(lambda value: ("json", value))
)
_authorization = st.one_of(
    st.just(f"Bearer {TOKEN}"),
    st.just(f"Bearer {TOKEN}"),
    st.text(max_size=40).map(lambda text: "Bearer " + text),
    st.text(max_size=60),
)
_content_type = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "", "a/b"])


@pytest.mark.slow
def test_generated_requests_never_5xx_never_submit(loop: Loop) -> None:
    before = len(loop.drift_workflows())
    submitted_before = sum(row["decision"] == "submit" for row in loop.history(limit=100_000))
    client = httpx.Client(base_url=loop.url, timeout=10)
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=_bodies, authorization=_authorization, content_type=_content_type)
    def probe(body: tuple[str, Any], authorization: str, content_type: str) -> None:
        kind, value = body
        content = value if kind == "raw" else json.dumps(value).encode()
        headers = {"Authorization": authorization.encode("utf-8")}  # raw bytes, whatever the client would send
        if content_type:
            headers["Content-Type"] = content_type.encode()
        try:
            response = client.post("/alertmanager", content=content, headers=headers)
        except httpx.LocalProtocolError:  # the client refuses to send that header: nothing reached the server
            return
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (response.status_code, response.text, content[:200])
        if response.status_code == 200:
            assert all(d["decision"] in {"ignored", "duplicate"} for d in response.json()["decisions"])

    probe()
    client.close()
    print(f"fuzz: {EXAMPLES} examples, {sum(seen.values())} requests answered, statuses {sorted(seen.items())}")
    assert 200 in seen and 401 in seen and 422 in seen, seen  # the fuzzer reached every layer
    assert httpx.get(loop.url + "/healthz", timeout=5).status_code == 200
    assert len(loop.drift_workflows()) == before
    assert sum(row["decision"] == "submit" for row in loop.history(limit=100_000)) == submitted_before


@st.composite
def _outcomes(draw: st.DrawFn) -> Any:
    """A list of outcome rows, each valid or with one field replaced by generated JSON (or dropped)."""
    rows = []
    for index in range(draw(st.integers(0, 6))):
        row: dict[str, Any] = {"request_id": f"fuzz-{index}", "outcome": index % 2, "observed_at": 1.7e9 + index}
        if draw(st.booleans()):
            name = draw(st.sampled_from(["request_id", "outcome", "observed_at", "row", "extra"]))
            if draw(st.booleans()):
                row[name] = draw(_json)
            else:
                row.pop(name, None)
        rows.append(row)
    return rows if draw(st.booleans()) else {"outcomes": rows}


@pytest.mark.slow
def test_generated_feedback_never_5xx_and_stores_only_valid_rows(loop: Loop) -> None:
    """POST /feedback under generated bodies and headers: never a 5xx; what it stores is what it counted accepted."""
    from driftloop.config import get_settings
    from monitors.feedback._store import feedback_store

    client = httpx.Client(base_url=loop.url, timeout=10)
    store = feedback_store(get_settings(loop.env))
    before = store.stored()
    accepted = 0
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=_bodies | _outcomes().map(lambda value: ("json", value)), authorization=_authorization,
           content_type=_content_type, key=st.none() | st.text(max_size=20))  # fmt: skip
    def probe(body: tuple[str, Any], authorization: str, content_type: str, key: str | None) -> None:
        nonlocal accepted
        kind, value = body
        content = value if kind == "raw" else json.dumps(value).encode()
        headers = {"Authorization": authorization.encode("utf-8")}
        if content_type:
            headers["Content-Type"] = content_type.encode()
        if key is not None:
            headers["Idempotency-Key"] = key.encode("utf-8")
        try:
            response = client.post("/feedback", content=content, headers=headers)
        except httpx.LocalProtocolError:
            return
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (response.status_code, response.text, content[:200])
        if response.status_code == 200 and not response.json()["replayed"]:
            accepted += response.json()["counts"]["accepted"]

    probe()
    client.close()
    assert 200 in seen and 401 in seen and 422 in seen, seen
    assert store.stored() - before == accepted  # nothing stored that was not counted, nothing counted twice
    assert httpx.get(loop.url + "/healthz", timeout=5).status_code == 200
