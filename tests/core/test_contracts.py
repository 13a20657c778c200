"""One place for every contract and default (issue 12): each check fails if a second copy creeps back in."""

from __future__ import annotations

import ast
import functools
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from driftloop import registry_contract as contract
from driftloop.config import get_settings
from driftloop.errors import ConfigError, NotFoundError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("driftloop", "workflows", "monitors", "features")


@functools.cache
def _texts() -> dict[Path, str]:
    paths = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py") if "repo" not in path.parts]
    return {path: path.read_text() for path in paths}


@functools.cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(_texts()[path])


def _modules_mentioning(*words: str) -> list[tuple[Path, ast.Module]]:
    """The parsed modules whose text contains one of ``words`` (parsing all of them costs seconds on a busy CI)."""
    return [(path, _parsed(path)) for path, text in _texts().items() if any(word in text for word in words)]


# ---- monitor defaults: Settings is the one source --------------------------------------------------------------
def _monitor_params(args: list[str]) -> dict[str, object]:
    from monitors.drift.cli import monitor_command

    with monitor_command.make_context("monitor", args) as ctx:
        return dict(ctx.params)


def test_the_monitor_command_and_config_take_their_defaults_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from monitors.drift._monitor import MonitorConfig

    monkeypatch.setenv("DRIFTLOOP_MONITOR_INTERVAL", "7.5")
    monkeypatch.setenv("DRIFTLOOP_MONITOR_URL", "http://127.0.0.1:9411")
    settings = get_settings()
    params = _monitor_params([])
    assert params["interval"] == 7.5 == settings.monitor_interval
    assert params["last_rows"] == settings.monitor_window_rows
    assert params["last_minutes"] == settings.monitor_window_minutes
    assert params["drift_share"] == settings.monitor_drift_share
    assert (params["metrics_host"], params["metrics_port"]) == ("127.0.0.1", 9411)
    config = MonitorConfig.from_settings(settings)
    assert (config.interval_s, config.last_rows, config.last_minutes, config.options.drift_share) == (
        7.5,
        settings.monitor_window_rows,
        settings.monitor_window_minutes,
        settings.monitor_drift_share,
    )
    overridden = _monitor_params(["--interval", "2", "--drift-share", "0.6", "--last-minutes", "0"])
    assert (overridden["interval"], overridden["drift_share"], overridden["last_minutes"]) == (2.0, 0.6, 0.0)


def test_monitor_help_shows_the_value_in_force_and_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    from monitors.drift.cli import drift_command, monitor_command

    monkeypatch.setenv("DRIFTLOOP_MONITOR_WINDOW_ROWS", "1234")
    monkeypatch.delenv("DRIFTLOOP_MONITOR_INTERVAL", raising=False)
    text = " ".join(CliRunner().invoke(monitor_command, ["--help"], terminal_width=400).output.split())
    assert "1234, set by DRIFTLOOP_MONITOR_WINDOW_ROWS" in text
    interval = get_settings().monitor_interval
    assert f"{interval:g}, the built-in default of DRIFTLOOP_MONITOR_INTERVAL" in text
    monkeypatch.setenv("DRIFTLOOP_MONITOR_DRIFT_SHARE", "2")  # invalid: --help still works and says so
    text = " ".join(CliRunner().invoke(monitor_command, ["--help"], terminal_width=400).output.split())
    assert "invalid DRIFTLOOP_MONITOR_DRIFT_SHARE" in text
    one_off = CliRunner().invoke(drift_command, ["--help"], terminal_width=400).output
    assert "default: 0.5" in one_off  # `driftloop drift` keeps Evidently's own default


