"""The canary analysis has one source (monitors/deployer/analysis.py): the committed AnalysisTemplate is generated
from it, the deployer judges with it, each of its four conditions can fail a canary, and an empty result is neither
a panic nor a pass — in the generated PromQL (run by promtool) and in the local judge."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from driftloop.config import get_settings
from monitors.deployer import _template
from monitors.deployer._servers import MonitorReading
from monitors.deployer.analysis import NO_DATA, conditions, judge, local_values
from monitors.drift._compute import ColumnDrift, DriftResult
from monitors.drift._metrics import MonitorMetrics
from workflows.gitops.validate import validate_documents

MODEL = "credit-risk"
DEFAULTS = get_settings({})
CHECKS = conditions(get_settings({"DRIFTLOOP_DEPLOYER_DRIFT_GATE": "gate"}))  # all four gating
DEFAULT_CHECKS = conditions(DEFAULTS)  # drift-share a dry run
NAMES = ("error-rate", "p99-latency", "drift-share", "payload-schema-mismatch")
GOOD = {"error-rate": 0.0, "p99-latency": 0.05, "drift-share": 0.0, "payload-schema-mismatch": 0.0}
BAD = {"error-rate": 0.2, "p99-latency": 0.9, "drift-share": 0.5, "payload-schema-mismatch": 3.0}


def test_the_committed_template_is_generated_from_the_conditions_and_validates() -> None:
    text = _template.render()
    assert _template.diff_template(text, _template.default_path()) == "", "run `driftloop alerting` and commit"
    document = yaml.safe_load(text)
    assert validate_documents([document], "analysis-template.yaml") == []
    metrics = {m["name"]: m for m in document["spec"]["metrics"]}
    assert tuple(metrics) == NAMES == tuple(c.name for c in CHECKS)
    for check in CHECKS:
        metric = metrics[check.name]
        assert metric["provider"]["prometheus"]["query"].endswith(f"or on() vector({NO_DATA:g})")
        assert metric["successCondition"].startswith("len(result) > 0 && result[0] >= 0 && ")
        assert metric["inconclusiveLimit"] == 0 and metric["failureLimit"] == 0
    assert metrics["error-rate"]["failureCondition"].endswith(f"> {DEFAULTS.deployer_max_error_rate:g}")
    assert metrics["p99-latency"]["failureCondition"].endswith(f"> {DEFAULTS.deployer_max_p99:g}")
    assert metrics["drift-share"]["failureCondition"].endswith(f">= {DEFAULTS.monitor_drift_share:g}")
    assert document["spec"]["dryRun"] == [{"metricName": "drift-share"}]  # measured, not gating, by default
    gated = _template.analysis_template(get_settings({"DRIFTLOOP_DEPLOYER_DRIFT_GATE": "gate"}))
    assert "dryRun" not in gated["spec"] and validate_documents([gated], "gated") == []


def test_drift_share_is_reported_but_does_not_gate_by_default() -> None:
    verdict = judge(DEFAULT_CHECKS, GOOD | {"drift-share": BAD["drift-share"]})
    assert verdict.outcome == "pass" and verdict.failed == []
    assert "drift-share 0.5 (violates < 0.3) [dry-run: not gating]" in verdict.reason
    assert judge(DEFAULT_CHECKS, GOOD | {"drift-share": None}).outcome == "pass"  # nor waits for it
    assert judge(DEFAULT_CHECKS, GOOD | {"error-rate": BAD["error-rate"]}).failed == ["error-rate"]


def test_thresholds_are_settings_read_by_the_template_and_the_judge() -> None:
    strict = get_settings({"DRIFTLOOP_DEPLOYER_MAX_ERROR_RATE": "0.001", "DRIFTLOOP_DEPLOYER_MAX_P99": "0.02",
                           "DRIFTLOOP_DEPLOYER_MIN_REQUESTS": "5", "DRIFTLOOP_DEPLOYER_MIN_P99_REQUESTS": "5"})  # fmt: skip
    checks = conditions(strict)
    metrics = {m["name"]: m for m in _template.analysis_template(strict)["spec"]["metrics"]}
    assert metrics["error-rate"]["failureCondition"].endswith("> 0.001")
    assert ">= 5)" in metrics["p99-latency"]["provider"]["prometheus"]["query"]
    default = {m["name"]: m for m in _template.analysis_template(get_settings({}))["spec"]["metrics"]}
    assert ">= 20)" in default["error-rate"]["provider"]["prometheus"]["query"]
    assert ">= 100)" in default["p99-latency"]["provider"]["prometheus"]["query"]  # a p99 of 20 is their maximum
    assert judge(CHECKS, GOOD | {"p99-latency": 0.05}).outcome == "pass"
    assert judge(checks, GOOD | {"p99-latency": 0.05}).failed == ["p99-latency"]


@pytest.mark.parametrize("name", NAMES)
def test_each_condition_alone_fails_the_canary_and_names_itself(name: str) -> None:
    verdict = judge(CHECKS, GOOD | {name: BAD[name]})
    assert verdict.outcome == "fail" and verdict.failed == [name]
    assert verdict.reason.startswith(name) and "violates" in verdict.reason


@pytest.mark.parametrize("name", NAMES)
def test_each_condition_without_data_is_inconclusive_never_a_pass(name: str) -> None:
    for missing in (None, NO_DATA, float("nan")):
        verdict = judge(CHECKS, GOOD | {name: missing})
        assert verdict.outcome == "inconclusive" and name in verdict.reason, (name, missing)
    assert judge(CHECKS, {k: v for k, v in GOOD.items() if k != name}).outcome == "inconclusive"  # absent too


def test_limits_are_inclusive_except_the_drift_share_like_the_monitors_dataset_drift() -> None:
    at_limit = {c.name: c.limit for c in CHECKS}
    outcomes = {m.condition: m.outcome for m in judge(CHECKS, at_limit).measurements}
    assert outcomes == {"error-rate": "pass", "p99-latency": "pass", "drift-share": "fail",
                        "payload-schema-mismatch": "pass"}  # fmt: skip


def _monitor(share: float | None = None, mismatches: int = 0, rows: int | None = 600) -> MonitorReading:
    """The real monitor's metrics, exported and parsed back as the deployer reads them."""
    metrics = MonitorMetrics(MODEL)
    if share is not None:
        columns = {f"f{i}": ColumnDrift(f"f{i}", "num", "ks", 0.01, 0.05, i < share * 10, 600) for i in range(10)}
        metrics.publish("7", DriftResult(columns, 1000, 600, DEFAULTS.monitor_drift_share))
    elif rows is not None:
        metrics.publish_empty(rows)
    if mismatches:
        metrics.schema_mismatch.labels(MODEL, "age").inc(mismatches)
    return MonitorReading.parse(generate_latest(metrics.registry).decode(), MODEL)


