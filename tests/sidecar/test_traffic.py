"""`driftloop traffic` replays generated scenarios as real requests; through a sidecar they reach the lake."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from driftloop.cli import cli
from monitors.lake import read_window
from monitors.payloads import BODY_FORMATS, parse_request
from monitors.traffic import encode_body, replay, scenario_records
from tests.sidecar.conftest import MODEL, lake_rows, wait_until


@pytest.mark.parametrize("body_format", BODY_FORMATS)
def test_every_body_format_decodes_to_the_frame(body_format: str) -> None:
    frame = pd.DataFrame({"age": [30, 41], "annual_income": [52000.5, float("nan")], "purpose": ["car", None]})
    records = parse_request(encode_body(frame, body_format))
    assert records == [
        {"age": 30, "annual_income": 52000.5, "purpose": "car"},
        {"age": 41, "annual_income": None, "purpose": None},
    ]


def test_schema_change_scenario_sends_the_renamed_column() -> None:
    columns = set(scenario_records("schema-change", rows=5, seed=1).columns)
    assert "customer_age_years" in columns and "age" not in columns
    assert not {"applicant_id", "event_timestamp", "default_12m"} & set(scenario_records("baseline", 5, 1).columns)


def test_replay_through_the_sidecar_lands_every_request_in_the_lake(upstream, make_config, run_sidecar) -> None:
    config = make_config(upstream.url)
    server, _ = run_sidecar(config)
    frame = scenario_records("covariate-shift", rows=40, seed=3)
    report = replay(frame, f"{server.url}/invocations", rps=100, duration_s=0.3, batch=2)
    assert report.sent == 30 and report.statuses == {200: 30} and not report.errors
    wait_until(lambda: lake_rows(config.lake_uri) == 60, "30 requests x 2 rows in the lake")
    window = read_window(config.lake_uri, MODEL)
    assert set(window.frame["_request_id"]) == set(report.request_ids)
    expected = pd.concat([frame, frame.iloc[:20]])["age"].sort_values().tolist()  # 60 rows cycle through the 40
    assert sorted(window.frame["age"].tolist()) == expected


def test_cli_reports_rate_and_refuses_a_dead_target(upstream) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["traffic", "--scenario", "baseline", "--rps", "50", "--duration", "0.2", "--rows", "20",
                             "--target", upstream.url])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "sent 10 requests" in ok.output and "200: 10" in ok.output
    dead = runner.invoke(cli, ["traffic", "--rps", "20", "--duration", "0.1", "--rows", "5",
                               "--target", "http://127.0.0.1:9/invocations"])  # fmt: skip
    assert dead.exit_code != 0
    assert "no request reached" in str(dead.exception)
