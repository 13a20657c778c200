"""Running workflows through the API: logs, retry, resubmit, stop, delete, and resuming after kill -9."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from hera.workflows import Container
from hera.workflows import Workflow as HeraWorkflow
from hera.workflows.models import (
    Workflow,
    WorkflowCreateRequest,
    WorkflowResubmitRequest,
    WorkflowResumeRequest,
    WorkflowRetryRequest,
    WorkflowStopRequest,
    WorkflowSubmitRequest,
    WorkflowTemplate,
    WorkflowTemplateCreateRequest,
)

from driftloop.config import get_settings
from tests.engine_api.conftest import (
    Api,
    EngineProcess,
    nodes_by_display_name,
    shell_workflow,
    wait_node_phase,
    wait_phase,
)
from workflows.client import ArgoClient


def _create(api: Api, body: dict) -> str:
    return str(api.service.create_workflow(WorkflowCreateRequest(workflow=Workflow(**body))).metadata.name)


def test_run_succeeds_and_logs_stream_in_argo_shape(api: Api) -> None:
    name = _create(api, shell_workflow("hello", "echo hello; echo world", "echo second"))
    assert wait_phase(api.service, name) == "Succeeded"
    workflow = api.service.get_workflow(name)
    assert workflow.status.progress == "2/2"
    assert workflow.metadata.labels["workflows.argoproj.io/phase"] == "Succeeded"

    lines = [line for line in api.http.get(api.workflows_url(f"/{name}/log"), timeout=10).text.splitlines() if line]
    entries = [requests.models.complexjson.loads(line)["result"] for line in lines]
    assert [e["content"] for e in entries] == ["hello", "world", "second"]
    second_pod = entries[2]["podName"]
    assert second_pod.startswith(f"{name}-step1-")
    # Hera 5.27's workflow_logs parses one un-wrapped entry, so it cannot read Argo's stream (real Argo's neither):
    # driftloop's client reads the stream through Hera's session instead
    client = ArgoClient(get_settings({**api.engine.env, "DRIFTLOOP_NAMESPACE": api.namespace}))  # finds the token
    assert list(client.logs(name, node=second_pod)) == [{"content": "second", "podName": second_pod}]
    assert [e["content"] for e in client.logs(name, node="s0")] == ["hello", "world"]
    grepped = api.http.get(api.workflows_url(f"/{name}/log"), params={"grep": "wor"}, timeout=10).text.splitlines()
    assert [requests.models.complexjson.loads(line)["result"]["content"] for line in grepped] == ["world"]


def test_retry_reruns_only_the_failed_step(api: Api, tmp_path: Path) -> None:
    first = "echo run >> /shared/first.count"
    second = "echo run >> /shared/second.count; test -f /shared/fixed"
    name = _create(api, shell_workflow("flaky", first, second, host_dir=tmp_path))
    assert wait_phase(api.service, name) == "Failed"

    (tmp_path / "fixed").write_text("yes")
    retried = api.service.retry_workflow(name, WorkflowRetryRequest(name=name))
    assert retried.metadata.name == name
    assert wait_phase(api.service, name) == "Succeeded"
    assert (tmp_path / "first.count").read_text().count("run") == 1
    assert (tmp_path / "second.count").read_text().count("run") == 2

    response = api.http.put(api.workflows_url(f"/{name}/retry"), json={}, timeout=10)
    assert response.status_code == 400 and "Succeeded" in response.json()["message"]


def test_resubmit_runs_a_fresh_copy(api: Api, tmp_path: Path) -> None:
    name = _create(api, shell_workflow("again", "echo run >> /shared/count", host_dir=tmp_path))
    assert wait_phase(api.service, name) == "Succeeded"
    copy = api.service.resubmit_workflow(name, WorkflowResubmitRequest(name=name))
    assert copy.metadata.name != name
    assert copy.metadata.labels["workflows.argoproj.io/resubmitted-from-workflow"] == name
    assert wait_phase(api.service, str(copy.metadata.name)) == "Succeeded"
    assert (tmp_path / "count").read_text().count("run") == 2


def test_stop_ends_a_running_workflow(api: Api) -> None:
    name = _create(api, shell_workflow("sleepy", "sleep 60"))
    wait_node_phase(api.service, name, "s0", "Running")
    api.service.stop_workflow(name, WorkflowStopRequest(name=name, message="enough"))
    assert wait_phase(api.service, name, timeout=30) in {"Failed", "Error"}
    response = api.http.put(api.workflows_url(f"/{name}/stop"), json={}, timeout=10)
    assert response.status_code == 400 and response.json()["code"] == 9


def test_delete_terminates_a_running_workflow(api: Api) -> None:
    name = _create(api, shell_workflow("doomed", "sleep 60"))
    wait_node_phase(api.service, name, "s0", "Running")
    api.service.delete_workflow(name)
    assert api.http.get(api.workflows_url(f"/{name}"), timeout=10).status_code == 404
    time.sleep(0.5)  # a late status write from the dying run must not resurrect it
    assert api.http.get(api.workflows_url(f"/{name}"), timeout=10).status_code == 404


def test_kill9_mid_run_resumes_without_rerunning_finished_steps(engine: EngineProcess, tmp_path: Path) -> None:
    service = engine.service()
    workflow = shell_workflow("crashy", "echo ran >> /shared/marker", "sleep 2", host_dir=tmp_path)
    # the interrupted pod becomes Error; as in Argo, only Always/OnError policies retry errors
    workflow["spec"]["templates"][2]["retryStrategy"] = {"limit": 2, "retryPolicy": "Always"}
    service.create_workflow(WorkflowCreateRequest(workflow=Workflow(**workflow)))
    wait_node_phase(service, "crashy", "s1", "Running")

    engine.kill9()
    engine.start()

    assert wait_phase(service, "crashy", timeout=90) == "Succeeded"
    assert (tmp_path / "marker").read_text().splitlines() == ["ran"]
    nodes = nodes_by_display_name(service.get_workflow("crashy"))
    assert nodes["s0"]["phase"] == "Succeeded"
    assert nodes["s1(0)"]["phase"] == "Error" and "restart" in nodes["s1(0)"]["message"]
    assert nodes["s1"]["phase"] == "Succeeded"


def test_logs_follow_until_the_workflow_ends(api: Api) -> None:
    name = _create(api, shell_workflow("follow", "echo early; sleep 1; echo late"))
    client = ArgoClient(get_settings({**api.engine.env, "DRIFTLOOP_NAMESPACE": api.namespace}))  # finds the token
    assert [entry["content"] for entry in client.logs(name, follow=True)] == ["early", "late"]
    assert api.service.get_workflow(name).status.phase == "Succeeded"


def test_suspend_step_waits_for_resume(api: Api) -> None:
    workflow = shell_workflow("gate", "echo after-approval")
    workflow["spec"]["templates"].append({"name": "approve", "suspend": {}})
    workflow["spec"]["templates"][0]["steps"].insert(0, [{"name": "approval", "template": "approve"}])
    name = _create(api, workflow)
    wait_node_phase(api.service, name, "approval", "Running")
    time.sleep(0.5)
    assert api.service.get_workflow(name).status.phase == "Running"
    api.service.resume_workflow(name, WorkflowResumeRequest(name=name))
    assert wait_phase(api.service, name) == "Succeeded"


def test_hera_dsl_create_lint_and_wait_work_unchanged(api: Api) -> None:
    with HeraWorkflow(
        generate_name="hera-", entrypoint="say", namespace=api.namespace, workflows_service=api.service
    ) as workflow:
        Container(name="say", image="busybox", command=["sh", "-c"], args=["echo from-hera"])
    workflow.lint()
    finished = workflow.create(wait=True, poll_interval=1)
    assert finished.status.phase == "Succeeded"
    assert finished.metadata.name.startswith("hera-")


def test_template_references_resolve_in_the_workflows_namespace(api: Api) -> None:
    other = Api(api.engine, api.namespace + "-other")
    for side, text in ((api, "mine"), (other, "theirs")):
        template = shell_workflow("same-name", f"echo {text}")
        template["kind"] = "WorkflowTemplate"
        side.service.create_workflow_template(WorkflowTemplateCreateRequest(template=WorkflowTemplate(**template)))
    submitted = api.service.submit_workflow(
        WorkflowSubmitRequest(resource_kind="WorkflowTemplate", resource_name="same-name")
    )
    name = str(submitted.metadata.name)
    assert wait_phase(api.service, name) == "Succeeded"
    client = ArgoClient(get_settings({**api.engine.env, "DRIFTLOOP_NAMESPACE": api.namespace}))  # finds the token
    assert [entry["content"] for entry in client.logs(name)] == ["mine"]
