"""The AlertmanagerConfig manifest is checked for real although ../shared has no CRD for it: strictly translated to
the Alertmanager configuration the operator generates, then parsed by ``amtool check-config``. Planted errors in
each layer are named, and the translation routes alerts exactly as the committed raw alertmanager.yaml does."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.config import repo_root
from workflows.gitops.alertmanagerconfig import check_alertmanager_config, to_alertmanager_config
from workflows.gitops.validate import UNVALIDATED_KINDS, validate_documents

MONITORING = repo_root() / "manifests" / "monitoring"


def _committed() -> dict[str, Any]:
    return dict(yaml.safe_load((MONITORING / "driftloop.alertmanagerconfig.yaml").read_text()))


def _amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        pytest.skip("amtool is not installed (`make system` installs prometheus-alertmanager)")
    return path


def test_the_committed_manifest_is_checked_and_passes() -> None:
    _amtool()
    doc = _committed()
    assert not any(kind == "AlertmanagerConfig" for _, kind in UNVALIDATED_KINDS)
    assert validate_documents([doc], "driftloop.alertmanagerconfig.yaml") == []
    config, issues = to_alertmanager_config(doc, "x")
    assert issues == []
    route = config["route"]["routes"][0]
    assert route["receiver"] == "driftloop/driftloop/driftloop-trigger" and route["continue"] is True
    assert 'namespace="driftloop"' in route["matchers"]
    webhook = config["receivers"][1]["webhook_configs"][0]
    assert webhook["http_config"]["authorization"]["credentials_file"].endswith("/driftloop-trigger-token/token")


def _planted(edit: Any) -> list[str]:
    doc = copy.deepcopy(_committed())
    edit(doc["spec"])
    return [f"{issue.path}: {issue.message}" for issue in check_alertmanager_config(doc, "planted")]


@pytest.mark.parametrize(
    ("edit", "named"),
    [  # the strict translation (the CRD's job)
        (lambda s: s["route"].update(groupWiat="30s"), "spec.route: unknown field(s) 'groupWiat'"),
        (lambda s: s["receivers"][0]["webhookConfigs"][0].update(sendResolved="yes"),
         "spec.receivers[0].webhookConfigs[0].sendResolved: must be bool"),
        (lambda s: s["route"]["routes"][0]["matchers"][0].update(matchType="=="), "matchType: '==' is not one of"),
        (lambda s: s["receivers"][0]["webhookConfigs"][0]["httpConfig"]["authorization"].update(
            credentials={"name": "driftloop-trigger-token"}), "must name a Secret and a key"),
        (lambda s: s["receivers"].append({"name": "oncall"}), "receiver 'oncall' is defined twice"),
        (lambda s: s["receivers"][1].update(slackConfigs=[{"channel": "#x"}]), "unknown field(s) 'slackConfigs'"),
        # Alertmanager's own parser (amtool check-config)
        (lambda s: s["route"].update(groupWait="30 seconds"), "amtool check-config refused it"),
        (lambda s: s["route"]["routes"][1].update(receiver="nobody"), "undefined receiver"),
        (lambda s: s["route"]["routes"][1]["matchers"][0].update(value="Driftloop.*("), "amtool check-config"),
    ],
)  # fmt: skip
def test_planted_errors_are_named(edit: Any, named: str) -> None:
    _amtool()
    issues = _planted(edit)
    assert any(named in issue for issue in issues), issues


def _routes(amtool: str, config: Path, *labels: str) -> str:
    result = subprocess.run([amtool, "config", "routes", "test", f"--config.file={config}", *labels],
                            capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    return result.stdout.strip()


def test_it_routes_like_the_raw_alertmanager_config(tmp_path: Path) -> None:
    amtool = _amtool()
    translated = tmp_path / "translated.yml"
    translated.write_text(yaml.safe_dump(to_alertmanager_config(_committed(), "x")[0]))
    raw = MONITORING / "alertmanager.yaml"
    for alert in (["alertname=DriftloopFeatureDrift", "severity=warning"],
                  ["alertname=DriftloopPayloadSchemaMismatch", "severity=page"],
                  ["alertname=Unrelated", "severity=page"]):  # fmt: skip
        expected = _routes(amtool, raw, *alert)
        got = _routes(amtool, translated, *alert, "namespace=driftloop")
        assert got.replace("driftloop/driftloop/", "") == expected, (alert, got, expected)


def test_every_cluster_alert_reaches_the_receiver_through_the_operator_scoping(tmp_path: Path) -> None:
    """The operator only routes alerts labelled with the AlertmanagerConfig's namespace: every rule of the
    committed PrometheusRule must carry it, or its alerts would fall through to the operator's null receiver."""
    amtool = _amtool()
    translated = tmp_path / "translated.yml"
    translated.write_text(yaml.safe_dump(to_alertmanager_config(_committed(), "x")[0]))
    rule_file = yaml.safe_load((MONITORING / "driftloop.prometheusrule.yaml").read_text())
    rules = [rule for group in rule_file["spec"]["groups"] for rule in group["rules"]]
    assert len(rules) == 6
    for rule in rules:
        labels = [f"alertname={rule['alert']}", *(f"{k}={v}" for k, v in rule["labels"].items())]
        receivers = _routes(amtool, translated, *labels).split(",")
        assert "driftloop/driftloop/driftloop-trigger" in receivers, (rule["alert"], receivers)
        assert ("driftloop/driftloop/oncall" in receivers) == (rule["labels"]["severity"] == "page")
