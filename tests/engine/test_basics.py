"""Steps, DAGs, parameters, outputs, fan-out and exit handlers on small hand-written workflows."""

from __future__ import annotations

import json

from tests.engine.conftest import make_workflow, nodes_by_display, sh


def test_steps_pass_parameters_results_and_global_outputs(run):
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "produce", "template": "produce"}],
                    [
                        {
                            "name": "consume",
                            "template": "consume",
                            "arguments": {
                                "parameters": [
                                    {"name": "word", "value": "{{steps.produce.outputs.parameters.word}}"},
                                    {"name": "said", "value": "{{steps.produce.outputs.result}}"},
                                ]
                            },
                        }
                    ],
                ],
            },
            {
                "name": "produce",
                **sh("echo -n kiwi > /tmp/word; echo said-{{workflow.name}}"),
                "outputs": {
                    "parameters": [{"name": "word", "valueFrom": {"path": "/tmp/word"}, "globalName": "fruit"}]
                },
            },
            {
                "name": "consume",
                "inputs": {"parameters": [{"name": "word"}, {"name": "said"}]},
                **sh("echo {{inputs.parameters.word}}/{{inputs.parameters.said}}"),
            },
        ]
    )
    done = run(workflow)
    assert done["status"]["phase"] == "Succeeded"
    nodes = nodes_by_display(done)
    assert nodes["consume"]["outputs"]["result"] == f"kiwi/said-{workflow['metadata']['name']}"
    assert done["status"]["outputs"]["parameters"] == [{"name": "fruit", "value": "kiwi"}]
    assert nodes["[0]"]["type"] == "StepGroup" and nodes["produce"]["type"] == "Pod"
    assert done["status"]["progress"] == "2/2"
    assert nodes["produce"]["name"] == f"{workflow['metadata']['name']}[0].produce"


def test_dag_fan_out_aggregates_and_failed_task_fails_the_dag(run):
    workflow = make_workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {
                            "name": "square",
                            "template": "square",
                            "withItems": [1, 2, 3],
                            "arguments": {"parameters": [{"name": "n", "value": "{{item}}"}]},
                        },
                        {
                            "name": "sum",
                            "template": "sum",
                            "depends": "square",
                            "arguments": {"parameters": [{"name": "all", "value": "{{tasks.square.outputs.result}}"}]},
                        },
                        {"name": "boom", "template": "boom", "depends": "sum"},
                        {"name": "after-boom", "template": "boom", "depends": "boom"},
                    ]
                },
            },
            {
                "name": "square",
                "inputs": {"parameters": [{"name": "n"}]},
                **sh("echo $(({{inputs.parameters.n}} * {{inputs.parameters.n}}))"),
            },
            {"name": "sum", "inputs": {"parameters": [{"name": "all"}]}, **sh("echo '{{inputs.parameters.all}}'")},
            {"name": "boom", **sh("exit 3")},
        ]
    )
    done = run(workflow)
    nodes = nodes_by_display(done)
    assert json.loads(nodes["sum"]["outputs"]["result"]) == [1, 4, 9]
    assert nodes["square"]["type"] == "TaskGroup"
    assert {nodes[f"square({i}:{i + 1})"]["phase"] for i in range(3)} == {"Succeeded"}
    assert nodes["boom"]["phase"] == "Failed" and nodes["boom"]["message"] == "Error (exit code 3)"
    assert nodes["boom"]["outputs"]["exitCode"] == "3"
    assert nodes["after-boom"]["phase"] == "Omitted"
    assert done["status"]["phase"] == "Failed"


def test_when_false_skips_and_skipped_output_default_flows(run):
    workflow = make_workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "maybe", "template": "maybe", "when": "1 == 2"},
                        {
                            "name": "use",
                            "template": "use",
                            "depends": "maybe.Skipped",
                            "arguments": {
                                "parameters": [{"name": "v", "value": "{{tasks.maybe.outputs.parameters.v}}"}]
                            },
                        },
                    ]
                },
            },
            {
                "name": "maybe",
                **sh("echo nope > /tmp/v"),
                "outputs": {"parameters": [{"name": "v", "valueFrom": {"path": "/tmp/v", "default": "fallback"}}]},
            },
            {"name": "use", "inputs": {"parameters": [{"name": "v"}]}, **sh("echo {{inputs.parameters.v}}")},
        ]
    )
    done = run(workflow)
    nodes = nodes_by_display(done)
    assert nodes["maybe"]["phase"] == "Skipped"
    assert nodes["use"]["outputs"]["result"] == "fallback"
    assert done["status"]["phase"] == "Succeeded"