def test_the_local_values_come_from_the_sidecar_window_and_the_monitors_metrics() -> None:
    quiet = _monitor(rows=0)
    values, notes = local_values(20, (100, 0, 0.01), "7", quiet, quiet)
    assert judge(CHECKS, values, notes).outcome == "pass" and "not scored yet" in notes["drift-share"]
    values, _ = local_values(20, (100, 5, 0.01), "7", quiet, quiet)
    assert judge(CHECKS, values).failed == ["error-rate"]
    values, _ = local_values(20, (100, 0, 0.8), "7", quiet, quiet)
    assert judge(CHECKS, values).failed == ["p99-latency"]
    values, _ = local_values(20, (100, 0, 0.01), "7", quiet, _monitor(share=0.5))
    assert judge(CHECKS, values).failed == ["drift-share"]
    values, _ = local_values(20, (100, 0, 0.01), "8", quiet, _monitor(share=0.5))  # another version's: stale
    assert judge(CHECKS, values).outcome == "pass"
    values, _ = local_values(20, (100, 0, 0.01), "7", _monitor(mismatches=2), _monitor(mismatches=5))
    assert judge(CHECKS, values).failed == ["payload-schema-mismatch"] and values["payload-schema-mismatch"] == 3
    values, notes = local_values(20, (5, 0, 0.01), "7", quiet, quiet)  # too few requests: no verdict
    verdict = judge(CHECKS, values, notes)
    assert verdict.outcome == "inconclusive" and "5 canary requests, need 20" in verdict.reason
    values, notes = local_values(20, (50, 0, 0.9), "7", quiet, quiet, min_p99_requests=100)  # one slow of 50
    verdict = judge(CHECKS, values, notes)
    assert values["error-rate"] == 0 and verdict.outcome == "inconclusive", verdict.reason
    assert "p99-latency: no data [50 canary requests, a p99 needs 100]" in verdict.reason
    values, _ = local_values(20, (50, 3, 0.9), "7", quiet, quiet, min_p99_requests=100)  # errors need no p99
    assert judge(CHECKS, values).failed == ["error-rate"]
    values, _ = local_values(20, (100, 0, 0.9), "7", quiet, quiet, min_p99_requests=100)
    assert judge(CHECKS, values).failed == ["p99-latency"]
    values, notes = local_values(20, (100, 0, 0.01), "7", None, None)  # the monitor does not answer
    verdict = judge(CHECKS, values, notes)
    assert verdict.outcome == "inconclusive" and "the monitor does not report" in verdict.reason
    gone = MonitorReading.parse("", MODEL)  # answers, but exports nothing of this model
    assert judge(CHECKS, local_values(20, (100, 0, 0.01), "7", gone, gone)[0]).outcome == "inconclusive"


