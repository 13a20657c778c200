"""Retries, deadlines, stop/terminate, suspend/resume, restart after a crash and ``prepare_retry``."""

from __future__ import annotations

import copy
import threading
import time
import uuid
from pathlib import Path

from tests.engine.conftest import SHARED_MOUNT, make_workflow, nodes_by_display, processes_running, sh, shared_volume
from workflows.engine.runner import RunControl, prepare_retry


def _count_runs(folder: Path, name: str) -> int:
    marker = folder / name
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def test_retry_with_backoff_until_success_shows_retry_nodes(run, shared_dir):
    # fails on the first two attempts (counted in a shared file), succeeds on the third
    script = "echo x >> /shared/attempts; [ $(wc -l < /shared/attempts) -ge 3 ] && echo ok-{{retries}}"
    workflow = make_workflow(
        [
            {
                "name": "main",
                **sh(script, volumeMounts=SHARED_MOUNT),
                "retryStrategy": {"limit": "4", "backoff": {"duration": "0.1", "factor": "2", "cap": "1s"}},
            }
        ],
        **shared_volume(shared_dir),
    )
    done = run(workflow)
    name = workflow["metadata"]["name"]
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Succeeded"
    assert nodes[name]["type"] == "Retry" and len(nodes[name]["children"]) == 3
    assert [nodes[f"{name}({i})"]["phase"] for i in range(3)] == ["Failed", "Failed", "Succeeded"]
    assert nodes[name]["outputs"]["result"] == "ok-2"
    assert _count_runs(shared_dir, "attempts") == 3


def test_retry_limit_policy_and_expression_stop_retrying(run, shared_dir):
    templates = [
        {
            "name": "main",
            "steps": [
                [
                    {"name": "limited", "template": "limited"},
                    {"name": "on-error-only", "template": "on-error-only"},
                    {"name": "by-expression", "template": "by-expression"},
                ]
            ],
        },
        {
            "name": "limited",
            **sh("echo x >> /shared/limited; exit 1", volumeMounts=SHARED_MOUNT),
            "retryStrategy": {"limit": 2},
        },
        {
            "name": "on-error-only",
            **sh("echo x >> /shared/policy; exit 1", volumeMounts=SHARED_MOUNT),
            "retryStrategy": {"limit": 3, "retryPolicy": "OnError"},
        },
        {
            "name": "by-expression",
            **sh("echo x >> /shared/expr; exit 7", volumeMounts=SHARED_MOUNT),
            "retryStrategy": {"limit": 5, "expression": "asInt(lastRetry.exitCode) != 7"},
        },
    ]
    done = run(make_workflow(templates, **shared_volume(shared_dir)))
    assert done["status"]["phase"] == "Failed"
    assert _count_runs(shared_dir, "limited") == 3  # the first try + limit 2
    assert _count_runs(shared_dir, "policy") == 1  # Failed is not an Error
    assert _count_runs(shared_dir, "expr") == 1


def test_deadline_kills_the_whole_process_tree_and_exit_handler_still_runs(run):
    token = f"31{uuid.uuid4().int % 10**6}"
    workflow = make_workflow(
        [
            {"name": "main", **sh(f"sleep {token} & sleep {token}; echo never"), "activeDeadlineSeconds": 1},
            {"name": "bye", **sh("echo bye {{workflow.status}}")},
        ],
        onExit="bye",
    )
    done = run(workflow)
    name = workflow["metadata"]["name"]
    nodes = nodes_by_display(done)
    assert nodes[name]["phase"] == "Failed"
    assert "deadline" in nodes[name]["message"]
    assert nodes[f"{name}.onExit"]["outputs"]["result"] == "bye Failed"
    assert processes_running(f"sleep {token}") == []


def test_workflow_deadline_fails_running_and_pending_nodes(run):
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [[{"name": "slow", "template": "slow"}], [{"name": "later", "template": "slow"}]],
            },
            {"name": "slow", **sh("sleep 60")},
        ],
        activeDeadlineSeconds=1,
    )
    done = run(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Failed"
    assert done["status"]["message"] == "Step exceeded its deadline"
    assert "later" not in nodes


def _run_in_thread(run, workflow, control):
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(run(workflow, control)))
    thread.start()
    return thread, result


