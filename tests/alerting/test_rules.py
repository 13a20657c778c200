"""The alert rules and routing, checked by the real tools: promtool check config/rules, promtool test rules (each
rule fires when it should, stays quiet when it should not, and ignores flapping input), amtool check-config and
amtool's route tester. Rules and configs are rendered from monitors/receiver/_rules.py exactly as the stack does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.config import get_settings
from monitors.receiver._local import write_alertmanager_files, write_prometheus_files
from monitors.receiver._manifests import build_files, default_out_dir, diff_files, validate_files
from monitors.receiver._rules import DRIFTED_FEATURES_ANNOTATION, LOCAL, PRODUCTION, alert_rules

MODEL = "credit-risk"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (scripts/ensure-system-packages.sh installs it: `make system`)")
    return path


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return get_settings({"DRIFTLOOP_HOME": str(tmp_path / "home"), "DRIFTLOOP_TRIGGER_TOKEN": "t0ken"})


def test_promtool_accepts_the_local_prometheus_config_and_rules(settings: Any) -> None:
    promtool = _tool("promtool")
    config = write_prometheus_files(settings)
    checked = _run(promtool, "check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "6 rules found" in checked.stdout + checked.stderr


def test_promtool_accepts_the_production_rules(tmp_path: Path) -> None:
    promtool = _tool("promtool")
    rule = next(f for f in build_files() if f.filename.endswith("prometheusrule.yaml")).documents[0]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    checked = _run(promtool, "check", "rules", str(path))
    assert checked.returncode == 0 and "SUCCESS: 6 rules found" in checked.stdout, checked.stdout + checked.stderr


def _alert(name: str, labels: dict[str, str], value: str = "", features: str = "") -> dict[str, Any]:
    """The expected alert: its labels and its annotations rendered as Prometheus renders the templates (the drifted
    features come from a query the template runs, so the test says what they must be)."""
    rule = next(rule for rule in alert_rules(get_settings({}), LOCAL) if rule.name == name)
    annotations = dict(rule.to_prometheus()["annotations"])
    for key, text in annotations.items():
        if key == DRIFTED_FEATURES_ANNOTATION:
            annotations[key] = features
            continue
        text = text.replace("{{ $value | humanizePercentage }}", value).replace('{{ $value | printf "%.3f" }}', value)
        for label, label_value in labels.items():
            text = text.replace(f"{{{{ $labels.{label} }}}}", label_value)
        annotations[key] = text
    return {"exp_labels": labels, "exp_annotations": annotations}


def _drift_labels(version: str = "3") -> dict[str, str]:
    return {"model": MODEL, "version": version, "severity": "warning", "retrain": "true"}


def _quality_labels(version: str = "3") -> dict[str, str]:
    return {"model": MODEL, "version": version, "severity": "warning", "retrain": "true", "trigger": "quality"}


def _quality_case(live: str, evaluation: str | None, rows: str, expected: list[dict[str, Any]],
                  versions: tuple[str, str] = ("3", "3")) -> dict[str, Any]:  # fmt: skip
    """Live AUC, the champion's evaluation AUC and the labelled rows as the monitor exports them, and what the
    DriftloopLiveQualityDropped rule must say at 3 s (still pending) and 12 s (settled)."""
    series = "{}{{job='driftloop-monitor',model='credit-risk',version='{}'}}"
    inputs = [
        {"series": series.format("driftloop_live_auc", versions[0]), "values": live},
        {"series": series.format("driftloop_live_labelled_rows", versions[0]), "values": rows},
    ]
    if evaluation is not None:
        inputs.append({"series": series.format("driftloop_evaluation_auc", versions[1]), "values": evaluation})
    return {
        "interval": "1s",
        "input_series": inputs,
        "alert_rule_test": [
            {"eval_time": "1s", "alertname": "DriftloopLiveQualityDropped", "exp_alerts": []},
            {"eval_time": "12s", "alertname": "DriftloopLiveQualityDropped", "exp_alerts": expected},
        ],
    }


def _quality_tests() -> list[dict[str, Any]]:
    fired = [_alert("DriftloopLiveQualityDropped", _quality_labels(), "0.620")]
    return [
        # fires: live AUC 0.62 against an evaluation AUC of 0.75 (tolerance 0.05) with 1000 labelled rows
        _quality_case("0.62x30", "0.75x30", "1000x30", fired),
        # quiet: within the tolerance of the evaluation AUC
        _quality_case("0.72x30", "0.75x30", "1000x30", []),
        # quiet: low, but over too few labelled rows to mean anything
        _quality_case("0.62x30", "0.75x30", "50x30", []),
        # quiet: flapping around the threshold never stays low for the smoothing window
        _quality_case(" ".join(["0.62 0.74"] * 15), "0.75x30", "1000x30", []),
        # quiet: the evaluation AUC belongs to another version (a new champion): only the floor applies
        _quality_case("0.62x30", "0.75x30", "1000x30", [], versions=("2", "3")),
        # fires: no evaluation AUC recorded, but live AUC is under the floor (0.6)
        _quality_case("0.55x30", None, "1000x30", [_alert("DriftloopLiveQualityDropped", _quality_labels(), "0.550")]),
    ]


def _tests() -> list[dict[str, Any]]:
    drift = "driftloop_drift_share{job='driftloop-monitor',model='credit-risk',version='3'}"
    feature = "driftloop_feature_drifted{{job='driftloop-monitor',model='credit-risk',version='{}',feature='{}'}}"
    mismatch = "driftloop_payload_schema_mismatch_total{model='credit-risk',column='monthly_income'}"
    stale = "driftloop_monitor_last_success_timestamp_seconds{job='driftloop-monitor',instance='m:1'}"
    dropped = "driftloop_sidecar_dropped_total{job='driftloop-sidecar',instance='s:1',reason='spool_full'}"
    failed = "driftloop_trigger_retrains_finished_total{model='credit-risk',phase='Failed'}"
    mismatch_labels = {"model": MODEL, "severity": "page", "retrain": "false"}
    return [
        {  # drift: fires once the share stayed above the threshold for `for`, with model AND version, and names the
            # features that drifted for that version (sorted), not those of another version or those that did not
            "interval": "1s",
            "input_series": [
                {"series": drift, "values": "0.1 0.1 0.5x20"},
                {"series": feature.format("3", "term"), "values": "0 0 1x20"},
                {"series": feature.format("3", "age"), "values": "0 0 1x20"},
                {"series": feature.format("3", "annual_income"), "values": "0x22"},
                {"series": feature.format("2", "loan_amount"), "values": "1x22"},
            ],
            "alert_rule_test": [
                {"eval_time": "3s", "alertname": "DriftloopFeatureDrift", "exp_alerts": []},  # still pending
                {
                    "eval_time": "10s",
                    "alertname": "DriftloopFeatureDrift",
                    "exp_alerts": [_alert("DriftloopFeatureDrift", _drift_labels(), "50%", "age,term")],
                },
            ],
        },
        {  # quiet: a baseline share below the threshold never fires
            "interval": "1s",
            "input_series": [{"series": drift, "values": "0.1 0.2 0.1 0.25 0.1x30"}],
            "alert_rule_test": [
                {"eval_time": t, "alertname": "DriftloopFeatureDrift", "exp_alerts": []} for t in ("5s", "20s", "30s")
            ],
        },
        {  # flapping: a share that crosses the threshold every other scrape never holds for `for`
            "interval": "1s",
            "input_series": [{"series": drift, "values": " ".join(["0.5 0.1"] * 20)}],
            "alert_rule_test": [
                {"eval_time": f"{t}s", "alertname": "DriftloopFeatureDrift", "exp_alerts": []} for t in range(1, 40, 3)
            ],
        },
        {  # missed scrapes (a busy monitor: staleness markers) are gaps, not recoveries: drift still fires
            "interval": "1s",
            "input_series": [{"series": drift, "values": "0.5 0.5 stale 0.5 stale 0.5 0.5 stale 0.5 0.5 stale 0.5x10"}],
            "alert_rule_test": [
                {
                    "eval_time": "12s",
                    "alertname": "DriftloopFeatureDrift",
                    "exp_alerts": [_alert("DriftloopFeatureDrift", _drift_labels(), "50%")],
                },
            ],
        },
        {  # schema mismatch: fires when the series appears, quiet again once no new mismatch came for the window
            "interval": "1s",
            "input_series": [{"series": mismatch, "values": "_x5 3x200"}],
            "alert_rule_test": [
                {"eval_time": "3s", "alertname": "DriftloopPayloadSchemaMismatch", "exp_alerts": []},
                {
                    "eval_time": "7s",
                    "alertname": "DriftloopPayloadSchemaMismatch",
                    "exp_alerts": [_alert("DriftloopPayloadSchemaMismatch", mismatch_labels)],
                },
                {"eval_time": "150s", "alertname": "DriftloopPayloadSchemaMismatch", "exp_alerts": []},
            ],
        },
        {  # monitor stale: a timestamp that keeps moving is quiet; one stuck for > stale_after (+ for) fires
            "interval": "1s",
            "input_series": [
                {"series": stale, "values": "0x200"},
                {"series": stale.replace("m:1", "m:2"), "values": "0+1x200"},
            ],
            "alert_rule_test": [
                {"eval_time": "30s", "alertname": "DriftloopMonitorStale", "exp_alerts": []},
                {
                    "eval_time": "100s",
                    "alertname": "DriftloopMonitorStale",
                    "exp_alerts": [
                        _alert(
                            "DriftloopMonitorStale",
                            {"job": "driftloop-monitor", "instance": "m:1", "severity": "warning", "retrain": "false"},
                        )
                    ],
                },
            ],
        },
        {  # sidecar drops: quiet while the counter is flat, fires when it grows
            "interval": "1s",
            "input_series": [{"series": dropped, "values": "0x20 1+1x10"}],
            "alert_rule_test": [
                {"eval_time": "15s", "alertname": "DriftloopSidecarDroppingPayloads", "exp_alerts": []},
                {
                    "eval_time": "25s",
                    "alertname": "DriftloopSidecarDroppingPayloads",
                    "exp_alerts": [
                        _alert(
                            "DriftloopSidecarDroppingPayloads",
                            {
                                "job": "driftloop-sidecar",
                                "instance": "s:1",
                                "reason": "spool_full",
                                "severity": "warning",
                                "retrain": "false",
                            },
                        )
                    ],
                },
            ],
        },
        {  # retrain failing: a failed drift retrain pages
            "interval": "1s",
            "input_series": [{"series": failed, "values": "0x10 1x30"}],
            "alert_rule_test": [
                {"eval_time": "5s", "alertname": "DriftloopRetrainFailing", "exp_alerts": []},
                {
                    "eval_time": "15s",
                    "alertname": "DriftloopRetrainFailing",
                    "exp_alerts": [
                        _alert("DriftloopRetrainFailing", {"model": MODEL, "severity": "page", "retrain": "false"})
                    ],
                },
            ],
        },
    ]


def test_promtool_unit_tests_prove_each_rule_fires_and_stays_quiet(settings: Any, tmp_path: Path) -> None:
    promtool = _tool("promtool")
    write_prometheus_files(settings)
    rules = settings.home / "prometheus" / "rules.yml"
    tests = tmp_path / "rules_test.yml"
    cases = _tests() + _quality_tests()
    tests.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1s", "tests": cases}))
    result = _run(promtool, "test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_test_catches_a_wrong_expectation(settings: Any, tmp_path: Path) -> None:
    """The unit tests above can fail: the same harness with the drift alert expected on baseline input fails."""
    promtool = _tool("promtool")
    write_prometheus_files(settings)
    wrong = _tests()[1]
    wrong["alert_rule_test"] = [
        {
            "eval_time": "20s",
            "alertname": "DriftloopFeatureDrift",
            "exp_alerts": [_alert("DriftloopFeatureDrift", _drift_labels(), "50%")],
        }
    ]
    tests = tmp_path / "wrong_test.yml"
    rules = str(settings.home / "prometheus" / "rules.yml")
    tests.write_text(yaml.safe_dump({"rule_files": [rules], "evaluation_interval": "1s", "tests": [wrong]}))
    assert _run(promtool, "test", "rules", str(tests)).returncode != 0


@pytest.mark.parametrize("where", ["local", "manifest"])
def test_amtool_accepts_the_alertmanager_configs(settings: Any, where: str) -> None:
    amtool = _tool("amtool")
    path = write_alertmanager_files(settings) if where == "local" else default_out_dir() / "alertmanager.yaml"
    checked = _run(amtool, "check-config", str(path))
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["alertname=DriftloopFeatureDrift", "retrain=true", "severity=warning"], "driftloop-trigger"),
        (["alertname=DriftloopLiveQualityDropped", "retrain=true", "trigger=quality"], "driftloop-trigger"),
        (["alertname=DriftloopPayloadSchemaMismatch", "retrain=false", "severity=page"], "oncall,driftloop-trigger"),
    ],
)
def test_routing_sends_retrains_to_the_receiver_and_pages_to_oncall(
    settings: Any, labels: list[str], receivers: str
) -> None:
    amtool = _tool("amtool")
    config = write_alertmanager_files(settings)
    routed = _run(amtool, "config", "routes", "test", f"--config.file={config}", *labels)
    assert routed.returncode == 0, routed.stdout + routed.stderr
    assert routed.stdout.strip() == receivers


def test_the_local_token_file_is_private_and_not_on_the_command_line(settings: Any) -> None:
    config = yaml.safe_load(write_alertmanager_files(settings).read_text())
    credentials = Path(config["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"])
    assert credentials.read_text() == "t0ken" and credentials.stat().st_mode & 0o077 == 0


def test_rules_carry_labels_and_a_runbook_into_docs_alerting() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "alerting.md").read_text()
    for profile in (LOCAL, PRODUCTION):
        for rule in alert_rules(get_settings({}), profile):
            rendered = rule.to_prometheus()
            assert rendered["labels"]["severity"] in {"warning", "page"}
            anchor = rendered["annotations"]["runbook_url"].split("#")[1]
            assert f"### {rule.name}" in docs and anchor == rule.name.lower()
    retraining = [rule.name for rule in alert_rules(get_settings({}), LOCAL) if rule.retrain]
    assert retraining == ["DriftloopFeatureDrift", "DriftloopLiveQualityDropped"]  # the schema alert never retrains


def test_the_committed_monitoring_manifests_are_fresh_and_valid() -> None:
    files = build_files()
    assert validate_files(files) == 4  # 1 PrometheusRule + 3 ServiceMonitors against the operator's CRDs
    assert diff_files(files, default_out_dir()) == "", "run `driftloop alerting` and commit manifests/monitoring/"
    assert build_files() == files  # deterministic


def test_a_schema_violation_in_a_manifest_is_reported(tmp_path: Path) -> None:
    from driftloop.errors import ValidationError

    files = build_files()
    monitor = files[1].documents[0]
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(ValidationError) as caught:
        validate_files(files)
    assert "intervall" in str(caught.value.issues[0])
