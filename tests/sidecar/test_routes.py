"""The sidecar's routing file (what `driftloop deployer` writes): weights move traffic, a broken file is ignored."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from monitors.sidecar._routes import parse_routes
from monitors.sidecar.testing import BackgroundServer, stub_model_app
from tests.sidecar.conftest import metric, wait_until


def _write(path: Path, generation: int, routes: list[dict[str, object]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"generation": generation, "routes": routes}))
    tmp.replace(path)


def _generation(client: httpx.Client, base: str) -> int:
    return int(client.get(f"{base}/readyz").json()["routing"]["generation"])


def test_weights_move_traffic_and_a_broken_file_changes_nothing(make_config, run_sidecar, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    routes = tmp_path / "routes.json"
    with BackgroundServer(stub_model_app) as old, BackgroundServer(stub_model_app) as new, httpx.Client() as client:
        server, _ = run_sidecar(make_config(old.url, routes_file=routes, model_version=None))
        body = {"inputs": [{"age": 30}]}
        assert client.post(f"{server.url}/invocations", json=body).status_code == 200  # no file: --upstream
        assert metric(client, server.url, "driftloop_sidecar_route_requests_total", 'code="200",route="default"') == 1

        _write(routes, 1, [{"name": "v1", "url": old.url, "weight": 50, "model_version": "1"},
                           {"name": "v2", "url": new.url, "weight": 50, "model_version": "2"}])  # fmt: skip
        wait_until(lambda: _generation(client, server.url) == 1, "generation 1")
        for _ in range(40):
            assert client.post(f"{server.url}/invocations", json=body).status_code == 200
        v1 = metric(client, server.url, "driftloop_sidecar_route_requests_total", 'code="200",route="v1"')
        v2 = metric(client, server.url, "driftloop_sidecar_route_requests_total", 'code="200",route="v2"')
        assert v1 + v2 == 40 and v1 > 5 and v2 > 5  # both routes get a share

        _write(routes, 2, [{"name": "v2", "url": new.url, "weight": 100, "model_version": "2"}])
        wait_until(lambda: _generation(client, server.url) == 2, "generation 2")
        for _ in range(10):
            client.post(f"{server.url}/invocations", json=body)
        assert metric(client, server.url, "driftloop_sidecar_route_requests_total", 'code="200",route="v2"') == v2 + 10
        ready = client.get(f"{server.url}/readyz").json()
        assert ready["model_version"] == "2" and next(r["name"] for r in ready["routing"]["routes"]) == "v2"

        routes.write_text('{"generation": 3, "routes": [{"name": "x", "url": "file:///etc/passwd", "weight": 100}]}')
        wait_until(lambda: client.get(f"{server.url}/readyz").json()["routing"]["error"], "the file refused")
        ready = client.get(f"{server.url}/readyz").json()
        assert ready["routing"]["generation"] == 2 and "http(s) URL" in ready["warnings"][0]
        assert client.post(f"{server.url}/invocations", json=body).status_code == 200  # still served by v2

        routes.unlink()  # the deployer stopped cleanly: back to --upstream
        wait_until(lambda: _generation(client, server.url) == -1, "back to --upstream")


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("[]", "expected"),
        ('{"routes": [{"name": "a", "url": "http://h:1", "weight": 0}]}', "weight above 0"),
        ('{"routes": [{"name": "a", "url": "http://h:1", "weight": 101}]}', "0 to 100"),
        (
            '{"routes": [{"name": "a", "url": "http://h:1", "weight": 1}, {"name": "a", "url": "http://h:2", "weight": 1}]}',
            "unique",
        ),
        ('{"generation": "1", "routes": []}', "integer"),
        ("not json", "Expecting value"),
    ],
)
def test_malformed_routing_files_are_refused_with_the_reason(document: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_routes(document)


def test_the_deployers_analysis_judges_each_route_from_the_sidecars_metrics(
    make_config, run_sidecar, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A canary slower than the AnalysisTemplate's p99 limit fails, the fast route passes (stub model servers; the
    drift monitor's own exporter, reporting a window with nothing to score yet)."""
    import threading

    from prometheus_client import start_http_server

    from driftloop.config import get_settings
    from monitors.deployer.deployer import Deployer, DeployerOptions
    from monitors.drift._metrics import MonitorMetrics
    from monitors.traffic import replay, scenario_records

    routes = tmp_path / "routes.json"
    fast, slow = BackgroundServer(stub_model_app).start(), BackgroundServer(lambda: stub_model_app(0.6)).start()
    monitor = MonitorMetrics("credit-risk")
    monitor.publish_empty(rows=0)
    exporter, exporter_thread = start_http_server(0, addr="127.0.0.1", registry=monitor.registry)
    try:
        server, _ = run_sidecar(make_config(fast.url, routes_file=routes, model_version=None))
        _write(
            routes, 1, [{"name": "v1", "url": fast.url, "weight": 50}, {"name": "v2", "url": slow.url, "weight": 50}]
        )
        with httpx.Client() as client:
            wait_until(lambda: _generation(client, server.url) == 1, "generation 1")
        settings = get_settings({"DRIFTLOOP_HOME": str(tmp_path / "home"), "DRIFTLOOP_SERVING_URL": server.url,
                                 "DRIFTLOOP_MONITOR_URL": f"http://127.0.0.1:{exporter.server_port}",
                                 "DRIFTLOOP_DEPLOYER_MIN_P99_REQUESTS": "20"})  # routing, not sample size  # fmt: skip
        deployer = Deployer(settings, DeployerOptions(canary_window_s=0.5, analysis_timeout_s=3))
        frame = scenario_records("baseline", rows=20, seed=1)
        load = threading.Thread(target=replay, args=(frame, f"{server.url}/invocations"),
                                kwargs={"rps": 40, "duration_s": 4.0})  # fmt: skip
        load.start()
        verdicts = {route: deployer._analyse(route, 50) for route in ("v1", "v2")}
        load.join()
        quiet = deployer._analyse("v1", 50)  # no traffic: inconclusive at the timeout, never a silent pass
        bad_payloads = threading.Timer(1.0, lambda: monitor.schema_mismatch.labels("credit-risk", "age").inc(2))
        bad_payloads.start()  # the monitor counts mismatched payloads during the window: a failure, not a wait
        mismatched = deployer._analyse("v1", 50)
    finally:
        fast.stop()
        slow.stop()
        exporter.shutdown()
        exporter_thread.join(timeout=5)
    assert verdicts["v2"].outcome == "fail" and verdicts["v2"].failed == ["p99-latency"], verdicts["v2"].reason
    assert verdicts["v1"].outcome == "pass", verdicts["v1"].reason
    assert quiet.outcome == "inconclusive" and "driftloop traffic" in quiet.reason
    assert "error-rate: no data [0 canary requests, need 20]" in quiet.reason
    assert mismatched.outcome == "fail" and mismatched.failed == ["payload-schema-mismatch"], mismatched.reason


