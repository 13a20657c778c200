"""One hand-made broken workflow per linter check: each must fail on its own case, naming where.

The base workflow uses every feature the checks look at (DAG, steps, artifacts, outputs, a GPU task, an exit
handler, a templateRef); it must lint clean, so each finding below is caused by its one mutation alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.spec.lint import lint_documents, lint_text
from workflows.spec.yamlio import Document

GPU = "nvidia.com/gpu"


def _base() -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "base-"},
        "spec": {
            "entrypoint": "main",
            "onExit": "notify",
            "arguments": {"parameters": [{"name": "greeting", "value": "hi"}]},
            "templates": [
                {
                    "name": "main",
                    "dag": {
                        "tasks": [
                            {"name": "a", "template": "produce"},
                            {
                                "name": "b",
                                "depends": "a.Succeeded",
                                "template": "consume",
                                "arguments": {
                                    "parameters": [{"name": "msg", "value": "{{tasks.a.outputs.parameters.out}}"}],
                                    "artifacts": [{"name": "data", "from": "{{tasks.a.outputs.artifacts.data}}"}],
                                },
                            },
                            {"name": "c", "dependencies": ["b"], "template": "gpu"},
                            {"name": "d", "depends": "c", "template": "steps"},
                        ]
                    },
                },
                {
                    "name": "produce",
                    "container": {"image": "busybox", "args": ["{{workflow.parameters.greeting}}"]},
                    "outputs": {
                        "parameters": [{"name": "out", "valueFrom": {"path": "/tmp/out"}}],
                        "artifacts": [{"name": "data", "path": "/tmp/data"}],
                    },
                },
                {
                    "name": "consume",
                    "inputs": {"parameters": [{"name": "msg"}], "artifacts": [{"name": "data", "path": "/tmp/in"}]},
                    "container": {"image": "busybox", "args": ["{{inputs.parameters.msg}}"]},
                },
                {
                    "name": "gpu",
                    "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
                    "container": {"image": "busybox", "resources": {"limits": {GPU: "1"}}},
                },
                {
                    "name": "steps",
                    "steps": [
                        [{"name": "s1", "template": "produce"}],
                        [
                            {
                                "name": "s2",
                                "template": "consume",
                                "arguments": {
                                    "parameters": [{"name": "msg", "value": "{{steps.s1.outputs.parameters.out}}"}],
                                    "artifacts": [{"name": "data", "from": "{{steps.s1.outputs.artifacts.data}}"}],
                                },
                            }
                        ],
                    ],
                },
                {"name": "notify", "container": {"image": "busybox", "args": ["{{workflow.status}}"]}},
            ],
        },
    }


def _template(wf: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in wf["spec"]["templates"] if t["name"] == name)


def _task(wf: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in _template(wf, "main")["dag"]["tasks"] if t["name"] == name)


def _lint(wf: dict[str, Any], *extra: dict[str, Any]) -> list[str]:
    documents = [Document("wf.yaml", copy.deepcopy(wf))] + [Document(f"extra{i}.yaml", d) for i, d in enumerate(extra)]
    return [str(issue) for issue in lint_documents(documents)]


def test_base_workflow_is_clean() -> None:
    assert _lint(_base()) == []


def _set(path: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(wf: dict[str, Any]) -> None:
        path(wf)[key] = value

    return mutate


def _append(path: Callable[[dict[str, Any]], list[Any]], value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda wf: path(wf).append(copy.deepcopy(value))


# (id, mutation, expected location, expected words in the message)
CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("schema-unknown-field", _set(lambda w: _template(w, "produce")["container"], "imagee", "x"),
     "spec.templates[produce].container", "unknown field(s) 'imagee'"),
    ("schema-wrong-type", _set(lambda w: w["spec"], "parallelism", "many"),
     "spec.parallelism", "not of type 'integer'"),
    ("unknown-template", _set(lambda w: _task(w, "a"), "template", "nope"),
     "spec.templates[main].dag.tasks[a].template", "template 'nope' is not defined"),
    ("unknown-entrypoint", _set(lambda w: w["spec"], "entrypoint", "start"),
     "spec.entrypoint", "template 'start' is not defined"),
    ("unknown-onexit", _set(lambda w: w["spec"], "onExit", "bye"), "spec.onExit", "template 'bye' is not defined"),
    ("no-template-at-all", lambda w: _task(w, "a").pop("template"),
     "spec.templates[main].dag.tasks[a]", "runs no template"),
    ("dag-cycle", _set(lambda w: _task(w, "a"), "depends", "d"),
     "spec.templates[main].dag.tasks[a]", "dependency cycle (each task waits for the next): a -> d -> c -> b -> a"),
    ("depends-unknown-task", _set(lambda w: _task(w, "b"), "depends", "a && ghost"),
     "spec.templates[main].dag.tasks[b].depends", "unknown task 'ghost'"),
    ("dependencies-unknown-task", _set(lambda w: _task(w, "c"), "dependencies", ["b", "phantom"]),
     "spec.templates[main].dag.tasks[c].dependencies", "unknown task 'phantom'"),
    ("depends-malformed", _set(lambda w: _task(w, "b"), "depends", "a &&"),
     "spec.templates[main].dag.tasks[b].depends", "invalid depends expression"),
    ("depends-bad-result", _set(lambda w: _task(w, "b"), "depends", "a.Finished"),
     "spec.templates[main].dag.tasks[b].depends", "unknown task result 'Finished'"),
    ("depends-and-dependencies", _set(lambda w: _task(w, "c"), "depends", "b"),
     "spec.templates[main].dag.tasks[c]", "both 'depends' and 'dependencies'"),
    ("input-parameter-unresolved", _set(lambda w: _template(w, "consume")["container"], "args", ["{{inputs.parameters.mgs}}"]),
     "spec.templates[consume].container.args[0]", "no input parameter 'mgs'"),
    ("input-artifact-unresolved", _set(lambda w: _template(w, "consume")["container"], "command", ["cat", "{{inputs.artifacts.dat.path}}"]),
     "spec.templates[consume].container.command[1]", "no input artifact 'dat'"),
    ("task-output-undeclared", lambda w: _task(w, "b")["arguments"]["parameters"][0].update(value="{{tasks.a.outputs.parameters.result2}}"),
     "spec.templates[main].dag.tasks[b].arguments.parameters[msg].value", "declares no output parameter 'result2'"),
    ("task-unknown", lambda w: _task(w, "b")["arguments"]["parameters"][0].update(value="{{tasks.zz.outputs.result}}"),
     "spec.templates[main].dag.tasks[b].arguments.parameters[msg].value", "unknown task 'zz'"),
    ("task-not-a-dependency", lambda w: _task(w, "b")["arguments"]["parameters"][0].update(value="{{tasks.c.outputs.result}}"),
     "spec.templates[main].dag.tasks[b].arguments.parameters[msg].value", "which is not a dependency"),
    ("step-not-earlier", lambda w: _template(w, "steps")["steps"][0].append({"name": "s0", "template": "notify", "when": "{{steps.s2.status}} == x"}),
     "spec.templates[steps].steps[s0].when", "not in an earlier step group"),
    ("steps-output-undeclared", lambda w: _template(w, "steps")["steps"][1][0]["arguments"]["artifacts"][0].update(**{"from": "{{steps.s1.outputs.artifacts.dta}}"}),
     "spec.templates[steps].steps[s2].arguments.artifacts[data].from", "declares no output artifact 'dta'"),
    ("workflow-parameter-unresolved", _set(lambda w: _template(w, "produce")["container"], "args", ["{{workflow.parameters.greting}}"]),
     "spec.templates[produce].container.args[0]", "declares no parameter 'greting'"),
    ("required-input-missing", lambda w: _task(w, "b")["arguments"].pop("parameters"),
     "spec.templates[main].dag.tasks[b].arguments.parameters", "required input parameter 'msg'"),
    ("required-artifact-missing", lambda w: _task(w, "b")["arguments"].pop("artifacts"),
     "spec.templates[main].dag.tasks[b].arguments.artifacts", "required input artifact 'data'"),
    ("entrypoint-input-missing", _set(lambda w: w["spec"], "entrypoint", "consume"),
     "spec.arguments.parameters", "required input parameter 'msg' of template 'consume'"),
    ("duplicate-template", _append(lambda w: w["spec"]["templates"], {"name": "notify", "suspend": {}}),
     "spec.templates[notify]", "duplicate template name 'notify'"),
    ("duplicate-task", _append(lambda w: _template(w, "main")["dag"]["tasks"], {"name": "a", "template": "notify"}),
     "spec.templates[main].dag.tasks[a]", "duplicate task name 'a'"),
    ("duplicate-step", lambda w: _template(w, "steps")["steps"][1].append({"name": "s1", "template": "notify"}),
     "spec.templates[steps].steps[s1]", "duplicate step name 's1'"),
    ("duplicate-workflow-parameter", _append(lambda w: w["spec"]["arguments"]["parameters"], {"name": "greeting", "value": "x"}),
     "spec.arguments.parameters[greeting]", "duplicate parameter name 'greeting'"),
    ("duplicate-input-parameter", _append(lambda w: _template(w, "consume")["inputs"]["parameters"], {"name": "msg"}),
     "spec.templates[consume].inputs.parameters[msg]", "duplicate input parameter name 'msg'"),
    ("gpu-without-toleration", lambda w: _template(w, "gpu").pop("tolerations"),
     "spec.templates[gpu].tolerations", "tolerates no 'nvidia.com/gpu' taint"),
    ("no-template-type", lambda w: _template(w, "notify").pop("container"),
     "spec.templates[notify]", "template has no type"),
    ("two-template-types", _set(lambda w: _template(w, "notify"), "script", {"image": "x", "source": "y"}),
     "spec.templates[notify]", "several types"),
    ("no-name", lambda w: w["metadata"].pop("generateName"), "metadata", "neither 'name' nor 'generateName'"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "where", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_check_fails_on_its_own_case(mutate: Callable[[dict[str, Any]], None], where: str, words: str) -> None:
    wf = _base()
    mutate(wf)
    issues = _lint(wf)
    assert any(f"wf.yaml: {where}: " in issue and words in issue for issue in issues), issues


_LIBRARY = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "library"},
    "spec": {"templates": [{"name": "echo", "container": {"image": "busybox"}}]},
}


def test_template_ref_is_checked_only_when_the_template_is_given() -> None:
    wf = _base()
    _task(wf, "a").pop("template")
    _task(wf, "a")["templateRef"] = {"name": "library", "template": "ehco"}
    _task(wf, "b")["arguments"]["parameters"][0]["value"] = "x"
    _task(wf, "b")["arguments"]["artifacts"][0] = {"name": "data", "raw": {"data": "x"}}
    assert _lint(wf) == []  # like `argo lint --offline`: nothing to check it against
    issues = _lint(wf, _LIBRARY)
    assert any("tasks[a].templateRef: WorkflowTemplate 'library' has no template 'ehco'" in i for i in issues), issues
    _task(wf, "a")["templateRef"]["template"] = "echo"
    assert _lint(wf, _LIBRARY) == []


def test_workflow_template_ref_brings_the_template_arguments() -> None:
    library = copy.deepcopy(_LIBRARY)
    library["spec"]["arguments"] = {"parameters": [{"name": "who"}]}
    library["spec"]["templates"][0]["container"]["args"] = ["{{workflow.parameters.who}}"]
    wf = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "ref-"},
        "spec": {"workflowTemplateRef": {"name": "library"}, "entrypoint": "echoo"},
    }
    issues = _lint(wf, library)
    assert any("wf.yaml: spec.entrypoint: template 'echoo' is not defined" in i for i in issues), issues
    wf["spec"]["entrypoint"] = "echo"
    assert _lint(wf, library) == []


def test_duplicate_yaml_keys_are_reported_with_their_line() -> None:
    text = yaml.safe_dump(_base(), sort_keys=False) + "metadata:\n  name: again\n"
    issues = [str(i) for i in lint_text(text, "dup.yaml")]
    assert any("dup.yaml: line " in i and "duplicate key 'metadata'" in i for i in issues), issues


def test_multi_document_files_name_the_document() -> None:
    broken = _base()
    broken["spec"]["entrypoint"] = "missing"
    text = yaml.safe_dump_all([_base(), broken])
    issues = [str(i) for i in lint_text(text, "two.yaml")]
    assert issues and all(i.startswith("two.yaml#2: spec.entrypoint") for i in issues), issues


def test_non_kubernetes_yaml_is_rejected() -> None:
    issues = [str(i) for i in lint_text("just: a mapping\n", "x.yaml")]
    assert issues == ["x.yaml: (document): not a Kubernetes object: 'apiVersion' or 'kind' missing [yaml]"]
    assert "x.yaml: yaml: " in str(lint_text("a: [unclosed\n", "x.yaml")[0])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


_BASE_PATHS = _paths(_base())[1:]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.just("{{tasks.a.outputs.parameters.out}}"),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["name", "template", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_BASE_PATHS), _JSON), min_size=1, max_size=3))
def test_garbage_anywhere_gives_findings_never_a_crash(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    wf = _base()
    for path, value in mutations:
        node: Any = wf
        try:
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this place
    issues = lint_documents([Document("fuzz.yaml", wf)])
    assert all(issue.file == "fuzz.yaml" and issue.message for issue in issues)


@pytest.mark.parametrize(
    ("field", "value", "where", "words"),
    [
        ("schedules", ["0 3 * * 1", "61 * * * *"], "spec.schedules[1]", "not a 5-field cron schedule"),
        ("schedules", ["*/5 * * * * *"], "spec.schedules[0]", "not a 5-field cron schedule"),
        ("timezone", "Mars/Olympus", "spec.timezone", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_cron_workflow_schedule_and_timezone(field: str, value: object, where: str, words: str) -> None:
    cron = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {"schedules": ["@daily"], "timezone": "UTC", "workflowSpec": copy.deepcopy(_base()["spec"])},
    }
    assert _lint(cron) == []
    cron["spec"][field] = value
    assert any(f"wf.yaml: {where}: " in issue and words in issue for issue in _lint(cron)), _lint(cron)
