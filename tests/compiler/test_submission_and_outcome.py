"""The Workflow handed to `driftloop submit`, the exit handler's outcome record, and `driftloop lint` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from driftloop.cli import cli
from driftloop.config import get_settings, repo_root
from driftloop.errors import ConfigError, NotFoundError, ValidationError
from driftloop.registry_contract import TRIGGERS
from workflows.compiler.submission import submission_workflow
from workflows.pipelines import BuildOptions, list_pipelines
from workflows.spec.lint import lint_documents
from workflows.spec.yamlio import Document

OPTIONS = BuildOptions.defaults()


def _arguments(workflow: dict[str, object]) -> dict[str, str]:
    spec = workflow["spec"]
    assert isinstance(spec, dict)
    return {p["name"]: p["value"] for p in spec["arguments"]["parameters"]}


def test_submission_references_the_template_with_overrides() -> None:
    workflow = submission_workflow(
        "training", {"epochs": 3}, trigger="drift", trigger_ref="abc123", options=OPTIONS, git_commit="deadbeef"
    )
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "training"}
    assert _arguments(workflow) == {
        "epochs": "3",
        "trigger": "drift",
        "trigger-ref": "abc123",
        "git-commit": "deadbeef",
    }
    assert workflow["metadata"]["generateName"] == "training-"
    assert workflow["metadata"]["labels"]["driftloop.io/trigger"] == "drift"


def test_submission_takes_the_approval_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    def submitted(**env: str) -> dict[str, str]:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return _arguments(submission_workflow("training", {}, options=OPTIONS, git_commit="deadbeef"))

    assert "approval" not in submitted()  # production needs an approval: the template's default, required
    relaxed = submitted(DRIFTLOOP_APPROVAL_ENVIRONMENTS="staging", DRIFTLOOP_APPROVAL_TIMEOUT="2h")
    assert relaxed["approval"] == "not-required" and relaxed["approval-timeout"] == "2h"
    explicit = _arguments(
        submission_workflow("training", {"approval": "required"}, options=OPTIONS, git_commit="deadbeef")
    )
    assert explicit["approval"] == "required"  # what the submitter passes wins
    with pytest.raises(ValidationError, match="approval"):
        submission_workflow("training", {"approval": "maybe"}, options=OPTIONS, git_commit="deadbeef")
    with pytest.raises(ConfigError, match="DRIFTLOOP_APPROVAL_TIMEOUT='soon' is not a duration"):
        get_settings({"DRIFTLOOP_APPROVAL_TIMEOUT": "soon"})


def test_inline_submission_is_a_complete_valid_workflow() -> None:
    workflow = submission_workflow(
        "training", {"model-name": "fraud"}, options=OPTIONS, inline=True, git_commit="c0ffee"
    )
    args = _arguments(workflow)
    assert args["model-name"] == "fraud" and args["trigger"] == "manual" and args["git-commit"] == "c0ffee"
    assert workflow["metadata"]["labels"]["driftloop.io/model"] == "fraud"
    assert lint_documents([Document("submitted", workflow)]) == []


def test_submission_rejects_unknown_parameters_and_values() -> None:
    with pytest.raises(ValidationError) as unknown:
        submission_workflow("training", {"epoch": "3"}, options=OPTIONS, git_commit="x")
    assert "parameter epoch: is not a parameter" in unknown.value.message
    assert unknown.value.hint and "epochs" in unknown.value.hint
    with pytest.raises(ValidationError, match=rf"trigger must be one of {', '.join(TRIGGERS)} \(got 'nightly'\)"):
        submission_workflow("training", trigger="nightly", options=OPTIONS, git_commit="x")
    with pytest.raises(NotFoundError) as missing:
        submission_workflow("trainig", options=OPTIONS)
    assert missing.value.hint and "training" in missing.value.hint


def test_registry_lists_the_training_pipeline() -> None:
    assert "training" in [p.name for p in list_pipelines()]


def _record(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRIFTLOOP_HOME": str(home)}
    command = [sys.executable, "-m", "workflows.steps.record_outcome", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=repo_root(), check=True)


def test_record_outcome_appends_one_json_line_per_run(tmp_path: Path) -> None:
    failures = json.dumps([{"displayName": "train", "message": "OOMKilled", "phase": "Failed"}])
    first = _record(tmp_path, "--workflow", "training-abc", "--status", "Failed", "--failures", failures,
                    "--model", "credit-risk", "--trigger", "drift", "--trigger-ref", "fp-1")  # fmt: skip
    _record(tmp_path, "--workflow", "training-def", "--status", "Succeeded", "--failures", "null")
    lines = [json.loads(line) for line in (tmp_path / "outcomes.jsonl").read_text().splitlines()]
    assert [line["workflow"] for line in lines] == ["training-abc", "training-def"]
    assert lines[0]["failures"][0]["message"] == "OOMKilled" and lines[1]["failures"] == []
    assert lines[0]["trigger"] == "drift" and lines[0]["trigger-ref"] == "fp-1"
    assert lines[0]["finished_at"].endswith("Z")
    assert json.loads(first.stdout) == lines[0]


def test_lint_command_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Workflow",
                "metadata": {"generateName": "x-"},
                "spec": {"entrypoint": "a", "templates": [{"name": "a", "container": {"image": "busybox"}}]},
            }
        )
    )
    runner = CliRunner()
    clean = runner.invoke(cli, ["lint", str(good)])
    assert clean.exit_code == 0 and "lint clean" in clean.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("entrypoint: a", "entrypoint: b"))
    found = runner.invoke(cli, ["lint", str(tmp_path), "--json"])
    assert found.exit_code == 1
    (issue,) = json.loads(found.stdout)
    assert issue["file"].endswith("bad.yaml") and issue["path"] == "spec.entrypoint"