CANARY = "6d4f9c7b8"  # pragma: allowlist secret (a pod-template hash label)
_SIDECAR = f'namespace="prod", rollouts_pod_template_hash="{CANARY}"'


def _series(requests_per_min: float, errors_per_min: float, slow: bool, drift: float | None,
            mismatches_per_min: float, monitor: bool) -> list[dict[str, str]]:  # fmt: skip
    """promtool input series: 10 minutes of one canary pod and, when ``monitor``, the drift monitor."""

    def counter(per_min: float) -> str:
        return f"0+{per_min:g}x10"

    series = []
    if requests_per_min:
        series += [
            {"series": f'driftloop_sidecar_requests_total{{{_SIDECAR}, code="200"}}',
             "values": counter(requests_per_min - errors_per_min)},
            {"series": f'driftloop_sidecar_requests_total{{{_SIDECAR}, code="503"}}', "values": counter(errors_per_min)},
        ]  # fmt: skip
        fast = requests_per_min * (0.05 if slow else 1.0)
        for le, per_min in (("0.1", fast), ("0.5", fast), ("1", requests_per_min), ("+Inf", requests_per_min)):
            series.append({"series": f'driftloop_sidecar_upstream_latency_seconds_bucket{{{_SIDECAR}, le="{le}"}}',
                           "values": counter(per_min)})  # fmt: skip
    if monitor:
        series.append({"series": f'driftloop_window_rows{{model="{MODEL}"}}', "values": "600x10"})
        if drift is not None:
            series.append({"series": f'driftloop_drift_share{{model="{MODEL}", version="7"}}', "values": f"{drift}x10"})
        series.append({"series": f'driftloop_payload_schema_mismatch_total{{model="{MODEL}", column="age"}}',
                       "values": counter(mismatches_per_min)})  # fmt: skip
    return series


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is installed by `make system`")
def test_the_generated_promql_turns_empty_results_into_no_data_and_bad_canaries_into_failures(tmp_path: Path) -> None:
    """The template's queries, evaluated by Prometheus' own engine (``promtool test rules``) on planted series,
    classified by the template's own comparison: pass, fail, or -1 (no data: Inconclusive)."""
    cases = {  # name -> (series, expected outcome of each condition, in NAMES order)
        "healthy": (_series(60, 0, False, 0.1, 0, True), ("pass", "pass", "pass", "pass")),
        "bad": (_series(60, 6, True, 0.5, 3, True), ("fail", "fail", "fail", "fail")),
        "nothing": (_series(0, 0, False, None, 0, False), ("no-data",) * 4),  # no canary traffic, no monitor
        "quiet": (_series(5, 0, False, None, 0, True), ("no-data", "no-data", "pass", "pass")),  # too few rows
    }
    tests = []
    for series, expected in cases.values():
        exprs = []
        for check, outcome in zip(CHECKS, expected, strict=True):
            q = "(" + check.promql.replace("{{args.namespace}}", "prod").replace("{{args.canary-hash}}", CANARY) + ")"
            ok, bad = ("<", ">=") if check.strict else ("<=", ">")
            exprs.append({"pass": f"({q} >= bool 0) * ({q} {ok} bool {check.limit:g})",
                          "fail": f"{q} {bad} bool {check.limit:g}",
                          "no-data": f"{q} == bool {NO_DATA:g}"}[outcome])  # fmt: skip
        tests.append({"interval": "1m", "input_series": series,
                      "promql_expr_test": [{"expr": e, "eval_time": "8m", "exp_samples": [{"labels": "{}", "value": 1}]}
                                           for e in exprs]})  # fmt: skip
    path = tmp_path / "analysis-test.yaml"
    path.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m", "tests": tests}, width=10_000))
    done = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("DRIFTLOOP_DEPLOYER_DRIFT_GATE", "maybe", "is not one of dry-run, gate"),
        ("DRIFTLOOP_DEPLOYER_MAX_SCHEMA_MISMATCH", "-1", "is not a non-negative number"),
        ("DRIFTLOOP_DEPLOYER_MAX_ERROR_RATE", "0", "is not a positive number"),
        ("DRIFTLOOP_DEPLOYER_MIN_REQUESTS", "many", "is not a positive integer"),
        ("DRIFTLOOP_DEPLOYER_MIN_P99_REQUESTS", "0", "is not a positive integer"),
    ],
)
def test_bad_thresholds_are_refused_naming_the_variable(variable: str, value: str, problem: str) -> None:
    from driftloop.errors import ConfigError

    with pytest.raises(ConfigError, match=f"{variable}={value!r} {problem}"):
        get_settings({variable: value})
