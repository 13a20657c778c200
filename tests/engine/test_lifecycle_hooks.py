"""Expression lifecycle hooks (workflow- and step/task-level), mirroring Argo's life-cycle-hooks examples with
container hook templates instead of HTTP ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.conftest import SHARED_MOUNT, make_workflow, sh, shared_volume


def _by_name(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in workflow["status"]["nodes"].values()}


def _recorder(name: str) -> dict[str, Any]:
    """A hook template that appends its message to /shared/<name> (counts how often it ran)."""
    return {
        "name": name,
        "inputs": {"parameters": [{"name": "message", "default": name}]},
        **sh(f"echo '{{{{inputs.parameters.message}}}}' >> /shared/{name}", volumeMounts=SHARED_MOUNT),
    }


def _lines(folder: Path, name: str) -> list[str]:
    path = folder / name
    return path.read_text().splitlines() if path.exists() else []


def test_workflow_level_hooks_fire_once_when_true_and_show_as_hook_nodes(run, shared_dir):
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [[{"name": "step1", "template": "work"}], [{"name": "step2", "template": "work"}]],
            },
            {"name": "work", **sh("sleep 0.2")},
            _recorder("running"),
            _recorder("succeeded"),
            _recorder("failed"),
            _recorder("at-exit"),
        ],
        hooks={
            "exit": {"template": "at-exit"},
            "running": {"expression": 'workflow.status == "Running"', "template": "running"},
            "succeeded": {
                "expression": 'workflow.status == "Succeeded"',
                "template": "succeeded",
                "arguments": {"parameters": [{"name": "message", "value": "{{workflow.name}}"}]},
            },
            "failed": {"expression": 'workflow.status == "Failed"', "template": "failed"},
        },
        **shared_volume(shared_dir),
    )
    name = workflow["metadata"]["name"]
    done = run(workflow)
    nodes = _by_name(done)
    assert done["status"]["phase"] == "Succeeded"
    root = nodes[name]
    for hook in ("running", "succeeded"):
        hook_node = nodes[f"{name}.hooks.{hook}"]
        assert hook_node["phase"] == "Succeeded"
        assert hook_node["id"] in root["children"]
    assert f"{name}.hooks.failed" not in nodes
    assert f"{name}.onExit" in nodes
    # true on every node change while the workflow ran, yet it fired exactly once
    assert _lines(shared_dir, "running") == ["running"]
    assert _lines(shared_dir, "succeeded") == [name]
    assert _lines(shared_dir, "failed") == []


def test_step_level_hooks_see_the_step_status_and_outputs(run, shared_dir):
    message = "{{steps.step-1.outputs.result}}"
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [
                        {
                            "name": "step-1",
                            "template": "work",
                            "hooks": {
                                "running": {
                                    "expression": "steps['step-1'].status == \"Running\"",
                                    "template": "running",
                                },
                                "success": {
                                    "expression": 'steps["step-1"].status == "Succeeded"',
                                    "template": "success",
                                    "arguments": {"parameters": [{"name": "message", "value": message}]},
                                },
                                "failure": {"expression": 'steps["step-1"].status == "Failed"', "template": "failure"},
                            },
                        }
                    ],
                    [{"name": "step-2", "template": "after"}],
                ],
            },
            {"name": "work", **sh("sleep 0.2; echo made-by-step-1")},
            {"name": "after", **sh("cat /shared/success", volumeMounts=SHARED_MOUNT)},
            _recorder("running"),
            _recorder("success"),
            _recorder("failure"),
        ],
        **shared_volume(shared_dir),
    )
    name = workflow["metadata"]["name"]
    done = run(workflow)
    nodes = _by_name(done)
    assert done["status"]["phase"] == "Succeeded"
    step = nodes[f"{name}[0].step-1"]
    for hook in ("running", "success"):
        hook_node = nodes[f"{name}[0].step-1.hooks.{hook}"]
        assert hook_node["phase"] == "Succeeded"
        assert hook_node["id"] in step["children"]
        assert hook_node["displayName"] == f"step-1.hooks.{hook}"
    assert f"{name}[0].step-1.hooks.failure" not in nodes
    assert _lines(shared_dir, "success") == ["made-by-step-1"]
    # the step waits for its hooks: the next step already sees what the success hook wrote
    assert nodes[f"{name}[1].step-2"]["outputs"]["result"] == "made-by-step-1"


def test_task_hook_on_failure_fires_and_a_failed_hook_does_not_change_the_phase(run, shared_dir):
    workflow = make_workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {
                            "name": "A",
                            "template": "fail",
                            "hooks": {"failed": {"expression": 'tasks.A.status == "Failed"', "template": "failure"}},
                        },
                        {
                            "name": "B",
                            "template": "work",
                            "hooks": {"done": {"expression": 'tasks.B.status == "Succeeded"', "template": "broken"}},
                        },
                    ]
                },
            },
            {"name": "fail", **sh("exit 3")},
            {"name": "work", **sh("true")},
            {"name": "broken", **sh("exit 1")},
            _recorder("failure"),
        ],
        **shared_volume(shared_dir),
    )
    name = workflow["metadata"]["name"]
    done = run(workflow)
    nodes = _by_name(done)
    assert nodes[f"{name}.A.hooks.failed"]["phase"] == "Succeeded"
    assert _lines(shared_dir, "failure") == ["failure"]
    assert nodes[f"{name}.B.hooks.done"]["phase"] == "Failed"
    assert nodes[f"{name}.B"]["phase"] == "Succeeded"
    assert done["status"]["phase"] == "Failed"  # from A, not from B's hook
    assert nodes[name]["message"] == f"child '{nodes[f'{name}.A']['id']}' failed"


def test_a_failed_workflow_level_hook_leaves_a_succeeded_workflow_succeeded(run):
    workflow = make_workflow(
        [{"name": "main", **sh("true")}, {"name": "broken", **sh("exit 1")}],
        hooks={"done": {"expression": 'workflow.status == "Succeeded"', "template": "broken"}},
    )
    name = workflow["metadata"]["name"]
    done = run(workflow)
    nodes = _by_name(done)
    assert nodes[f"{name}.hooks.done"]["phase"] == "Failed"
    assert done["status"]["phase"] == "Succeeded"
