"""The Argo Server API of ``driftloop engine serve``, driven by Hera's own WorkflowsService."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from hera.exceptions import AlreadyExists, BadRequest, NotFound, Unauthorized
from hera.workflows import WorkflowsService
from hera.workflows.models import (
    CreateCronWorkflowRequest,
    CronWorkflow,
    CronWorkflowResumeRequest,
    CronWorkflowSuspendRequest,
    SubmitOpts,
    UpdateCronWorkflowRequest,
    Workflow,
    WorkflowCreateRequest,
    WorkflowLintRequest,
    WorkflowSubmitRequest,
    WorkflowTemplate,
    WorkflowTemplateCreateRequest,
    WorkflowTemplateUpdateRequest,
)

from tests.engine_api.conftest import NAMESPACE, Api, EngineProcess, shell_workflow


def _template(name: str) -> dict:
    body = shell_workflow(name, "echo from-template")
    body["kind"] = "WorkflowTemplate"
    body["spec"]["arguments"] = {"parameters": [{"name": "who", "value": "nobody"}]}
    return body


def _create(api: Api, body: dict) -> Workflow:
    return api.service.create_workflow(WorkflowCreateRequest(workflow=Workflow(**body)))


def test_version_and_info_answer(api: Api) -> None:
    assert api.service.get_version().version.startswith("v3")
    assert api.service.get_info().managed_namespace == NAMESPACE


def test_create_get_and_list_by_label(api: Api) -> None:
    first = _create(api, shell_workflow("alpha", "true", labels={"team": "risk"}))
    generated = shell_workflow("unused", "true")
    generated["metadata"] = {"generateName": "beta-", "labels": {"team": "ops"}}
    second = _create(api, generated)

    assert first.metadata.name == "alpha" and first.metadata.uid and first.metadata.namespace == api.namespace
    assert second.metadata.name.startswith("beta-") and len(second.metadata.name) == len("beta-") + 5
    assert api.service.get_workflow("alpha").metadata.labels["team"] == "risk"
    risk = api.service.list_workflows(label_selector="team=risk").items
    assert [w.metadata.name for w in risk] == ["alpha"]
    not_risk = api.service.list_workflows(label_selector="team!=risk").items
    assert [w.metadata.name for w in not_risk] == [second.metadata.name]
    both = api.service.list_workflows(label_selector="team in (risk, ops)").items
    assert {w.metadata.name for w in both} == {"alpha", second.metadata.name}


def test_fields_parameter_trims_the_list(api: Api) -> None:
    _create(api, shell_workflow("gamma", "true"))
    response = api.http.get(api.workflows_url(), params={"fields": "items.metadata.name"}, timeout=10).json()
    assert response == {"items": [{"metadata": {"name": "gamma"}}]}


def test_errors_have_argo_shape_and_status(api: Api) -> None:
    with pytest.raises(NotFound):
        api.service.get_workflow("does-not-exist")
    missing = api.http.get(api.workflows_url("/does-not-exist"), timeout=10)
    assert missing.status_code == 404 and missing.json()["code"] == 5 and "not found" in missing.json()["message"]

    _create(api, shell_workflow("dup", "true"))
    with pytest.raises(AlreadyExists):
        _create(api, shell_workflow("dup", "true"))

    broken = shell_workflow("broken", "true")
    broken["spec"]["entrypoint"] = "nowhere"
    with pytest.raises(BadRequest, match="nowhere"):
        _create(api, broken)
    with pytest.raises(BadRequest, match="nowhere"):
        api.service.lint_workflow(WorkflowLintRequest(workflow=Workflow(**broken)))
    assert [w.metadata.name for w in api.service.list_workflows().items or []] == ["dup"]

    not_json = api.http.post(
        api.workflows_url(), data=b"{oops", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert not_json.status_code == 400 and not_json.json()["code"] == 3
    unknown = api.http.get(f"{api.url}/api/v1/nothing-here", timeout=10)
    assert unknown.status_code == 404 and unknown.json()["code"] == 5


def test_dag_with_unknown_dependency_is_rejected(api: Api) -> None:
    workflow = shell_workflow("dagbad", "true")
    workflow["spec"]["templates"][0] = {
        "name": "main",
        "dag": {"tasks": [{"name": "a", "template": "step0", "depends": "ghost && a"}]},
    }
    response = api.http.post(api.workflows_url(), json={"workflow": workflow}, timeout=10)
    assert response.status_code == 400 and response.json()["code"] == 3
    assert "ghost" in response.json()["message"]


def test_workflow_template_crud_and_submit_from_it(api: Api) -> None:
    service = api.service
    created = service.create_workflow_template(
        WorkflowTemplateCreateRequest(template=WorkflowTemplate(**_template("tmpl")))
    )
    with pytest.raises(AlreadyExists):
        service.create_workflow_template(WorkflowTemplateCreateRequest(template=WorkflowTemplate(**_template("tmpl"))))
    body = _template("tmpl")
    body["metadata"]["resourceVersion"] = created.metadata.resource_version
    body["metadata"]["labels"] = {"version": "2"}
    updated = service.update_workflow_template("tmpl", WorkflowTemplateUpdateRequest(template=WorkflowTemplate(**body)))
    assert updated.metadata.labels == {"version": "2"}
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    stale = api.http.put(
        f"{api.url}/api/v1/workflow-templates/{api.namespace}/tmpl", json={"template": body}, timeout=10
    )
    assert stale.status_code == 409  # the version we sent is no longer current
    assert [t.metadata.name for t in service.list_workflow_templates().items] == ["tmpl"]

    submitted = service.submit_workflow(
        WorkflowSubmitRequest(
            resource_kind="WorkflowTemplate",
            resource_name="tmpl",
            submit_options=SubmitOpts(parameters=["who=driftloop"], labels="origin=test"),
        )
    )
    assert submitted.metadata.name.startswith("tmpl-")
    assert submitted.spec.workflow_template_ref.name == "tmpl"
    assert submitted.metadata.labels["workflows.argoproj.io/workflow-template"] == "tmpl"
    assert submitted.metadata.labels["origin"] == "test"
    assert submitted.spec.arguments.parameters[0].value == "driftloop"

    service.delete_workflow_template("tmpl")
    with pytest.raises(NotFound):
        service.get_workflow_template("tmpl")
    with pytest.raises(NotFound):
        service.submit_workflow(WorkflowSubmitRequest(resource_kind="WorkflowTemplate", resource_name="tmpl"))


def test_workflow_ref_to_missing_template_is_rejected(api: Api) -> None:
    workflow = {"metadata": {"generateName": "x-"}, "spec": {"workflowTemplateRef": {"name": "ghost"}}}
    with pytest.raises(BadRequest, match="ghost"):
        _create(api, workflow)


def test_cluster_workflow_template_crud(api: Api) -> None:
    body = _template("shared")
    body["kind"] = "ClusterWorkflowTemplate"
    url = f"{api.url}/api/v1/cluster-workflow-templates"
    assert api.http.post(url, json={"template": body}, timeout=10).status_code == 200
    got = api.service.get_cluster_workflow_template("shared")
    assert got.metadata.name == "shared" and got.metadata.namespace is None
    assert [t.metadata.name for t in api.service.list_cluster_workflow_templates().items] == ["shared"]
    api.service.delete_cluster_workflow_template("shared")
    with pytest.raises(NotFound):
        api.service.get_cluster_workflow_template("shared")


def test_cron_workflow_crud_suspend_resume(api: Api) -> None:
    service = api.service
    cron = {
        "metadata": {"name": "nightly"},
        "spec": {
            "schedules": ["0 3 * * *"],
            "timezone": "Europe/Paris",
            "workflowSpec": shell_workflow("unused", "true")["spec"],
        },
    }
    created = service.create_cron_workflow(CreateCronWorkflowRequest(cron_workflow=CronWorkflow(**cron)))
    assert created.spec.schedules == ["0 3 * * *"]
    assert service.suspend_cron_workflow("nightly", CronWorkflowSuspendRequest(name="nightly")).spec.suspend is True
    assert service.resume_cron_workflow("nightly", CronWorkflowResumeRequest(name="nightly")).spec.suspend is False
    cron["spec"]["schedules"] = ["0 4 * * *"]
    updated = service.update_cron_workflow("nightly", UpdateCronWorkflowRequest(cron_workflow=CronWorkflow(**cron)))
    assert updated.spec.schedules == ["0 4 * * *"]
    assert [c.metadata.name for c in service.list_cron_workflows().items] == ["nightly"]
    submitted = service.submit_workflow(WorkflowSubmitRequest(resource_kind="CronWorkflow", resource_name="nightly"))
    assert submitted.metadata.labels["workflows.argoproj.io/cron-workflow"] == "nightly"
    service.delete_cron_workflow("nightly")
    with pytest.raises(NotFound):
        service.get_cron_workflow("nightly")


def test_token_is_enforced(tmp_path: Path) -> None:
    engine = EngineProcess(tmp_path / "home", token="s3cret")
    engine.start()
    try:
        assert engine.service().get_version().version
        with pytest.raises(Unauthorized):
            WorkflowsService(host=engine.url + "/", token="wrong").get_version()
        assert requests.get(engine.url + "/api/v1/version", timeout=10).status_code == 401
    finally:
        engine.stop()


def test_second_engine_on_same_home_fails_clearly(shared_engine: EngineProcess) -> None:
    second = EngineProcess(shared_engine.home)
    with pytest.raises(RuntimeError, match="another engine"):
        second.start()
