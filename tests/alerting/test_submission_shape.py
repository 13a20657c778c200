"""The retraining Workflow the receiver submits, built from the compiled manifest (no server needed)."""

from __future__ import annotations

import pytest

from driftloop.config import get_settings
from driftloop.errors import ConfigError
from monitors.receiver._submit import RetrainSubmitter, incident_key, workflow_name

ALERT = {
    "fingerprint": "abc123",
    "labels": {"alertname": "DriftloopFeatureDrift", "model": "credit-risk", "version": "4"},
    "generator_url": "http://prometheus/graph?g0.expr=x",
    "external_url": "http://am:9093",
}


def test_the_workflow_names_the_alert_and_takes_extra_parameters() -> None:
    settings = get_settings({"DRIFTLOOP_TRIGGER_PARAMETERS": "epochs=2, dataset=/data/recent.parquet"})
    key = incident_key("credit-risk", "abc123", "2026-12-01T00:00:00+00:00")
    workflow = RetrainSubmitter(settings).build(key, "credit-risk", ALERT, ["age", "annual_income"])
    assert workflow["metadata"]["name"] == workflow_name("credit-risk", key) == workflow_name("credit-risk", key)
    assert "generateName" not in workflow["metadata"]
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "training"}
    parameters = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert parameters == {"model-name": "credit-risk", "trigger": "drift", "trigger-ref": "abc123", "epochs": "2",
                          "dataset": "/data/recent.parquet", "drifted-features": '["age","annual_income"]',
                          "approval": "required", "approval-timeout": "24h"}  # fmt: skip
    annotations = workflow["metadata"]["annotations"]
    assert annotations["driftloop.io/drifted-features"] == "age,annual_income"
    assert annotations["driftloop.io/alertmanager-url"].startswith("http://am:9093/#/alerts?filter=")


def test_the_trigger_keeps_its_own_parameters_and_rejects_malformed_ones() -> None:
    settings = get_settings({"DRIFTLOOP_TRIGGER_PARAMETERS": "trigger=manual,trigger-ref=x"})
    workflow = RetrainSubmitter(settings).build("k", "credit-risk", ALERT, [])
    parameters = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert parameters["trigger"] == "drift" and parameters["trigger-ref"] == "abc123"
    with pytest.raises(ConfigError) as caught:
        RetrainSubmitter(get_settings({"DRIFTLOOP_TRIGGER_PARAMETERS": "epochs"}))
    assert "DRIFTLOOP_TRIGGER_PARAMETERS" in caught.value.message


def test_distinct_incidents_get_distinct_valid_names() -> None:
    names = {workflow_name("Credit_Risk", incident_key("m", f"f{i}", "t")) for i in range(100)}
    assert len(names) == 100
    assert all(len(n) <= 63 and n.startswith("credit-risk-retrain-") for n in names)


def test_the_quality_alert_starts_a_retrain_with_trigger_quality_that_the_pipeline_accepts() -> None:
    from driftloop.registry_contract import TRIGGERS
    from monitors.receiver._rules import LOCAL, alert_rules

    rule = next(r for r in alert_rules(get_settings({}), LOCAL) if r.name == "DriftloopLiveQualityDropped")
    labels = {**rule.to_prometheus()["labels"], "alertname": rule.name, "model": "credit-risk", "version": "4"}
    workflow = RetrainSubmitter(get_settings({})).build("k", "credit-risk", {**ALERT, "labels": labels}, [])
    parameters = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert parameters["trigger"] == "quality" and parameters["trigger-ref"] == "abc123"
    assert workflow["metadata"]["labels"]["driftloop.io/trigger"] == "quality" and "quality" in TRIGGERS
    import yaml

    from driftloop.config import repo_root

    template = yaml.safe_load((repo_root() / "manifests/workflows/training.workflowtemplate.yaml").read_text())
    trigger = next(p for p in template["spec"]["arguments"]["parameters"] if p["name"] == "trigger")
    assert trigger["enum"] == list(TRIGGERS)  # Argo refuses a value outside the compiled enum


def test_register_refuses_a_trigger_that_is_not_one() -> None:
    from driftloop.errors import DataContractError
    from workflows.steps.register import register

    with pytest.raises(DataContractError) as caught:
        register("credit-risk", "run", "snap", "alert", "fp", "sha", "wf", "uid")
    assert "quality" in (caught.value.hint or "")


def test_the_in_flight_selector_finds_drift_and_quality_retrains_only() -> None:
    """The receiver asks the Argo Server for running retrains with one set-based selector; the engine (and
    Kubernetes) read it the same way."""
    from workflows.engine._selectors import matches_labels, parse_label_selector

    captured: list[str] = []

    class Client:
        def list_workflows(self, label_selector: str) -> list[dict[str, object]]:
            captured.append(label_selector)
            return [{"metadata": {"name": "credit-risk-retrain-1"}, "status": {"phase": "Running"}}]

    submitter = RetrainSubmitter(get_settings({}))
    submitter.client = Client()  # type: ignore[assignment]
    assert submitter.in_flight("credit-risk") == "credit-risk-retrain-1"
    requirements = parse_label_selector(captured[0])
    labels = {"driftloop.io/model": "credit-risk"}
    assert [matches_labels({**labels, "driftloop.io/trigger": t}, requirements)
            for t in ("drift", "quality", "manual", "schedule")] == [True, True, False, False]  # fmt: skip


@pytest.mark.parametrize(
    ("environments", "expected"), [(None, "required"), ("production", "required"), ("", "not-required")]
)
def test_a_retrain_carries_the_approval_policy_of_the_settings(environments: str | None, expected: str) -> None:
    """The retrain names the training template, which declares `approval` (default required): the receiver must
    send the policy itself, or a stack configured with no approval environments waits for a person forever."""
    env = {"DRIFTLOOP_APPROVAL_TIMEOUT": "90m"} | (
        {} if environments is None else {"DRIFTLOOP_APPROVAL_ENVIRONMENTS": environments}
    )
    workflow = RetrainSubmitter(get_settings(env)).build("k", "credit-risk", ALERT, [])
    parameters = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert parameters["approval"] == expected
    assert parameters["approval-timeout"] == "90m"