# ---- the registry contract: no second copy of its literals ------------------------------------------------------
def test_registry_names_are_written_only_in_the_registry_contract() -> None:
    literals = {
        contract.CHAMPION,
        contract.CHALLENGER,
        contract.PREVIOUS_CHAMPION,
        contract.MODEL_URI_TAG,
        contract.REFERENCE_SAMPLE,
        contract.REFERENCE_SAMPLE_ARTIFACT,
        f"{contract.REFERENCE_DIR}/{contract.REFERENCE_PROFILE}",
    }
    found = []
    for path, module in _modules_mentioning(*literals):
        if path.name == "registry_contract.py":
            continue
        for node in ast.walk(module):
            if isinstance(node, ast.Constant) and node.value in literals:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not found, "import these from driftloop.registry_contract instead: " + ", ".join(found)
    assert contract.previous_alias(contract.CHAMPION) == contract.PREVIOUS_CHAMPION
    assert contract.run_model_uri("r1", {}) == "runs:/r1/model"
    assert contract.run_model_uri("r1", {contract.MODEL_URI_TAG: "models:/m-1"}) == "models:/m-1"


# ---- one drift parser: the data gate's verdicts are the monitor's -----------------------------------------------
def test_the_data_gate_and_the_monitor_give_the_same_verdicts() -> None:
    from features.contract import FeatureSchema, FeatureSpec
    from monitors.drift import build_profile, compute_drift
    from workflows.steps._drift import column_drift, drift_findings

    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"income": rng.normal(50, 10, 3000), "region": rng.choice(["n", "s"], 3000)})
    current = pd.DataFrame({"income": rng.normal(65, 10, 800), "region": rng.choice(["n", "s"], 800)})
    features = (FeatureSpec("income", "float64", "v"), FeatureSpec("region", "string", "v", domain=("n", "s")))
    schema = FeatureSchema("svc", features)
    gate = column_drift(reference, current, schema, None)
    kinds = {"income": "numerical", "region": "categorical"}
    monitor = compute_drift(build_profile(reference, kinds), current).to_dict()["columns"]
    assert gate == monitor and gate["income"]["drifted"] and not gate["region"]["drifted"]
    summary, findings = drift_findings(reference, current, schema, 0.4, None)
    assert summary["share"] == 0.5 and [f.column for f in findings] == ["income"]


# ---- HTTP clients: httpx (aiohttp for the servers), each one declared --------------------------------------------
def test_every_http_library_imported_is_declared_and_the_argo_client_uses_httpx() -> None:
    http_libraries = {"requests", "httpx", "aiohttp", "urllib3"}
    imported: dict[str, list[str]] = {}
    for path, module in _modules_mentioning(*http_libraries):
        for node in ast.walk(module):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                top = name.split(".")[0]
                if top in http_libraries:
                    imported.setdefault(top, []).append(str(path.relative_to(ROOT)))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    declared_names = {entry.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip()
                      for entry in declared}  # fmt: skip
    assert set(imported) <= declared_names, {name: imported[name] for name in set(imported) - declared_names}
    assert "requests" not in imported, imported.get("requests")


# ---- authoring mistakes are the project's errors, with a hint ---------------------------------------------------
def test_pipeline_and_stack_mistakes_raise_driftloop_errors_with_hints() -> None:
    from driftloop.stack.services import service
    from workflows.pipelines import PipelineDAG
    from workflows.pipelines._registry import Pipeline, get_pipeline, register
    from workflows.steps.contract import step

    with pytest.raises(ConfigError, match=r"input 'model-name' of task 'train' is required and not wired") as missing:
        PipelineDAG("mistakes", image="driftloop:test").task(step("train"))
    assert missing.value.hint and "Param('model-name'" in missing.value.hint
    existing = get_pipeline("training")
    with pytest.raises(ConfigError, match="two pipelines are named 'training'") as duplicate:
        register(Pipeline("training", "a copy", existing.build))
    assert duplicate.value.hint and "name=" in duplicate.value.hint
    with pytest.raises(NotFoundError, match="no stack service named 'mlfow'") as unknown:
        service("mlfow")
    assert unknown.value.hint and "mlflow" in unknown.value.hint
