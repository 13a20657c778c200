"""Human approval on the real engine: a run suspends before promote; `driftloop approve` records who, when and why
and resumes it. Approved -> promoted, the GitOps commit names the approver; rejected or timed out -> the champion
stays, the decision is recorded; `driftloop history` shows both.

The pipeline is the training pipeline's tail, built with the same PipelineDAG (approval task, then the real promote
step) and run by a real `driftloop engine serve` against the package's real MLflow server and a bare GitOps repo.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from hera.workflows import Workflow

from driftloop.config import get_settings
from tests._support import driftloop
from tests.engine_api.conftest import NAMESPACE, EngineProcess
from tests.gitops.conftest import MODEL
from workflows.pipelines import PipelineDAG
from workflows.steps.contract import STEPS, Param

PROMOTE = STEPS[-1]


@pytest.fixture
def engine(bare_repo: Path, tmp_path: Path) -> Iterator[EngineProcess]:
    # its steps inherit this process's MLflow and GitOps settings; a pod's /tmp is private, its engine home is not
    home = tmp_path / "engine-home"
    os.environ["DRIFTLOOP_GITOPS_REPO"] = str(home / "gitops.git")  # bare_repo's teardown unsets it
    process = EngineProcess(home)
    process.start()
    yield process
    process.stop()
    process.reap_orphans()


def _submit(engine: EngineProcess, tmp_path: Path, version: str, timeout: str) -> str:
    dag = PipelineDAG(
        "approval-tail",
        image=get_settings().image,
        parameters=[Param("model-name", "The model.", MODEL), Param("approval-timeout", "Wait.", timeout)],
    )
    gate = dag.approval(duration=dag.parameter("approval-timeout"))
    dag.task(PROMOTE, version=version, after=[gate])
    with Workflow(generate_name="approval-tail-", namespace=NAMESPACE, entrypoint="approval-tail",
                  arguments=dag.arguments()) as workflow:  # fmt: skip
        dag.emit()
    path = tmp_path / f"approval-{version}.yaml"
    path.write_text(yaml.safe_dump(workflow.to_dict()))
    response = engine.http.post(engine.url + f"/api/v1/workflows/{NAMESPACE}", json={"workflow": workflow.to_dict()})
    assert response.status_code == 200, response.text
    return str(response.json()["metadata"]["name"])


def _get(engine: EngineProcess, name: str) -> dict[str, Any]:
    response = engine.http.get(engine.url + f"/api/v1/workflows/{NAMESPACE}/{name}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait(engine: EngineProcess, name: str, done: Callable[[dict[str, Any]], bool], timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workflow = _get(engine, name)
        if done(workflow):
            return workflow
        time.sleep(0.3)
    raise AssertionError(f"{name}: {json.dumps(workflow.get('status'), indent=1)[-3000:]}")


def _node(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    (node,) = [n for n in workflow["status"]["nodes"].values() if n.get("displayName") == name]
    return dict(node)


def _waiting(workflow: dict[str, Any]) -> bool:
    return any(
        n.get("type") == "Suspend" and n.get("phase") == "Running"
        for n in (workflow.get("status") or {}).get("nodes", {}).values()
    )


def _finished(workflow: dict[str, Any]) -> bool:
    return (workflow.get("status") or {}).get("phase") in {"Succeeded", "Failed", "Error"}


def _champion(env: dict[str, str]) -> list[dict[str, Any]]:
    shown = driftloop(env, "history", MODEL, "--env", "production", "--json", timeout=120)
    assert shown.returncode == 0, shown.stderr
    return list(json.loads(shown.stdout))


def _decisions(env: dict[str, str]) -> list[dict[str, Any]]:
    shown = driftloop(env, "history", MODEL, "--approvals", "--json", timeout=120)
    assert shown.returncode == 0, shown.stderr
    return list(json.loads(shown.stdout))


def _env(engine: EngineProcess) -> dict[str, str]:
    return {**engine.env, "DRIFTLOOP_ARGO_TOKEN": engine.token}


def test_approve_promotes_with_the_approver_and_reject_leaves_the_champion(  # type: ignore[no-untyped-def]
    engine: EngineProcess, register, tmp_path: Path
) -> None:
    env = _env(engine)
    first = register(2.0)
    name = _submit(engine, tmp_path, first, "10m")
    _wait(engine, name, _waiting)
    assert "promote" not in {n.get("displayName") for n in _get(engine, name)["status"]["nodes"].values()}
    refused = driftloop(env, "approve", name, timeout=60)  # no reason: refused before anything is recorded
    assert refused.returncode != 0 and "--reason" in refused.stderr
    approved = driftloop(env, "approve", name, "--reason", "report reviewed", "--by", "alice", timeout=120)
    assert approved.returncode == 0, approved.stderr
    assert f"{name}: approved by alice" in approved.stdout
    done = _wait(engine, name, _finished)
    assert done["status"]["phase"] == "Succeeded" and _node(done, "promote")["phase"] == "Succeeded"
    (event,) = _champion(env)
    assert event["version"] == first and event["approved_by"].startswith("alice at ")
    assert event["approved_by"].endswith(": report reviewed")
    again = driftloop(env, "approve", name, "--reason", "twice", timeout=60)
    assert again.returncode != 0 and "not waiting for an approval" in again.stderr

    second = register(3.0)
    rejected_run = _submit(engine, tmp_path, second, "10m")
    _wait(engine, rejected_run, _waiting)
    rejected = driftloop(env, "approve", rejected_run, "--reject", "--reason", "gain too small", timeout=120)
    assert rejected.returncode == 0, rejected.stderr
    done = _wait(engine, rejected_run, _finished)
    promote = _node(done, "promote")
    assert done["status"]["phase"] == "Succeeded" and promote["phase"] == "Succeeded"
    assert {"name": "champion-version", "value": first} in promote["outputs"]["parameters"]  # unchanged
    assert [e["version"] for e in _champion(env)] == [first]  # no commit: the champion stays
    decisions = {d["workflow"]: d for d in _decisions(env)}
    assert decisions[name]["decision"] == "approved" and decisions[name]["by"] == "alice"
    assert decisions[rejected_run]["decision"] == "rejected" and decisions[rejected_run]["reason"] == "gain too small"
    table = driftloop(env, "history", MODEL, timeout=120).stdout
    assert "[approved by alice at" in table and rejected_run in table and "gain too small" in table


def test_nobody_deciding_before_the_timeout_is_a_rejection(  # type: ignore[no-untyped-def]
    engine: EngineProcess, register, tmp_path: Path
) -> None:
    env = _env(engine)
    version = register(5.0)
    name = _submit(engine, tmp_path, version, "2s")
    done = _wait(engine, name, _finished)
    assert done["status"]["phase"] == "Succeeded" and _node(done, "approval")["phase"] == "Succeeded"
    assert {"name": "champion-version", "value": "none"} in _node(done, "promote")["outputs"]["parameters"]
    assert _champion(env) == []  # never promoted
    (decision,) = [d for d in _decisions(env) if d["workflow"] == name]
    assert decision["decision"] == "rejected" and decision["by"] == "timeout"
    assert f"no `driftloop approve {name}` before promote" in decision["reason"]


def test_the_demo_approves_a_waiting_run_as_a_person_would(  # type: ignore[no-untyped-def]
    engine: EngineProcess, register, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftloop._demo_approver import DemoApprover

    for key in ("DRIFTLOOP_HOME", "DRIFTLOOP_ARGO_SERVER", "DRIFTLOOP_NAMESPACE"):
        monkeypatch.setenv(key, engine.env[key])
    monkeypatch.setenv("DRIFTLOOP_ARGO_TOKEN", engine.token)
    version = register(7.0)
    name = _submit(engine, tmp_path, version, "10m")
    with DemoApprover(poll_s=0.5) as approver:
        done = _wait(engine, name, _finished)
    assert approver.approved == [name] and done["status"]["phase"] == "Succeeded"
    (event,) = _champion(_env(engine))
    assert event["version"] == version and event["approved_by"].startswith("demo at ")


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def test_the_console_records_who_and_why_before_it_resumes(  # type: ignore[no-untyped-def]
    engine: EngineProcess, register, tmp_path: Path
) -> None:
    """The console's run page offers Approve / Reject (not a bare Resume) on a run waiting in its approval task; an
    incomplete form is a 400 naming the field and resumes nothing; a complete one records the person and the reason
    as `driftloop approve` does, and the run promotes with them in its GitOps commit."""
    env = _env(engine)
    version = register(9.0)
    name = _submit(engine, tmp_path, version, "10m")
    _wait(engine, name, _waiting)
    browser = requests.Session()
    page_url = f"{engine.url}/workflows/{NAMESPACE}/{name}"
    page = browser.get(f"{page_url}?token={engine.token}", timeout=30).text  # log in, as the printed URL does
    assert 'aria-label="approval"' in page and "Approve</button>" in page and "Reject</button>" in page
    assert 'value="resume"' not in page  # a bare resume would reach promote with no recorded decision
    csrf, origin = _csrf(page), {"Origin": engine.url}
    for form, problem in (
        ({"decision": "approve", "by": "carol", "reason": "  "}, "reason"),
        ({"decision": "approve", "by": "", "reason": "ok"}, "who decides"),
        ({"decision": "approve", "by": "carol; rm -rf /", "reason": "ok"}, "is not a name"),
        ({"decision": "maybe", "by": "carol", "reason": "ok"}, "neither approve nor reject"),
    ):
        refused = browser.post(f"{page_url}/approve", data={"csrf": csrf, **form}, headers=origin,
                               allow_redirects=False, timeout=30)  # fmt: skip
        assert refused.status_code == 400 and problem in refused.text, (form, refused.status_code, refused.text[:500])
    assert _waiting(_get(engine, name))  # nothing recorded, nothing resumed
    forged = browser.post(f"{page_url}/approve", data={"decision": "approve", "by": "x", "reason": "y"},
                          headers=origin, allow_redirects=False, timeout=30)  # fmt: skip
    assert forged.status_code == 403
    approved = browser.post(
        f"{page_url}/approve",
        data={"csrf": csrf, "decision": "approve", "by": "carol", "reason": "canary plan reviewed"},
        headers=origin,
        allow_redirects=False,
        timeout=60,
    )
    assert approved.status_code == 303, approved.text[:500]
    done = _wait(engine, name, _finished)
    assert done["status"]["phase"] == "Succeeded" and _node(done, "promote")["phase"] == "Succeeded"
    (event,) = _champion(env)
    assert event["version"] == version and event["approved_by"].startswith("carol (console) at ")
    (decision,) = [d for d in _decisions(env) if d["workflow"] == name]
    assert decision["decision"] == "approved" and decision["reason"] == "canary plan reviewed"
    late = browser.post(f"{page_url}/approve", data={"csrf": csrf, "decision": "reject", "by": "dave", "reason": "no"},
                        headers=origin, allow_redirects=False, timeout=30)  # fmt: skip
    assert late.status_code == 409 and "not waiting for an approval" in late.text
