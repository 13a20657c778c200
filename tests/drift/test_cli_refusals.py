"""`driftloop drift` as a CI gate must never pass by accident (the console script, as CI runs it)."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from driftloop.errors import ConfigError, DataContractError
from monitors.drift.cli import drift_command
from tests._support import driftloop


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(100, 10, 300),
            "channel": rng.choice(["web", "app"], 300),
            "tags": [[int(x)] for x in rng.integers(0, 3, 300)],
        }
    )
    frame.to_parquet(tmp_path / "reference.parquet")
    frame.assign(amount=frame["amount"] + 30).to_parquet(tmp_path / "current.parquet")
    frame.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    frame[["tags"]].to_parquet(tmp_path / "lists-only.parquet")
    return {name: str(tmp_path / f"{name}.parquet") for name in ("reference", "current", "empty", "lists-only")}


def test_errors_are_json_on_stdout(files):
    env = {**os.environ}
    unknown = driftloop(env, "drift", "-r", files["reference"], "-c", files["current"], "--json",
                        "--column-threshold", "amont=0.2", "--column-method", "chanel=chisquare")  # fmt: skip
    assert unknown.returncode == 2
    error = json.loads(unknown.stdout)["error"]
    assert error["type"] == "ConfigError"
    assert "--column-method names unknown column(s) ['chanel']" in error["message"]
    assert "--column-threshold names unknown column(s) ['amont']" in error["message"]
    assert "columns with a drift test: amount, channel" in error["hint"] and "tags (list values" in error["hint"]

    bad_flag = driftloop(env, "drift", "-r", files["reference"], "-c", files["current"], "--json", "--method", "x")
    assert bad_flag.returncode == 2 and json.loads(bad_flag.stdout)["error"]["type"] == "BadParameter"


def test_empty_inputs_and_nothing_testable_are_errors_and_lists_are_said(files):
    runner = CliRunner()
    empty_reference = runner.invoke(drift_command, ["-r", files["empty"], "-c", files["current"], "--fail-on-drift"])
    assert isinstance(empty_reference.exception, DataContractError)
    assert "has no rows: there is nothing to compare the current data with" in empty_reference.exception.message
    empty_current = runner.invoke(drift_command, ["-r", files["reference"], "-c", files["empty"], "--fail-on-drift"])
    assert isinstance(empty_current.exception, DataContractError)
    assert "the current data has no rows" in empty_current.exception.message

    only_lists = ["-r", files["lists-only"], "-c", files["lists-only"]]
    nothing = runner.invoke(drift_command, [*only_lists, "--fail-on-drift"])
    assert isinstance(nothing.exception, DataContractError)
    assert "no column could be tested, so --fail-on-drift cannot decide" in nothing.exception.message
    said = runner.invoke(drift_command, only_lists)
    assert said.exit_code == 0
    assert "tags                     skipped: in the reference: list values (dtype object)" in said.output

    result = runner.invoke(drift_command, ["-r", files["reference"], "-c", files["current"], "--json"])
    document = json.loads(result.output)
    assert document["dataset_drift"] is True and set(document["columns"]) == {"amount", "channel"}
    assert document["skipped"]["tags"].startswith("in the reference: list values")

    typo = runner.invoke(drift_command, ["-r", files["reference"], "-c", files["current"], "--column-method", "x=ks"])
    assert isinstance(typo.exception, ConfigError)
