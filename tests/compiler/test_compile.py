"""`driftloop compile`: valid, deterministic, up to date, and carrying every field the cluster needs."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hera.workflows import WorkflowTemplate

from driftloop.cli import cli
from driftloop.errors import ValidationError
from driftloop.registry_contract import TRIGGERS
from workflows.compiler._build import Manifest, build_manifests, default_out_dir, diff_manifests
from workflows.pipelines import BuildOptions, Pipeline, _registry, get_pipeline
from workflows.pipelines.runtime import GpuSpec
from workflows.pipelines.training import build_training
from workflows.spec.lint import lint_paths

COMMITTED = default_out_dir()


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    return build_manifests()


@pytest.fixture(scope="module")
def template(manifests: list[Manifest]) -> dict[str, Any]:
    return next(m.documents[0] for m in manifests if m.filename == "training.workflowtemplate.yaml")


def _templates(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in spec["templates"]}


def test_committed_manifests_are_up_to_date_and_lint_clean(manifests: list[Manifest]) -> None:
    assert diff_manifests(manifests, COMMITTED) == ""
    assert lint_paths([COMMITTED], strict_templates=True) == []


def test_compile_ignores_the_callers_environment(monkeypatch: pytest.MonkeyPatch, manifests: list[Manifest]) -> None:
    for name, value in {
        "IMAGE": "me/mine:dev",
        "NAMESPACE": "elsewhere",
        "MODEL_NAME": "fraud",
        "ARTIFACT_REPOSITORY": "a:b",
    }.items():
        monkeypatch.setenv(f"DRIFTLOOP_{name}", value)
    again = build_manifests()
    assert [m.render() for m in again] == [m.render() for m in manifests]
    assert "me/mine" not in "".join(m.render() for m in again)


def test_check_passes_fresh_and_fails_after_a_hand_edit(tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    runner = CliRunner()
    assert runner.invoke(cli, ["compile", "--out", str(out)]).exit_code == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert runner.invoke(cli, ["compile", "--out", str(out)]).exit_code == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # deterministic, byte for byte
    assert first == {p.name: p.read_bytes() for p in COMMITTED.glob("*.yaml")}
    ok = runner.invoke(cli, ["compile", "--check", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "up to date" in ok.output

    edited = out / "training.workflowtemplate.yaml"
    edited.write_text(edited.read_text().replace("limit: 3", "limit: 30"))
    stale = runner.invoke(cli, ["compile", "--check", "--out", str(out)])
    assert stale.exit_code == 1
    assert "-      limit: 30\n" in stale.output and "+      limit: 3\n" in stale.output
    assert "are stale" in stale.output


def test_check_reports_missing_and_orphaned_files(tmp_path: Path) -> None:
    out = tmp_path / "m"
    shutil.copytree(COMMITTED, out)
    (out / "training.cronworkflow.yaml").unlink()
    orphan = out / "old.workflowtemplate.yaml"
    orphan.write_text((out / "training.workflowtemplate.yaml").read_text())
    result = CliRunner().invoke(cli, ["compile", "--check", "--out", str(out)])
    assert result.exit_code == 1
    assert "--- /dev/null" in result.output and "training.cronworkflow.yaml (compiled)" in result.output
    assert "old.workflowtemplate.yaml (on disk)" in result.output
    template = out / "training.workflowtemplate.yaml"
    os.utime(template, (1_000_000_000, 1_000_000_000))
    written = CliRunner().invoke(cli, ["compile", "--out", str(out)])
    assert written.exit_code == 0 and not orphan.exists()
    # it says what it wrote, and leaves the files it did not change alone (mtime too, so make sees nothing new)
    assert f"created {out / 'training.cronworkflow.yaml'} (CronWorkflow training-scheduled)" in written.output
    assert f"unchanged {template} (WorkflowTemplate training)" in written.output
    assert template.stat().st_mtime == 1_000_000_000
    retrain = out / "training.retrain.workflow.yaml"
    retrain.write_text(retrain.read_text().replace("value: drift", "value: manual"))
    rewritten = CliRunner().invoke(cli, ["compile", "--out", str(out)])
    assert f"wrote {retrain} (Workflow credit-risk-retrain-*): +1 -1 lines" in rewritten.output


def test_tasks_follow_the_contract(template: dict[str, Any]) -> None:
    """Derived from the pipeline itself: adding a step to it needs no edit here."""
    spec = template["spec"]
    steps = [s for s in get_pipeline("training").steps(template) if s.name != spec["onExit"]]
    dag = {t["name"]: t for t in _templates(spec)["training"]["dag"]["tasks"]}
    core = ["validate-data", "build-training-set", "train", "evaluate", "register", "promote"]
    assert [name for name in dag if name in core] == core
    assert set(dag) == {s.name for s in steps} | {"approval"}  # the approval task is a suspend, not a step
    chain = [*core[:-1], "approval", "promote"]
    for previous, step in itertools.pairwise(chain):
        assert dag[step]["depends"] == previous  # the training core is a chain (each gate before the next)
    assert dag["promote"]["when"] == "{{tasks.evaluate.outputs.parameters.passed}} == true"
    # a person approves before promote, when the run requires it; nobody deciding within the timeout rejects
    assert dag["approval"]["when"] == (
        "{{tasks.evaluate.outputs.parameters.passed}} == true && '{{workflow.parameters.approval}}' == 'required'"
    )
    assert _templates(spec)["approval"] == {
        "name": "approval",
        "suspend": {"duration": "{{workflow.parameters.approval-timeout}}"},
    }
    for step in steps:
        container = _templates(spec)[step.name]["container"]
        assert container["command"] == ["python", "-m", step.module]
        assert container["args"][0::2] == [f"--{p.name}" for p in step.inputs]
        assert container["envFrom"] == [{"configMapRef": {"name": "driftloop-config"}}]
        assert set(container["resources"]["requests"]) >= {"cpu", "memory"}
        assert set(container["resources"]["limits"]) >= {"cpu", "memory"}
        outputs = _templates(spec)[step.name].get("outputs", {}).get("parameters", [])
        assert [o["valueFrom"]["path"] for o in outputs] == [f"/tmp/outputs/{p.name}" for p in step.outputs]
    for consumer in ("train", "evaluate"):
        (artifact,) = dag[consumer]["arguments"]["artifacts"]
        assert artifact == {
            "name": "training-set",
            "from": "{{tasks.build-training-set.outputs.artifacts.training-set}}",
        }


def test_gpu_tasks_get_everything_a_gpu_pod_needs(template: dict[str, Any]) -> None:
    templates = _templates(template["spec"])
    for name in ("train", "evaluate"):
        task = templates[name]
        assert task["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in task["tolerations"]
        assert {"mountPath": "/dev/shm", "name": "dshm"} in task["container"]["volumeMounts"]
        assert task["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}]
        assert task["retryStrategy"]["retryPolicy"] in ("OnError", "OnTransientError")
        assert task["activeDeadlineSeconds"] > 0
    assert "nvidia.com/gpu" not in str(templates["validate-data"])
    assert all("retryStrategy" in t and "activeDeadlineSeconds" in t for t in templates.values() if "container" in t)


def test_gpu_options_reach_the_yaml() -> None:
    built = build_training(
        BuildOptions.defaults(), validate_on_gpu=True, gpu=GpuSpec(count=2, accelerator="NVIDIA-A100-SXM4-80GB")
    ).to_dict()
    templates = _templates(built["spec"])
    for name in ("validate-data", "train", "evaluate"):
        assert templates[name]["container"]["resources"]["limits"]["nvidia.com/gpu"] == "2"
        assert templates[name]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}


def test_workflow_level_guarantees(template: dict[str, Any]) -> None:
    spec = template["spec"]
    assert spec["synchronization"] == {"mutexes": [{"name": "training-{{workflow.parameters.model-name}}"}]}
    assert spec["onExit"] == "record-outcome"
    record = _templates(spec)["record-outcome"]
    defaults = {p["name"]: p["default"] for p in record["inputs"]["parameters"]}
    assert defaults["status"] == "{{workflow.status}}" and defaults["failures"] == "{{workflow.failures}}"
    assert spec["podGC"]["strategy"] == "OnPodSuccess"
    assert spec["serviceAccountName"] == "driftloop-workflow"
    assert "artifactRepositoryRef" not in spec
    metadata = spec["workflowMetadata"]
    assert set(metadata["labelsFrom"]) == {"driftloop.io/model", "driftloop.io/trigger"}
    assert "{{workflow.parameters.model-name}}" in metadata["annotations"]["workflows.argoproj.io/title"]
    assert "{{workflow.parameters.trigger}}" in metadata["annotations"]["workflows.argoproj.io/description"]
    params = {p["name"]: p for p in spec["arguments"]["parameters"]}
    assert params["trigger"]["enum"] == list(TRIGGERS) and "drift" in TRIGGERS
    # Every declared parameter is used, every used one declared: derived from the template, not listed here.
    used = set(re.findall(r"\{\{workflow\.parameters\.([\w.-]+)\}\}", json.dumps(spec)))
    assert set(params) == used
    assert {"model-name", "dataset", "trigger", "trigger-ref", "git-commit"} <= set(params)  # submit/receiver set these
    assert all("value" in p for p in params.values()), "a required workflow parameter would fail a scheduled run"


def test_artifact_repository_is_configurable() -> None:
    options = BuildOptions.defaults()
    built = get_pipeline("training").template(BuildOptions(**{**options.__dict__, "artifact_repository": "minio:s3"}))
    assert built["spec"]["artifactRepositoryRef"] == {"configMap": "minio", "key": "s3"}


def test_cron_and_retrain_workflows_reference_the_template(manifests: list[Manifest]) -> None:
    by_name = {m.filename: m.documents[0] for m in manifests}
    cron, retrain = by_name["training.cronworkflow.yaml"], by_name["training.retrain.workflow.yaml"]
    for document, trigger in ((cron, "schedule"), (retrain, "drift")):
        spec = document["spec"].get("workflowSpec", document["spec"])
        assert spec["workflowTemplateRef"] == {"name": "training"}
        assert {"name": "trigger", "value": trigger} in spec["arguments"]["parameters"]
        assert document["metadata"]["labels"]["driftloop.io/trigger"] == trigger
    assert retrain["metadata"]["generateName"] == "credit-risk-retrain-"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    config = yaml.safe_load((COMMITTED / "driftloop-config.configmap.yaml").read_text())
    assert config["kind"] == "ConfigMap" and "DRIFTLOOP_MLFLOW_URI" in config["data"]


def test_compile_writes_nothing_when_validation_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A real broken pipeline (a GPU step without its toleration, a typo in a reference) is refused whole."""

    def build_broken(options: BuildOptions) -> WorkflowTemplate:
        template = build_training(options)
        train = next(t for t in template.templates if getattr(t, "name", None) == "train")
        train.tolerations = None  # type: ignore[union-attr]
        train.args = [*train.args, "{{inputs.parameters.epoch}}"]  # type: ignore[union-attr]
        template.name = "broken"
        return template

    monkeypatch.setitem(_registry._REGISTRY, "broken", Pipeline("broken", "deliberately broken", build_broken))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["compile", "--out", str(out)])
    assert isinstance(result.exception, ValidationError)
    message = str(result.exception)
    assert "broken.workflowtemplate.yaml: spec.templates[train].tolerations: requests nvidia.com/gpu" in message
    assert "spec.templates[train].container.args[10]: '{{inputs.parameters.epoch}}' does not resolve" in message
    assert not out.exists()
