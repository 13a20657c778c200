"""Argo's phase semantics on the edges (issue 11, first half): lifecycle hooks, memoize with outputs, empty
``withParam``, ``when`` expressions over items, outputs of skipped nodes, failFast with parallelism.

Each test is a small Workflow modelled on one of Argo's own e2e tests (named in its docstring) and asserts the
workflow phase, the node phases and the message Argo's controller gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.engine.conftest import make_workflow, nodes_by_display
from workflows.engine.runner import EngineContext, run_workflow

ARGOSAY = "argoproj/argosay:v2"
Templates = dict[tuple[str, str], dict[str, Any]]


def argosay(name: str, script: str = "/argosay", **extra: Any) -> dict[str, Any]:
    """Argo's e2e style: the argosay image's shell calling its /argosay entrypoint."""
    return {"name": name, "container": {"image": ARGOSAY, "command": ["/bin/sh", "-c"], "args": [script]}, **extra}


@pytest.fixture(scope="module")
def templates() -> Templates:
    return {}


@pytest.fixture(scope="module")
def run_with(
    tmp_path_factory: pytest.TempPathFactory, templates: Templates
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """One engine for the module (building its launcher takes ~1 s); each workflow has its own name."""
    home = tmp_path_factory.mktemp("fidelity") / "home"
    context = EngineContext.local(home, lambda kind, name: templates.get((kind, name)))
    if not context.isolated:
        pytest.skip("needs the node sandbox (root + unshare + overlayfs)")
    return lambda workflow: run_workflow(workflow, context)


def by_name_suffix(done: dict[str, Any], suffix: str) -> dict[str, Any]:
    found = [n for n in done["status"]["nodes"].values() if n["name"].endswith(suffix)]
    assert len(found) == 1, f"expected one node named *{suffix}, got {[n['name'] for n in found]}"
    return found[0]


# -- lifecycle hooks ------------------------------------------------------------------------------------------
def test_workflow_hooks_fire_and_the_workflow_waits_for_a_triggered_hook(run_with):
    """hooks_test.go TestWorkflowLevelHooksSuccessVersion / TestWorkflowLevelHooksWaitForTriggeredHook: the
    hooks run the image's ``/argosay``; the run ends Succeeded only after the (slower) running hook ends."""
    workflow = make_workflow(
        [
            {"name": "main", "steps": [[{"name": "step1", "template": "argosay"}]]},
            argosay("argosay", "sleep 0.1; /argosay"),
            argosay("slow", "sleep 0.5; /argosay"),
        ],
        hooks={
            "running": {"expression": 'workflow.status == "Running"', "template": "slow"},
            "succeed": {"expression": 'workflow.status == "Succeeded"', "template": "argosay"},
            "failed": {"expression": 'workflow.status == "Failed"', "template": "argosay"},  # never fires
        },
    )
    done = run_with(workflow)
    assert done["status"]["phase"] == "Succeeded"
    running, succeed = by_name_suffix(done, ".hooks.running"), by_name_suffix(done, ".hooks.succeed")
    assert (running["phase"], succeed["phase"]) == ("Succeeded", "Succeeded")
    assert running["outputs"]["result"] == "hello argo"
    assert running["finishedAt"] <= done["status"]["finishedAt"]
    assert not [n for n in done["status"]["nodes"].values() if n["name"].endswith(".hooks.failed")]
    assert done["status"]["progress"] == "3/3"


def test_template_hooks_on_a_failing_task_and_its_omitted_dependent(run_with):
    """hooks_test.go TestTemplateLevelHooksDagHasDependencyVersion: A fails (its hooks succeed), B is Omitted and
    its hooks never fire; the workflow is Failed."""
    hooks = {
        "running": {"template": "hook", "expression": 'tasks.{0}.status == "Running"'},
        "success": {"template": "hook", "expression": 'tasks.{0}.status == "Succeeded"'},
    }

    def task_hooks(task: str) -> dict[str, Any]:
        return {name: {**spec, "expression": spec["expression"].format(task)} for name, spec in hooks.items()}

    workflow = make_workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "A", "template": "fail", "hooks": task_hooks("A")},
                        {"name": "B", "template": "hook", "dependencies": ["A"], "hooks": task_hooks("B")},
                    ]
                },
            },
            argosay("fail", "sleep 0.2; /argosay; exit 1"),
            argosay("hook"),
        ]
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Failed"
    assert done["status"]["message"] == f"child '{nodes['A']['id']}' failed"
    assert nodes["A"]["phase"] == "Failed" and nodes["A"]["message"] == "Error (exit code 1)"
    assert nodes["A.hooks.running"]["phase"] == "Succeeded"
    assert "A.hooks.success" not in nodes
    assert nodes["B"]["phase"] == "Omitted"
    assert not [n for n in nodes if n.startswith("B.hooks")]
    assert done["status"]["progress"] == "1/2"  # the failed pod and the running hook: nothing else ran


