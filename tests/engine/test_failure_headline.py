"""A failed run's first line names the step that failed and its error, not a DAG child's node id."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from workflows.engine._cli_render import failed_step, failure_headline
from workflows.engine.run_cli import run_command

WORKFLOW = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"name": "failing"},
    "spec": {
        "entrypoint": "main",
        "templates": [
            {"name": "main", "dag": {"tasks": [
                {"name": "prepare", "template": "ok"},
                {"name": "train", "template": "boom", "depends": "prepare"},
            ]}},
            {"name": "ok", "container": {"image": "busybox", "command": ["sh", "-c"], "args": ["echo fine"]}},
            {"name": "boom", "retryStrategy": {"limit": 1}, "container": {"image": "busybox", "command": ["sh", "-c"],
             "args": ["echo starting; echo 'error: epochs must be an integer (got abc)' >&2;"
                      " echo '  hint: Training epochs.' >&2; exit 2"]}},
        ],
    },
}  # fmt: skip


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_HOME", str(tmp_path / "home"))


def test_engine_run_starts_with_the_failed_step_and_its_error(tmp_path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(WORKFLOW))
    result = CliRunner().invoke(run_command, [str(path)])
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first == "✖ failing Failed: step 'train' failed: epochs must be an integer (got abc) (Error (exit code 2))"
    assert "Message:  child 'failing-" in result.stdout  # Argo's own message stays, for fidelity


def test_the_headline_without_logs_uses_the_node_message_and_succeeded_runs_have_none() -> None:
    nodes = {
        "w": {"id": "w", "phase": "Failed", "type": "DAG", "children": ["w-1"], "message": "child 'w-1' failed"},
        "w-1": {"id": "w-1", "displayName": "evaluate", "phase": "Failed", "type": "Pod", "children": [],
                "message": "Error (exit code 1)", "finishedAt": "2026-12-02T00:00:01Z"},
        "w-2": {"id": "w-2", "displayName": "exit", "phase": "Error", "type": "Pod", "children": [],
                "message": "pod deleted", "finishedAt": "2026-12-02T00:00:02Z"},
    }  # fmt: skip
    workflow = {"metadata": {"name": "w"}, "status": {"phase": "Failed", "nodes": nodes}}
    assert failed_step(workflow) == nodes["w-1"]  # the first to fail
    assert failure_headline(workflow) == "✖ w Failed: step 'evaluate' failed: Error (exit code 1)"
    assert failure_headline({"metadata": {"name": "w"}, "status": {"phase": "Succeeded"}}) is None
