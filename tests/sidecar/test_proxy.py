"""The sidecar against a real upstream: transparent proxying, capture into the lake, failures counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx

from monitors.lake import read_window
from monitors.payloads import encode_request
from monitors.sidecar.testing import BackgroundServer, stub_model_app, stub_score
from tests.sidecar.conftest import MODEL, lake_rows, metric, wait_until

COLUMNS = ["age", "income", "purpose"]


def _records(request_number: int, size: int) -> list[dict[str, object]]:
    return [
        {"age": 20 + request_number, "income": 1000.0 * j, "purpose": ["car", "home", "tv"][j % 3]} for j in range(size)
    ]


def test_answers_pass_through_and_every_record_reaches_the_lake(upstream, make_config, run_sidecar) -> None:
    config = make_config(upstream.url)
    server, _ = run_sidecar(config)
    sent: dict[str, list[dict[str, object]]] = {}
    with httpx.Client() as client:
        for n in range(12):
            records = _records(n, size=1 + n % 3)
            headers = {"X-Request-ID": f"req-{n}"} if n % 2 else {}
            answer = client.post(f"{server.url}/invocations", content=encode_request(records, COLUMNS), headers=headers)
            assert answer.status_code == 200
            assert answer.json() == {"predictions": [stub_score(r) for r in records]}
            request_id = answer.headers["X-Request-ID"]
            assert request_id == headers.get("X-Request-ID", request_id) and request_id
            sent[request_id] = records
        assert client.get(f"{server.url}/ping").status_code == 200  # proxied, not captured
        expected = sum(len(r) for r in sent.values())
        wait_until(lambda: lake_rows(config.lake_uri) == expected, "every record in the lake")
        assert metric(client, server.url, "driftloop_sidecar_captured_total") == len(sent)
    frame = read_window(config.lake_uri, MODEL).frame
    assert set(frame["_request_id"]) == set(sent)
    assert (frame["_model_version"] == "7").all() and (frame["_status"] == 200).all()
    assert (frame["_latency_ms"] > 0).all()
    for request_id, group in frame.groupby("_request_id"):
        records = sent[str(request_id)]
        assert group[COLUMNS].to_dict("records") == records
        assert group["_prediction"].tolist() == [stub_score(r) for r in records]
    assert not list(Path(config.spool_dir).glob("*.seg"))  # the spool is emptied once the lake has it


def test_malformed_payloads_are_captured_and_counted(upstream, make_config, run_sidecar) -> None:
    config = make_config(upstream.url)
    server, _ = run_sidecar(config)
    bodies = [b"{broken", b'{"wrong_key": []}', json.dumps({"inputs": [{"age": 1}]}).encode()]
    with httpx.Client() as client:
        statuses = [client.post(f"{server.url}/invocations", content=body).status_code for body in bodies]
        assert statuses == [400, 400, 200]  # the model server's own answers, untouched
        wait_until(lambda: metric(client, server.url, "driftloop_sidecar_malformed_total") == 2, "2 malformed counted")
    window = read_window(config.lake_uri, MODEL)  # counted only once the lake write succeeded
    assert sorted(window.malformed["_raw"]) == ['{"wrong_key": []}', "{broken"]
    assert set(window.malformed["_status"]) == {400}
    assert window.frame["age"].tolist() == [1]


def test_upstream_down_gives_a_fast_clear_502(make_config, run_sidecar) -> None:
    with BackgroundServer(stub_model_app) as doomed:
        dead_url = doomed.url  # a port that was just freed: connection refused
    server, _ = run_sidecar(make_config(dead_url))
    with httpx.Client() as client:
        answer = client.post(f"{server.url}/invocations", content=encode_request(_records(0, 1), COLUMNS))
        assert answer.status_code == 502
        body = answer.json()
        assert body["error_code"] == "UPSTREAM_UNAVAILABLE"
        assert dead_url in body["hint"] and "unreachable" in body["message"]
        assert body["request_id"] == answer.headers["X-Request-ID"]
        ready = client.get(f"{server.url}/readyz")
        assert ready.status_code == 503 and "unreachable" in ready.json()["problems"][0]
        assert client.get(f"{server.url}/healthz").json() == {"status": "ok"}
        assert metric(client, server.url, "driftloop_sidecar_upstream_errors_total", 'kind="unreachable"') == 1


def _break_lake(lake: Path) -> None:
    """Make the lake unwritable even for root: its root becomes a plain file."""
    shutil.rmtree(lake, ignore_errors=True)
    lake.write_text("not a directory")


def _post_all_ok(client: httpx.Client, url: str, requests: int, rows: int) -> None:
    for n in range(requests):
        body = encode_request(_records(n, rows), COLUMNS)
        assert client.post(f"{url}/invocations", content=body).status_code == 200


def test_lake_down_spool_grows_then_recovery_writes_everything(upstream, make_config, run_sidecar) -> None:
    config = make_config(upstream.url)
    lake = Path(config.lake_uri)
    _break_lake(lake)
    server, _ = run_sidecar(config)
    with httpx.Client() as client:
        _post_all_ok(client, server.url, requests=20, rows=2)
        wait_until(lambda: metric(client, server.url, "driftloop_sidecar_lake_write_errors_total") >= 1, "lake errors")
        wait_until(lambda: list(Path(config.spool_dir).glob("*.seg")), "sealed segments waiting in the spool")
        assert metric(client, server.url, "driftloop_sidecar_spooled_bytes") > 0
        ready = client.get(f"{server.url}/readyz").json()
        assert ready["ready"] is True and ready["lake_error"]  # the lake lags, requests are unaffected
        lake.unlink()  # the lake comes back
        wait_until(lambda: lake_rows(config.lake_uri) == 40, "all 40 records after recovery", timeout_s=60)
        wait_until(lambda: metric(client, server.url, "driftloop_sidecar_spooled_bytes") == 0, "spool drained")
    frame = read_window(config.lake_uri, MODEL).frame
    assert frame["_request_id"].nunique() == 20 and not frame.duplicated(["_request_id", "age", "income"]).any()


def test_spool_limit_drops_are_counted_and_requests_still_answered(upstream, make_config, run_sidecar) -> None:
    config = make_config(upstream.url, max_spool_bytes=2000, segment_age_s=60.0)
    lake = Path(config.lake_uri)
    _break_lake(lake)
    server, _ = run_sidecar(config)
    with httpx.Client() as client:
        _post_all_ok(client, server.url, requests=30, rows=1)
        captured = metric(client, server.url, "driftloop_sidecar_captured_total")
        dropped = metric(client, server.url, "driftloop_sidecar_dropped_total", 'reason="spool_full"')
        assert captured > 0 and dropped > 0 and captured + dropped == 30
        assert metric(client, server.url, "driftloop_sidecar_spooled_bytes") <= 2000
        ready = client.get(f"{server.url}/readyz")
        assert ready.status_code == 200 and ready.json()["warnings"][0].startswith("spool full")
    lake.unlink()
    server.stop()  # a clean stop seals the active segment and drains it to the lake
    assert lake_rows(config.lake_uri) == captured