def test_hooks_of_a_workflow_template_reached_by_workflow_template_ref(run_with, templates):
    """workflow_template_test.go TestWorkflowTemplateWithHook (testdata/workflow-templates/success-hook.yaml)."""
    templates["WorkflowTemplate", "hook"] = {
        "kind": "WorkflowTemplate",
        "metadata": {"name": "hook"},
        "spec": {
            "entrypoint": "main",
            "templates": [argosay("main", "sleep 0.1; /argosay")],
            "hooks": {
                "running": {"expression": 'workflow.status == "Running"', "template": "main"},
                "succeed": {"expression": 'workflow.status == "Succeeded"', "template": "main"},
            },
        },
    }
    workflow = make_workflow([], workflowTemplateRef={"name": "hook"})
    del workflow["spec"]["entrypoint"], workflow["spec"]["templates"]
    done = run_with(workflow)
    assert done["status"]["phase"] == "Succeeded"
    assert by_name_suffix(done, ".hooks.running")["phase"] == "Succeeded"
    assert by_name_suffix(done, ".hooks.succeed")["phase"] == "Succeeded"


# -- memoize on steps and DAG templates with outputs ---------------------------------------------------------
@pytest.mark.parametrize("kind", ["steps", "dag"])
def test_memoized_steps_and_dag_templates_restore_their_outputs_on_a_hit(run_with, kind):
    """functional_test.go TestStepLevelMemoize / TestDAGLevelMemoize: the memoized template is a steps/DAG
    template whose output comes from ``valueFrom.Parameter`` (Go decodes the capitalised key as
    ``parameter``); the second call hits the cache and its output feeds the next step."""
    prefix = "steps" if kind == "steps" else "tasks"
    body: dict[str, Any] = (
        {"steps": [[{"name": "cache", "template": "say", "arguments": {"parameters": [_msg()]}}]]}
        if kind == "steps"
        else {"dag": {"tasks": [{"name": "cache", "template": "say", "arguments": {"parameters": [_msg()]}}]}}
    )
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "hello1", "template": "memo", "arguments": {"parameters": [_msg("hello1")]}}],
                    [{"name": "hello2", "template": "memo", "arguments": {"parameters": [_msg("hello1")]}}],
                    [
                        {
                            "name": "use",
                            "template": "say",
                            "arguments": {"parameters": [_msg("got {{steps.hello2.outputs.parameters.output}}")]},
                        }
                    ],
                ],
            },
            {
                "name": "memo",
                "inputs": {"parameters": [{"name": "message"}]},
                "memoize": {
                    "key": "{{inputs.parameters.message}}",
                    "maxAge": "10s",
                    "cache": {"configMap": {"name": f"memo-{kind}"}},
                },
                "outputs": {
                    "parameters": [
                        {"name": "output", "valueFrom": {"Parameter": f"{{{{{prefix}.cache.outputs.result}}}}"}}
                    ]
                },
                **body,
            },
            {
                "name": "say",
                "inputs": {"parameters": [{"name": "message"}]},
                "container": {
                    "image": ARGOSAY,
                    "command": ["/argosay"],
                    "args": ["echo", "{{inputs.parameters.message}}"],
                },
            },
        ]
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Succeeded"
    assert nodes["hello1"]["memoizationStatus"]["hit"] is False
    assert nodes["hello2"]["memoizationStatus"] == {"hit": True, "key": "hello1", "cacheName": f"memo-{kind}"}
    assert nodes["hello2"]["phase"] == "Succeeded"
    assert nodes["hello2"]["outputs"]["parameters"] == [{"name": "output", "value": "hello1"}]
    assert nodes["use"]["outputs"]["result"] == "got hello1"


def _msg(value: str = "{{inputs.parameters.message}}") -> dict[str, str]:
    return {"name": "message", "value": value}


# -- withParam over an empty list; when expressions over items ------------------------------------------------
def _empty_list_producer() -> dict[str, Any]:
    """functional/loops-empty-param.yaml: a *script* with args and no source; Argo runs it as a container."""
    return {"name": "gen", "script": {"image": ARGOSAY, "args": ["echo", "[]"]}}