def _wait_for(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_stop_runs_exit_handlers_but_terminate_does_not(run, shared_dir):
    templates = [
        {
            "name": "main",
            **sh("touch /shared/started-$(cat /proc/sys/kernel/random/uuid); sleep 60", volumeMounts=SHARED_MOUNT),
        },
        {"name": "bye", **sh("echo bye")},
    ]
    outcomes = {}
    for action in ("stop", "terminate"):
        control = RunControl()
        workflow = make_workflow(templates, onExit="bye", **shared_volume(shared_dir))
        before = len(list(shared_dir.glob("started-*")))
        thread, result = _run_in_thread(run, workflow, control)
        assert _wait_for(lambda before=before: len(list(shared_dir.glob("started-*"))) > before)
        getattr(control, action)()
        thread.join(30)
        outcomes[action] = (
            result["status"]["phase"],
            f"{workflow['metadata']['name']}.onExit" in nodes_by_display(result),
        )
    assert outcomes == {"stop": ("Failed", True), "terminate": ("Failed", False)}


def test_suspend_template_waits_for_resume(run):
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [[{"name": "approve", "template": "approve"}], [{"name": "go", "template": "go"}]],
            },
            {"name": "approve", "suspend": {}},
            {"name": "go", **sh("echo released")},
        ]
    )
    control = RunControl()
    thread, result = _run_in_thread(run, workflow, control)
    time.sleep(0.5)
    assert thread.is_alive()  # still waiting on the suspend node
    control.resume("displayName=approve")
    thread.join(30)
    nodes = nodes_by_display(result)
    assert nodes["approve"]["type"] == "Suspend" and nodes["approve"]["phase"] == "Succeeded"
    assert nodes["go"]["outputs"]["result"] == "released"


def test_restart_keeps_finished_nodes_and_errors_interrupted_ones(run, shared_dir):
    templates = [
        {"name": "main", "steps": [[{"name": "one", "template": "count"}], [{"name": "two", "template": "count"}]]},
        {"name": "count", **sh("echo x >> /shared/runs", volumeMounts=SHARED_MOUNT)},
    ]
    workflow = make_workflow(templates, **shared_volume(shared_dir))
    finished = run(workflow)
    assert _count_runs(shared_dir, "runs") == 2
    # pretend the engine died while "two" was running: its node is Running, the rest of the tree unfinished
    crashed = copy.deepcopy(finished)
    crashed["status"]["phase"] = "Running"
    for node in crashed["status"]["nodes"].values():
        if node["displayName"] in ("two", "[1]", workflow["metadata"]["name"]):
            node["phase"] = "Running"
            node.pop("finishedAt", None)
    resumed = run(crashed)
    nodes = nodes_by_display(resumed)
    assert _count_runs(shared_dir, "runs") == 2  # "one" was not re-run, "two" was not restarted
    assert nodes["two"]["phase"] == "Error" and nodes["two"]["message"] == "interrupted by engine restart"
    assert resumed["status"]["phase"] == "Failed"  # Argo's executeSteps: an errored step fails the steps node


def test_prepare_retry_reruns_only_the_failed_nodes(run, shared_dir):
    templates = [
        {"name": "main", "steps": [[{"name": "one", "template": "count"}], [{"name": "two", "template": "flaky"}]]},
        {"name": "count", **sh("echo x >> /shared/runs", volumeMounts=SHARED_MOUNT)},
        {"name": "flaky", **sh("echo y >> /shared/flaky; [ ! -e /shared/broken ]", volumeMounts=SHARED_MOUNT)},
    ]
    (shared_dir / "broken").touch()
    failed = run(make_workflow(templates, **shared_volume(shared_dir)))
    assert failed["status"]["phase"] == "Failed"
    (shared_dir / "broken").unlink()
    retried = run(prepare_retry(failed))
    assert retried["status"]["phase"] == "Succeeded"
    assert _count_runs(shared_dir, "runs") == 1
    assert _count_runs(shared_dir, "flaky") == 2


def test_on_change_gets_independent_snapshots_ending_with_the_final_status(ctx):
    from workflows.engine.runner import run_workflow

    snapshots: list[dict] = []
    workflow = make_workflow(
        [{"name": "main", "steps": [[{"name": "a", "template": "ok"}]]}, {"name": "ok", **sh("true")}]
    )
    finished = run_workflow(workflow, ctx, on_change=snapshots.append)
    phases = [s["status"].get("phase") for s in snapshots]
    assert phases[0] == "Running" and phases[-1] == "Succeeded"
    assert snapshots[-1]["status"] == finished["status"]
    assert snapshots[0]["status"] is not snapshots[-1]["status"]
    assert any(s["status"]["nodes"] for s in snapshots[:-1])  # progress was reported while running


def test_an_engine_bug_in_one_step_errors_that_node_and_the_run_still_finishes(run, monkeypatch):
    import workflows.engine._children as children

    real = children._run_one

    def flaky_engine(ex, step, scope):
        if step.display_name == "broken":
            raise RuntimeError("simulated engine bug")
        return real(ex, step, scope)

    monkeypatch.setattr(children, "_run_one", flaky_engine)
    workflow = make_workflow(
        [
            {
                "name": "main",
                "dag": {"tasks": [{"name": "broken", "template": "ok"}, {"name": "fine", "template": "ok"}]},
            },
            {"name": "ok", **sh("true")},
        ]
    )
    done = run(workflow)
    nodes = nodes_by_display(done)
    assert nodes["broken"]["phase"] == "Error" and "simulated engine bug" in nodes["broken"]["message"]
    assert nodes["fine"]["phase"] == "Succeeded"
    assert done["status"]["phase"] == "Error"