def test_p99_interpolates_like_histogram_quantile() -> None:
    from monitors.deployer._servers import RouteWindow

    start = RouteWindow(10, 0, ((0.1, 10.0), (0.5, 10.0), (float("inf"), 10.0)))
    now = RouteWindow(110, 3, ((0.1, 60.0), (0.5, 110.0), (float("inf"), 110.0)))
    requests, errors, p99 = now.since(start)  # 100 new: 50 below 0.1 s, 50 in (0.1, 0.5]
    assert (requests, errors) == (100, 3) and p99 == pytest.approx(0.1 + 0.4 * (99 - 50) / 50)
    assert RouteWindow(5, 0, ((0.1, 0.0), (float("inf"), 0.0))).since(RouteWindow(5, 0, ())) == (0, 0, None)


def test_a_restarted_deployer_continues_the_routing_generation_past_what_it_wrote(tmp_path: Path) -> None:
    """A crash between writing the routing file and the state: the next file must not reuse that generation, or the
    sidecar (which applies a file only when its generation changes) would keep the canary's weights."""
    from driftloop.config import get_settings
    from monitors.deployer.deployer import Deployer, DeployerOptions

    settings = get_settings({"DRIFTLOOP_HOME": str(tmp_path / "home")})
    deployer = Deployer(settings, DeployerOptions())
    deployer.dir.mkdir(parents=True)
    deployer.state_path.write_text(json.dumps({"serving": None, "generation": 3, "servers": []}))
    _write(deployer.routes_path, 5, [{"name": "v9", "url": "http://127.0.0.1:9", "weight": 100}])
    deployer.recover()
    assert deployer.generation == 5 and not deployer.routes_path.exists()  # nothing alive: back to --upstream
    assert json.loads(deployer.state_path.read_text())["generation"] == 5