def test_with_param_over_an_empty_list_skips_the_step(run_with):
    """functional_test.go TestLoopEmptyParam: the step is Skipped "Skipped, empty params"; the run Succeeds."""
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "generate", "template": "gen"}],
                    [{"name": "sleep", "template": "argosay", "withParam": "{{steps.generate.outputs.result}}"}],
                ],
            },
            _empty_list_producer(),
            argosay("argosay"),
        ]
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Succeeded"
    assert nodes["generate"]["outputs"]["result"] == "[]"
    assert (nodes["sleep"]["phase"], nodes["sleep"]["message"]) == ("Skipped", "Skipped, empty params")


def test_with_param_over_an_empty_list_skips_the_dag_task(run_with):
    """functional_test.go TestDAGEmptyParam."""
    workflow = make_workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "generate", "template": "gen"},
                        {
                            "name": "sleep",
                            "template": "argosay",
                            "dependencies": ["generate"],
                            "withParam": "{{tasks.generate.outputs.result}}",
                        },
                    ]
                },
            },
            _empty_list_producer(),
            argosay("argosay"),
        ]
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Succeeded"
    assert (nodes["sleep"]["phase"], nodes["sleep"]["message"]) == ("Skipped", "Skipped, empty params")


def test_when_expressions_over_loop_items_and_chained_inputs(run_with):
    """functional/steps-when-expr-filter.yaml (TestStepsWhenExprFilter): an input whose value is an expression
    over an earlier input, and a ``when`` with ``{{= … }}`` over each item; all four items run."""
    items = '[{"name": "first", "type": ""}, {"name": "second", "type": "always"}, {"name": "third", "type": "test"}, {"name": "fourth"}]'
    workflow = make_workflow(
        [
            {
                "name": "main",
                "inputs": {
                    "parameters": [
                        {"name": "test", "value": "true"},
                        {
                            "name": "list",
                            "value": "{{= concat(['always'], inputs.parameters.test == 'true' ? ['test'] : []) | toJSON() }}",
                        },
                    ]
                },
                "steps": [
                    [
                        {
                            "name": "fst",
                            "template": "run",
                            "when": "\"{{= get(item, 'type') ?? 'always' }}\"\nin\n"
                            '("{{= inputs.parameters.list | fromJSON() | join(\'","\') }}","")\n',
                            "withParam": items,
                            "arguments": {"parameters": [{"name": "name", "value": "{{ item.name }}"}]},
                        }
                    ]
                ],
            },
            {
                "name": "run",
                "inputs": {"parameters": [{"name": "name"}]},
                "container": {"image": ARGOSAY, "args": ["echo", "{{inputs.parameters.name}}"]},
            },
        ]
    )
    done = run_with(workflow)
    assert done["status"]["phase"] == "Succeeded"
    fst = {n["displayName"]: n for n in done["status"]["nodes"].values() if n["displayName"].startswith("fst(")}
    assert len(fst) == 4 and {n["phase"] for n in fst.values()} == {"Succeeded"}
    assert sorted(n["outputs"]["result"] for n in fst.values()) == ["first", "fourth", "second", "third"]


# -- outputs of skipped or omitted nodes ------------------------------------------------------------------------
ABSENT_INPUT = "inputs.parameters.message-from-b: argument references an absent optional"


@pytest.mark.parametrize("skipped_by", ["when", "depends"])
def test_dag_consumer_of_a_skipped_or_omitted_output_errors(run_with, skipped_by):
    """functional_test.go TestDAGSkippedOutputRef / TestDAGOmittedOutputRef (Argo's common.ProcessArgs): the
    consumer is Error "…absent optional…", the DAG and the workflow Error."""
    stage_b: dict[str, Any] = {"name": "stage-b", "template": "produce"}
    if skipped_by == "when":
        stage_b["when"] = '"false" == "true"'
    else:
        stage_b["depends"] = "stage-a.Failed"
    workflow = make_workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "stage-a", "template": "produce"},
                        stage_b,
                        {
                            "name": "stage-c",
                            "template": "consume",
                            "depends": "stage-a && (stage-b || stage-b.Skipped || stage-b.Omitted)",
                            "arguments": {
                                "parameters": [
                                    {"name": "message-from-b", "value": "{{tasks.stage-b.outputs.parameters.out}}"}
                                ]
                            },
                        },
                    ]
                },
            },
            {
                "name": "produce",
                "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/out.txt"}}]},
                "container": {"image": ARGOSAY, "args": ["echo", "hello", "/tmp/out.txt"]},
            },
            {
                "name": "consume",
                "inputs": {"parameters": [{"name": "message-from-b"}]},
                "container": {"image": ARGOSAY, "args": ["echo", "{{inputs.parameters.message-from-b}}"]},
            },
        ]
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Error"
    assert nodes["stage-a"]["phase"] == "Succeeded"
    assert nodes["stage-b"]["phase"] == ("Skipped" if skipped_by == "when" else "Omitted")
    assert nodes["stage-c"]["phase"] == "Error" and nodes["stage-c"]["message"].startswith(ABSENT_INPUT)
    assert done["status"]["message"] == f"child '{nodes['stage-c']['id']}' failed"


