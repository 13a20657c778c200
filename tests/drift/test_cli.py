"""`driftloop drift` and `driftloop monitor` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from driftloop.cli import cli
from monitors.drift import build_profile, compute_drift
from monitors.lake import write_frame
from tests._support import free_port as _free_port


@pytest.fixture
def datasets(tmp_path):
    rng = np.random.default_rng(21)
    reference = pd.DataFrame({"amount": rng.normal(100, 10, 1500), "channel": rng.choice(["web", "app"], 1500)})
    current = pd.DataFrame({"amount": rng.normal(104, 10, 800), "channel": rng.choice(["web", "app"], 800)})
    reference.to_parquet(tmp_path / "reference.parquet")
    current.to_parquet(tmp_path / "current.parquet")
    current.to_csv(tmp_path / "current.csv", index=False)
    return tmp_path, reference, current


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_drift_json_matches_the_library(datasets):
    folder, reference, current = datasets
    result = _invoke("drift", "-r", str(folder / "reference.parquet"), "-c", str(folder / "current.csv"), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document == json.loads(json.dumps(compute_drift(build_profile(reference), current).to_dict()))
    assert document["columns"]["amount"]["method"] == "wasserstein"


def test_drift_from_a_saved_profile_gives_the_same_answer(datasets):
    folder, reference, _ = datasets
    build_profile(reference).save(folder / "profile")
    from_data = _invoke(
        "drift", "-r", str(folder / "reference.parquet"), "-c", str(folder / "current.parquet"), "--json"
    )
    from_profile = _invoke("drift", "-r", str(folder / "profile"), "-c", str(folder / "current.parquet"), "--json")
    assert json.loads(from_profile.output) == json.loads(from_data.output)


def test_drift_table_thresholds_and_exit_code(datasets):
    folder, _, _ = datasets
    args = ["drift", "-r", str(folder / "reference.parquet"), "-c", str(folder / "current.parquet")]
    table = _invoke(*args, "--column-threshold", "amount=5", "--drift-share", "1")
    assert table.exit_code == 0
    assert "amount" in table.output and "no dataset drift" in table.output
    strict = _invoke(*args, "--column-threshold", "amount=0.01", "--drift-share", "0.5", "--fail-on-drift")
    assert strict.exit_code == 3 and "DATASET DRIFT" in strict.output


def test_drift_errors_say_what_to_do(datasets, capsys):
    folder, _, current = datasets
    current.drop(columns=["channel"]).to_parquet(folder / "partial.parquet")
    from driftloop.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["drift", "-r", str(folder / "reference.parquet"), "-c", str(folder / "partial.parquet")])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "channel: missing from the current data" in err and "hint:" in err
    with pytest.raises(SystemExit):
        main(
            [
                "drift",
                "-r",
                str(folder / "reference.parquet"),
                "-c",
                str(folder / "current.parquet"),
                "--column-threshold",
                "amount",
            ]
        )
    assert "COLUMN=VALUE" in capsys.readouterr().err


def test_help_teaches_with_examples():
    for command in ("drift", "monitor"):
        result = _invoke(command, "--help")
        assert result.exit_code == 0 and "Examples:" in result.output


def test_monitor_once_json(datasets):
    folder, reference, current = datasets
    build_profile(reference).save(folder / "ref" / "profile")
    write_frame(str(folder / "lake"), "scoring", current)
    result = _invoke(
        "monitor", "-m", "scoring", "--lake", str(folder / "lake"), "--reference", str(folder / "ref"),
        "--once", "--json", "--no-html", "--last-rows", "500",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["rows"] == 500 and document["drift"]["rows"]["current"] == 500
    assert document["version"] == "local"


def test_monitor_process_serves_metrics_and_stops_on_sigterm(datasets):
    folder, reference, current = datasets
    build_profile(reference).save(folder / "ref" / "profile")
    write_frame(str(folder / "lake"), "scoring", current)
    port = _free_port()
    env = {**os.environ, "DRIFTLOOP_HOME": str(folder / "home")}
    command = [sys.executable, "-c", "from driftloop.cli import main; main()"]
    process = subprocess.Popen(
        [*command, "monitor", "-m", "scoring", "--lake", str(folder / "lake"), "--reference", str(folder / "ref"),
         "--metrics-port", str(port), "--interval", "0.5", "--no-html"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        text = ""
        for _ in range(120):
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                if "driftloop_drift_share{" in text:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                break
            time.sleep(0.25)
        assert 'driftloop_window_rows{model="scoring"} 800.0' in text, process.stderr.read() if process.poll() else text
        assert (
            'driftloop_feature_drift_score{feature="amount",method="wasserstein",model="scoring",version="local"}'
            in text
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert process.returncode == 0


@pytest.mark.slow
def test_drift_html_report_from_a_profile(datasets):
    folder, reference, _ = datasets
    build_profile(reference).save(folder / "profile")
    html = folder / "out" / "drift.html"
    result = _invoke("drift", "-r", str(folder / "profile"), "-c", str(folder / "current.parquet"), "--html", str(html))
    assert result.exit_code == 0, result.output
    text = html.read_text()
    assert "<html" in text[:2000].lower() and "amount" in text