def test_route_only_mode_routes_counts_and_captures_nothing(make_config, run_sidecar, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`--no-capture` (the stack's sidecar): the model servers behind it capture in process, so the router writes
    no spool and no lake — a request captured twice would count twice in the drift window — yet it still routes
    by the file, passes one request id through, and keeps the per-route series the canary analysis reads."""
    routes = tmp_path / "routes.json"
    seen: list[str] = []

    def recording_app() -> object:
        from aiohttp import web

        app = stub_model_app()

        @web.middleware
        async def remember(request: web.Request, handler):  # type: ignore[no-untyped-def]
            seen.append(request.headers.get("X-Request-ID", ""))
            return await handler(request)

        app.middlewares.append(remember)
        return app

    with BackgroundServer(recording_app) as model, httpx.Client() as client:
        _write(routes, 1, [{"name": "v3", "url": model.url, "weight": 100, "model_version": "3"}])
        server, sidecar = run_sidecar(make_config(model.url, routes_file=routes, capture=False))
        wait_until(lambda: _generation(client, server.url) == 1, "generation 1")
        for _ in range(5):
            answer = client.post(f"{server.url}/invocations", json={"inputs": [{"age": 30}]})
            assert answer.status_code == 200 and answer.headers["X-Request-ID"] == seen[-1] != ""
        assert metric(client, server.url, "driftloop_sidecar_route_requests_total", 'code="200",route="v3"') == 5
        ready = client.get(f"{server.url}/readyz").json()
        assert ready["ready"] and ready["capture"] == "in-process" and ready["spooled_bytes"] is None
        assert ready["model_version"] == "3"
        assert not hasattr(sidecar, "spool")  # the route-only router has no capture machinery at all
    assert not (tmp_path / "spool").exists() and not (tmp_path / "lake").exists()


def test_route_only_mode_ships_what_a_capturing_run_left_in_its_spool(make_config, run_sidecar, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Upgrading a stack: its sidecar captured until now and runs route only from here on; the payloads its last
    capturing run left spooled reach the lake (nobody else would ever ship them)."""
    from monitors.lake import read_window
    from monitors.sidecar import Capture, SidecarMetrics
    from monitors.sidecar._spool import Spool
    from tests.sidecar.conftest import MODEL

    spool = Spool(tmp_path / "spool", SidecarMetrics(), max_bytes=1 << 20, segment_bytes=1 << 20, segment_age_s=60)
    spool.append(Capture(request_id="left-behind", ts=1.7e9, model_version="2", status=200, latency_ms=3.0,
                         content_type="application/json", request=b'{"inputs": [{"age": 41}]}',
                         response=b'{"predictions": [0.4]}'))  # fmt: skip
    spool.close()  # sealed, never shipped: the old sidecar stopped before its writer got to it
    with BackgroundServer(stub_model_app) as model:
        run_sidecar(make_config(model.url, capture=False))
        lake = str(tmp_path / "lake")
        wait_until(lambda: (tmp_path / "lake").exists() and len(read_window(lake, MODEL).frame) == 1, "the row")
    frame = read_window(lake, MODEL).frame
    assert frame["_request_id"].tolist() == ["left-behind"] and frame["age"].tolist() == [41]
    assert not list((tmp_path / "spool").glob("*.seg"))