def test_steps_referencing_a_skipped_output_fail(run_with):
    """functional_test.go TestStepsSkippedWithParamRef: the expanding step errors on the absent optional and
    the errored step group rolls up to the steps template as Failed (not Error)."""
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "producer", "template": "produce", "when": "false"}],
                    [
                        {
                            "name": "consumer",
                            "template": "consume",
                            "withParam": "{{steps.producer.outputs.parameters.items}}",
                            "arguments": {"parameters": [{"name": "in", "value": "{{item}}"}]},
                        }
                    ],
                ],
            },
            {
                "name": "produce",
                "outputs": {"parameters": [{"name": "items", "valueFrom": {"path": "/tmp/out.txt"}}]},
                "container": {"image": ARGOSAY, "args": ["echo", '["real"]', "/tmp/out.txt"]},
            },
            {
                "name": "consume",
                "inputs": {"parameters": [{"name": "in"}]},
                "container": {"image": ARGOSAY, "args": ["echo", "{{inputs.parameters.in}}"]},
            },
        ]
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Failed"
    assert nodes["producer"]["phase"] == "Skipped"
    assert nodes["consumer"]["phase"] == "Error"
    assert nodes["consumer"]["message"] == (
        "unable to substitute {{steps.producer.outputs.parameters.items}}: output is an absent optional "
        "(skipped/omitted node with no default)"
    )
    assert nodes["[1]"]["phase"] == "Failed"
    assert done["status"]["message"] == f"child '{nodes['consumer']['id']}' failed"


# -- failFast with parallelism -----------------------------------------------------------------------------------
FAIL_FAST = "template has failed or errored children and failFast enabled"


def test_fail_fast_with_parallelism_in_steps(run_with):
    """functional_test.go TestWorkflowParallelismStepFailFast (expectedfailures/parallelism-step-fail-fast.yaml):
    ``command: [exit, 1]`` cannot start (exit is a shell builtin), so step1 Fails; the run is Failed with the
    failFast message on the step group and the steps node (operator.checkParallelism)."""
    workflow = make_workflow(
        [
            {
                "name": "main",
                "parallelism": 2,
                "failFast": True,
                "steps": [[{"name": "step1", "template": "fail"}, {"name": "step2", "template": "sleep"}]],
            },
            {"name": "fail", "container": {"image": ARGOSAY, "command": ["exit", "1"]}},
            {"name": "sleep", "container": {"image": ARGOSAY, "command": ["sleep", "0.3"]}},
        ]
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert (done["status"]["phase"], done["status"]["message"]) == ("Failed", FAIL_FAST)
    assert (nodes["[0]"]["phase"], nodes["[0]"]["message"]) == ("Failed", FAIL_FAST)
    assert nodes["step1"]["phase"] == "Failed" and "executable file not found" in nodes["step1"]["message"]
    assert nodes["step2"]["phase"] == "Succeeded"


def test_fail_fast_stops_starting_steps_once_one_failed(run_with):
    """With ``parallelism: 1`` the second step of the group never starts after the first failed."""
    workflow = make_workflow(
        [
            {
                "name": "main",
                "parallelism": 1,
                "failFast": True,
                "steps": [[{"name": "step1", "template": "fail"}, {"name": "step2", "template": "fail"}]],
            },
            argosay("fail", "exit 1"),
        ]
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert (done["status"]["phase"], done["status"]["message"]) == ("Failed", FAIL_FAST)
    assert nodes["step1"]["phase"] == "Failed" and "step2" not in nodes


def test_fail_fast_with_parallelism_in_a_dag(run_with):
    """functional_test.go TestWorkflowParallelismDAGFailFast."""
    workflow = make_workflow(
        [
            {
                "name": "main",
                "parallelism": 2,
                "failFast": True,
                "dag": {"tasks": [{"name": "task1", "template": "fail"}, {"name": "task2", "template": "sleep"}]},
            },
            argosay("fail", "exit 1"),
            argosay("sleep", "sleep 0.3"),
        ]
    )
    done = run_with(workflow)
    nodes = nodes_by_display(done)
    assert (done["status"]["phase"], done["status"]["message"]) == ("Failed", FAIL_FAST)
    assert nodes["task1"]["phase"] == "Failed" and nodes["task2"]["phase"] == "Succeeded"
