"""Argo's phase semantics on the edges (issue 11, second half): signals, containerSet retries, suspend with a
supplied output, retry limits from parameters, nested ClusterWorkflowTemplates, workflowTemplateRef to a broken
template, optional input artifacts, global outputs outside /tmp, pods that cannot start.

Each test is modelled on one of Argo's own e2e tests (named in its docstring) and asserts the workflow phase,
the node phases and the message Argo's controller gives.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import make_workflow, nodes_by_display
from workflows.engine._lint import check_workflow
from workflows.engine.controller import Controller
from workflows.engine.runner import EngineContext, run_workflow
from workflows.engine.store import Store

ARGOSAY = "argoproj/argosay:v2"
Templates = dict[tuple[str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def templates() -> Templates:
    return {}


@pytest.fixture(scope="module")
def run_with(
    tmp_path_factory: pytest.TempPathFactory, templates: Templates
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """One engine for the module (building its launcher takes ~1 s); each workflow has its own name."""
    home = tmp_path_factory.mktemp("fidelity-pods") / "home"
    context = EngineContext.local(home, lambda kind, name: templates.get((kind, name)))
    if not context.isolated:
        pytest.skip("needs the node sandbox (root + unshare + overlayfs)")
    return lambda workflow: run_workflow(workflow, context)


def shell(name: str, script: str, image: str = ARGOSAY, **container: Any) -> dict[str, Any]:
    return {"name": name, "container": {"image": image, "command": ["bash", "-c"], "args": [script], **container}}


# -- signals ------------------------------------------------------------------------------------------------------
def test_a_container_ended_by_sigterm_fails_with_exit_code_143(run_with):
    """signals_test.go TestSignaled (testdata/signaled-workflow.yaml): ``kill $BASHPID``."""
    done = run_with(make_workflow([shell("main", "kill $BASHPID", image="argoproj/argosay:v1")]))
    root = done["status"]["nodes"][done["metadata"]["name"]]
    assert (done["status"]["phase"], done["status"]["message"]) == ("Failed", "Error (exit code 143)")
    assert (root["phase"], root["outputs"]["exitCode"]) == ("Failed", "143")


def test_signals_inside_a_container_set(run_with):
    """signals_test.go TestSignaledContainerSet: ``one`` dies by SIGKILL (137; Argo's test causes it with an
    OOM kill, which needs cgroups), the dependent ``two`` is terminated by the executor (143)."""
    workflow = make_workflow(
        [
            {
                "name": "main",
                "containerSet": {
                    "containers": [
                        {"name": "one", "image": ARGOSAY, "command": ["bash", "-c"], "args": ["kill -9 $BASHPID"]},
                        {
                            "name": "two",
                            "image": ARGOSAY,
                            "command": ["bash", "-c"],
                            "args": ["echo hello"],
                            "dependencies": ["one"],
                        },
                    ]
                },
            }
        ]
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Failed" and "(exit code 137)" in done["status"]["message"]
    assert nodes["one"]["phase"] == "Failed" and "(exit code 137)" in nodes["one"]["message"]
    assert nodes["two"]["phase"] == "Failed" and "(exit code 143)" in nodes["two"]["message"]


# -- containerSet retryStrategy ----------------------------------------------------------------------------------
def _retrying_set(script: str, retries: int) -> dict[str, Any]:
    return {
        "name": "main",
        "containerSet": {
            "containers": [{"name": "a", "image": ARGOSAY, "command": ["sh", "-c"], "args": [script]}],
            "retryStrategy": {"retries": retries, "duration": "0s"},
        },
    }


def test_container_set_retry_that_succeeds_makes_the_node_succeeded(run_with):
    """functional_test.go TestContainerSetRetryFail: the first run creates test.yml and fails, the retry (same
    pod, same filesystem) finds it and succeeds."""
    script = 'FILE=test.yml; EXITCODE=1; if test -f "$FILE"; then EXITCODE=0; else touch $FILE; fi; exit $EXITCODE'
    done = run_with(make_workflow([_retrying_set(script, 2)]))
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Succeeded"
    assert (nodes["a"]["phase"], nodes["a"]["outputs"]["exitCode"]) == ("Succeeded", "0")


def test_container_set_without_retries_fails(run_with):
    """functional_test.go TestContainerSetRetrySuccess (``retries: 0``): the first failure is final."""
    script = 'FILE=test.yml; EXITCODE=1; if test -f "$FILE"; then EXITCODE=0; else touch $FILE; fi; exit $EXITCODE'
    done = run_with(make_workflow([_retrying_set(script, 0)]))
    nodes = nodes_by_display(done)
    assert (done["status"]["phase"], done["status"]["message"]) == ("Failed", "Error (exit code 1)")
    assert nodes["a"]["phase"] == "Failed"


# -- suspend with a supplied output and no default ------------------------------------------------------------
def test_suspend_duration_passing_with_nothing_supplied_fails(run_with):
    """suspend_test.go TestSuspendNodeTimeoutWithoutDefaultValue (wfutil.OverrideOutputParametersWithDefault):
    the suspend node errors, so its step group and the workflow Fail, and ``release`` never runs."""
    message = "raw output parameter 'message' has not been set and does not have a default value"
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "approve", "template": "approve"}],
                    [
                        {
                            "name": "release",
                            "template": "say",
                            "arguments": {
                                "parameters": [{"name": "m", "value": "{{steps.approve.outputs.parameters.message}}"}]
                            },
                        }
                    ],
                ],
            },
            {
                "name": "approve",
                "suspend": {"duration": "200ms"},
                "outputs": {"parameters": [{"name": "message", "valueFrom": {"supplied": {}}}]},
            },
            {"name": "say", "inputs": {"parameters": [{"name": "m"}]}, **shell("say", "echo {{inputs.parameters.m}}")},
        ]
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Failed"
    assert (nodes["approve"]["phase"], nodes["approve"]["message"]) == ("Error", message)
    assert nodes["[0]"]["phase"] == "Failed" and "release" not in nodes


def test_suspend_duration_passing_uses_the_supplied_default(run_with):
    """suspend_test.go TestSuspendNodeTimeoutWithDefaultValue."""
    workflow = make_workflow(
        [
            {"name": "main", "steps": [[{"name": "approve", "template": "approve"}]]},
            {
                "name": "approve",
                "suspend": {"duration": "200ms"},
                "outputs": {"parameters": [{"name": "message", "valueFrom": {"supplied": {}, "default": "yes"}}]},
            },
        ]
    )
    done = run_with(workflow)
    assert done["status"]["phase"] == "Succeeded"
    assert nodes_by_display(done)["approve"]["outputs"]["parameters"] == [{"name": "message", "value": "yes"}]


# -- retryStrategy.limit from a parameter or an expression -----------------------------------------------------
@pytest.mark.parametrize("limit", ["{{inputs.parameters.limit}}", "{{= asInt(inputs.parameters.limit) }}"])
def test_retry_limit_from_a_parameter_or_expression_is_honoured(run_with, limit):
    """functional_test.go TestParametrizableLimit and retry_test.go TestRetryLimit: limit 1 = two attempts, then
    the Retry node (and the workflow) say "No more retries left"; the manifest lints clean."""
    workflow = make_workflow(
        [
            {
                "name": "main",
                "inputs": {"parameters": [{"name": "limit"}]},
                "retryStrategy": {"limit": limit},
                "container": {"image": ARGOSAY, "args": ["exit", "1"]},
            }
        ],
        arguments={"parameters": [{"name": "limit", "value": "1"}]},
    )
    check_workflow(copy.deepcopy(workflow))
    done = run_with(workflow)
    nodes = done["status"]["nodes"]
    name = done["metadata"]["name"]
    assert (done["status"]["phase"], done["status"]["message"]) == ("Failed", "No more retries left")
    assert nodes[name]["type"] == "Retry" and nodes[name]["message"] == "No more retries left"
    assert len(nodes) == 3
    assert [nodes[c]["phase"] for c in nodes[name]["children"]] == ["Failed", "Failed"]
    assert done["status"]["progress"] == "0/2"


# -- nested ClusterWorkflowTemplates and workflowTemplateRef to a broken template -----------------------------
@pytest.fixture
def controller(tmp_path: Path) -> Any:
    store = Store.open(tmp_path)
    controller = Controller(store, tmp_path, namespace="argo")
    yield controller
    for namespace, name in controller.running():
        controller.terminate(namespace, name)
        controller.wait(namespace, name, 10)
    store.close()


def _create(controller: Any, template: dict[str, Any]) -> None:
    """What the API's create does: lint (as Argo's server validates), then store."""
    template = {"apiVersion": "argoproj.io/v1alpha1", **template}
    check_workflow(template, controller.resolver("argo"))
    controller.store.create(template)


def _submit_and_wait(controller: Any, spec: dict[str, Any]) -> dict[str, Any]:
    created = controller.submit({"metadata": {"generateName": "fidelity-"}, "spec": spec}, "argo")
    return controller.wait("argo", created["metadata"]["name"], 30)


def test_nested_cluster_workflow_templates(controller):
    """cluster_workflow_template_test.go TestNestedClusterWorkflowTemplate (testdata/cluster-workflow-template-
    nested-template.yaml + smoke/cluster-workflow-template-whalesay-template.yaml)."""
    ref = {"name": "cwt-inner", "template": "say", "clusterScope": True}
    message = {"parameters": [{"name": "message", "value": "{{inputs.parameters.message}}"}]}
    inputs = {"parameters": [{"name": "message"}]}
    _create(
        controller,
        {
            "kind": "ClusterWorkflowTemplate",
            "metadata": {"name": "cwt-inner"},
            "spec": {
                "templates": [
                    {
                        "name": "say",
                        "inputs": inputs,
                        "container": {
                            "image": ARGOSAY,
                            "command": ["/argosay"],
                            "args": ["echo", "{{inputs.parameters.message}}"],
                        },
                    }
                ]
            },
        },
    )
    _create(
        controller,
        {
            "kind": "ClusterWorkflowTemplate",
            "metadata": {"name": "cwt-nested"},
            "spec": {
                "templates": [
                    {
                        "name": "inner",
                        "inputs": inputs,
                        "steps": [[{"name": "step", "templateRef": ref, "arguments": message}]],
                    },
                    {
                        "name": "outer",
                        "inputs": inputs,
                        "steps": [[{"name": "step", "template": "inner", "arguments": message}]],
                    },
                ]
            },
        },
    )
    call = {
        "name": "call",
        "templateRef": {"name": "cwt-nested", "template": "outer", "clusterScope": True},
        "arguments": {"parameters": [{"name": "message", "value": "hello from nested"}]},
    }
    done = _submit_and_wait(controller, {"entrypoint": "main", "templates": [{"name": "main", "steps": [[call]]}]})
    assert done["status"]["phase"] == "Succeeded"
    pods = [n for n in done["status"]["nodes"].values() if n["type"] == "Pod"]
    assert [(p["phase"], p["outputs"]["result"]) for p in pods] == [("Succeeded", "hello from nested")]


def _broken_template(name: str, broken: str) -> dict[str, Any]:
    """workflow-template-invalid-{entrypoint,onexit}.yaml: a volumeMount without mountPath, which Kubernetes
    rejects only when the pod is created."""
    say = {"name": "say", "container": {"image": ARGOSAY, "command": ["/argosay"], "args": ["echo", "hi"]}}
    notify = {"name": "notify", "container": {"image": ARGOSAY, "command": ["sh", "-c"], "args": ["exit 0"]}}
    for template in (say, notify):
        if template["name"] == broken:
            template["container"]["volumeMounts"] = [{"name": "foo"}]
    return {
        "kind": "WorkflowTemplate",
        "metadata": {"name": name, "namespace": "argo"},
        "spec": {"entrypoint": "say", "onExit": "notify", "templates": [say, notify]},
    }


def test_workflow_template_ref_to_an_invalid_entrypoint_is_accepted_and_ends_error(controller):
    """workflow_template_test.go TestWorkflowTemplateInvalidEntryPoint: created, submitted, then Error with
    "error in entry template execution" (operator.operate)."""
    _create(controller, _broken_template("invalid-entrypoint", "say"))
    done = _submit_and_wait(controller, {"workflowTemplateRef": {"name": "invalid-entrypoint"}})
    root = done["status"]["nodes"][done["metadata"]["name"]]
    assert done["status"]["phase"] == "Error"
    assert done["status"]["message"] == (
        "error in entry template execution: pod is invalid: volumeMounts[foo].mountPath: Required value"
    )
    assert root["phase"] == "Error"


def test_workflow_template_ref_to_an_invalid_on_exit_is_accepted_and_ends_error(controller):
    """workflow_template_test.go TestWorkflowTemplateInvalidOnExit: "error in exit template execution"."""
    _create(controller, _broken_template("invalid-onexit", "notify"))
    done = _submit_and_wait(controller, {"workflowTemplateRef": {"name": "invalid-onexit"}})
    nodes = {n["name"]: n for n in done["status"]["nodes"].values()}
    name = done["metadata"]["name"]
    assert done["status"]["phase"] == "Error"
    assert done["status"]["message"].startswith("error in exit template execution : pod is invalid")
    assert (nodes[name]["phase"], nodes[f"{name}.onExit"]["phase"]) == ("Succeeded", "Error")


# -- optional input artifacts, global outputs outside /tmp --------------------------------------------------
def test_a_missing_optional_input_artifact_lets_the_step_run(run_with):
    """functional_test.go TestOptionalInputArtifacts (functional/input-artifact-optional.yaml)."""
    workflow = make_workflow(
        [
            {
                "name": "main",
                "inputs": {
                    "artifacts": [
                        {
                            "name": "kubectl",
                            "path": "/bin/no-such-tool-fidelity",
                            "mode": 0o755,
                            "optional": True,
                            "http": {"url": ""},
                        }
                    ]
                },
                **shell("main", "[ ! -e /bin/no-such-tool-fidelity ] && echo NoKubectl", image="debian:9.4"),
            }
        ]
    )
    done = run_with(workflow)
    root = done["status"]["nodes"][done["metadata"]["name"]]
    assert done["status"]["phase"] == "Succeeded"
    assert (root["phase"], root["outputs"]["result"]) == ("Succeeded", "NoKubectl")


GLOBAL_ARTIFACTS = {
    "artifacts": [
        {"name": "car", "from": "{{workflow.outputs.artifacts.result-car}}"},
        {"name": "bike", "from": "{{workflow.outputs.artifacts.result-bike}}"},
    ]
}


def test_global_outputs_from_a_loop_at_the_root_reach_the_exit_handler(run_with):
    """testdata/exit-handler-parameterized-global-artifacts.yaml: each iteration writes /result.txt (outside
    /tmp) and publishes it as a global artifact; a later step and the exit handler read them."""
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [
                        {
                            "name": "make",
                            "template": "make",
                            "arguments": {"parameters": [{"name": "variable", "value": "{{item}}"}]},
                            "withItems": ["car", "bike"],
                        }
                    ],
                    [{"name": "read", "template": "read", "arguments": GLOBAL_ARTIFACTS}],
                ],
            },
            {
                "name": "make",
                "inputs": {"parameters": [{"name": "variable"}]},
                "outputs": {
                    "artifacts": [
                        {
                            "name": "result-{{inputs.parameters.variable}}",
                            "path": "/result.txt",
                            "globalName": "result-{{inputs.parameters.variable}}",
                        }
                    ],
                    "parameters": [
                        {
                            "name": "p",
                            "valueFrom": {"path": "/result.txt"},
                            "globalName": "param-{{inputs.parameters.variable}}",
                        }
                    ],
                },
                **shell("make", "echo Have {{inputs.parameters.variable}} > /result.txt"),
            },
            {"name": "exit", "steps": [[{"name": "printer", "template": "read", "arguments": GLOBAL_ARTIFACTS}]]},
            {
                "name": "read",
                "inputs": {"artifacts": [{"name": "car", "path": "/in/car"}, {"name": "bike", "path": "/in/bike"}]},
                **shell("read", "cat /in/bike /in/car; echo {{workflow.outputs.parameters.param-car}}"),
            },
        ],
        onExit="exit",
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Succeeded"
    assert nodes["read"]["outputs"]["result"] == "Have bike\nHave car\nHave car"
    assert (nodes["printer"]["phase"], nodes["printer"]["outputs"]["result"]) == (
        "Succeeded",
        "Have bike\nHave car\nHave car",
    )
    names = sorted(a["name"] for a in done["status"]["outputs"]["artifacts"])
    assert names == ["result-bike", "result-car"]


# -- a pod that cannot start -------------------------------------------------------------------------------------
def test_a_pod_whose_command_does_not_exist_fails(run_with):
    """invalid_command_test.go TestInvalidCommand (testdata/cannot-start-workflow.yaml): Failed, with
    "executable file not found" (the container's StartError), not Error."""
    done = run_with(make_workflow([{"name": "main", "container": {"image": ARGOSAY, "command": ["invalid"]}}]))
    root = done["status"]["nodes"][done["metadata"]["name"]]
    assert done["status"]["phase"] == "Failed"
    assert "executable file not found" in done["status"]["message"]
    assert root["phase"] == "Failed" and root["message"].startswith('failed to start container "main": exec: "invalid"')