def test_exit_handler_sees_workflow_status_and_failures(run):
    workflow = make_workflow(
        [
            {"name": "main", **sh("echo failing; exit 1")},
            {"name": "report", **sh("echo '{{workflow.status}}' && echo '{{workflow.failures}}'")},
        ],
        onExit="report",
    )
    done = run(workflow)
    exit_node = nodes_by_display(done)[f"{workflow['metadata']['name']}.onExit"]
    status_line, failures_line = exit_node["outputs"]["result"].splitlines()
    assert status_line == "Failed"
    assert json.loads(failures_line)[0]["message"] == "Error (exit code 1)"
    assert done["status"]["phase"] == "Failed"


def test_missing_input_and_enum_violation_are_node_errors_with_reasons(run):
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [
                        {
                            "name": "bad",
                            "template": "pick",
                            "arguments": {"parameters": [{"name": "color", "value": "mauve"}]},
                        }
                    ]
                ],
            },
            {"name": "pick", "inputs": {"parameters": [{"name": "color", "enum": ["red", "blue"]}]}, **sh("true")},
        ]
    )
    done = run(workflow)
    bad = nodes_by_display(done)["bad"]
    assert bad["phase"] == "Error"
    assert "mauve" in bad["message"] and "enum" in bad["message"]


def test_unsupported_templates_and_missing_commands_say_why(run):
    workflow = make_workflow(
        [
            {"name": "main", "steps": [[{"name": "k8s", "template": "k8s"}, {"name": "tool", "template": "tool"}]]},
            {"name": "k8s", "resource": {"action": "create", "manifest": "{}"}},
            {"name": "tool", "container": {"image": "acme/tool:1", "command": ["no-such-binary-xyz"]}},
        ]
    )
    done = run(workflow)
    nodes = nodes_by_display(done)
    assert "not supported on the embedded engine" in nodes["k8s"]["message"]
    assert "no-such-binary-xyz" in nodes["tool"]["message"] and "acme/tool:1" in nodes["tool"]["message"]
    assert (nodes["k8s"]["phase"], nodes["tool"]["phase"]) == ("Error", "Failed")  # a pod that cannot start Fails
    # Argo's executeSteps: an errored or failed child makes the step group and the steps node Failed
    assert done["status"]["phase"] == "Failed"


def test_artifacts_pass_between_steps_with_and_without_archive(run):
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "make", "template": "make"}],
                    [
                        {
                            "name": "read",
                            "template": "read",
                            "arguments": {
                                "artifacts": [
                                    {"name": "packed", "from": "{{steps.make.outputs.artifacts.packed}}"},
                                    {"name": "raw", "from": "{{steps.make.outputs.artifacts.raw}}"},
                                    {"name": "inline", "raw": {"data": "from-raw"}},
                                ]
                            },
                        }
                    ],
                ],
            },
            {
                "name": "make",
                **sh("mkdir -p /work/d && echo a > /work/d/a.txt && echo b > /tmp/b.txt"),
                "outputs": {
                    "artifacts": [
                        {"name": "packed", "path": "/work/d"},
                        {"name": "raw", "path": "/tmp/b.txt", "archive": {"none": {}}},
                        {"name": "absent", "path": "/nope", "optional": True},
                    ]
                },
            },
            {
                "name": "read",
                "inputs": {
                    "artifacts": [
                        {"name": "packed", "path": "/in/d"},
                        {"name": "raw", "path": "/in/b.txt"},
                        {"name": "inline", "path": "/in/c.txt"},
                    ]
                },
                **sh("cat /in/d/a.txt /in/b.txt /in/c.txt"),
            },
        ]
    )
    done = run(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Succeeded", nodes["read"].get("message")
    assert nodes["read"]["outputs"]["result"].split() == ["a", "b", "from-raw"]
    assert [a["name"] for a in nodes["make"]["outputs"]["artifacts"]] == ["packed", "raw"]


def test_status_parses_as_hera_and_argo_models(run):
    from hera.workflows.models import Workflow as WorkflowModel

    workflow = make_workflow(
        [
            {"name": "main", "steps": [[{"name": "a", "template": "flaky"}]]},
            {"name": "flaky", **sh("exit $((1 - {{retries}}))"), "retryStrategy": {"limit": 2}},
        ]
    )
    done = run(workflow)
    model = (
        WorkflowModel.model_validate(done)
        if hasattr(WorkflowModel, "model_validate")
        else WorkflowModel.parse_obj(done)
    )
    assert model.status is not None and model.status.phase == "Succeeded"
    types = sorted(node.type for node in (model.status.nodes or {}).values())
    assert types == ["Pod", "Pod", "Retry", "StepGroup", "Steps"]
