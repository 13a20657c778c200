"""``driftloop engine run``: exit codes, parameters, templates from other files, output formats."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from click.testing import CliRunner

from workflows.engine.run_cli import run_command


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_HOME", str(tmp_path / "home"))


def _write(path, *docs):
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


WORKFLOW = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"generateName": "greet-"},
    "spec": {
        "entrypoint": "main",
        "arguments": {"parameters": [{"name": "who", "value": "world"}]},
        "templates": [
            {
                "name": "main",
                "steps": [
                    [
                        {
                            "name": "hello",
                            "templateRef": {"name": "lib", "template": "say"},
                            "arguments": {"parameters": [{"name": "what", "value": "{{workflow.parameters.who}}"}]},
                        }
                    ]
                ],
            },
        ],
    },
}
LIBRARY = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "lib"},
    "spec": {
        "templates": [
            {
                "name": "say",
                "inputs": {"parameters": [{"name": "what"}]},
                "container": {
                    "image": "busybox",
                    "command": ["sh", "-c"],
                    "args": ["echo hello {{inputs.parameters.what}}; [ {{inputs.parameters.what}} != fail ]"],
                },
            }
        ]
    },
}


def test_json_output_parameters_and_templates_file(tmp_path):
    workflow_file = _write(tmp_path / "wf.yaml", WORKFLOW)
    library_file = _write(tmp_path / "lib.yaml", LIBRARY)
    result = CliRunner().invoke(
        run_command, [workflow_file, "--templates", library_file, "-p", "who=there", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    finished = json.loads(result.output)
    results = [n.get("outputs", {}).get("result") for n in finished["status"]["nodes"].values()]
    assert "hello there" in results


def test_summary_and_failure_exit_code_with_templates_in_the_same_file(tmp_path):
    both = _write(tmp_path / "both.yaml", LIBRARY, WORKFLOW)
    result = CliRunner().invoke(run_command, [both, "-p", "who=fail"])
    assert result.exit_code == 1
    assert re.search(r"^Status: +Failed$", result.output, re.MULTILINE) and "Error (exit code 1)" in result.output


def test_missing_template_and_bad_parameter_are_explained(tmp_path):
    workflow_file = _write(tmp_path / "wf.yaml", WORKFLOW)
    result = CliRunner().invoke(run_command, [workflow_file])
    assert result.exit_code == 1
    assert "WorkflowTemplate 'lib' not found" in result.output
    bad = CliRunner().invoke(run_command, [workflow_file, "-p", "novalue"])
    assert bad.exit_code != 0 and "is not name=value" in str(bad.exception)


def test_a_lone_workflow_template_runs_through_a_workflow_template_ref(tmp_path):
    template = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "solo"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "n", "value": "1"}]},
            "templates": [
                {
                    "name": "main",
                    "inputs": {"parameters": [{"name": "n"}]},
                    "container": {"image": "alpine", "command": ["echo", "n={{inputs.parameters.n}}"]},
                }
            ],
        },
    }
    result = CliRunner().invoke(run_command, [_write(tmp_path / "solo.yaml", template), "-p", "n=7", "-o", "yaml"])
    assert result.exit_code == 0, result.output
    finished = yaml.safe_load(result.output)
    assert finished["spec"]["workflowTemplateRef"] == {"name": "solo", "clusterScope": False}
    (root,) = [n for n in finished["status"]["nodes"].values() if n["type"] == "Pod"]
    assert root["outputs"]["result"] == "n=7"


def test_configmap_values_feed_parameters_from_the_file_or_the_home_store(tmp_path):
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "from-configmap"},
        "spec": {
            "entrypoint": "main",
            "arguments": {
                "parameters": [
                    {"name": "greeting", "valueFrom": {"configMapKeyRef": {"name": "texts", "key": "hello"}}}
                ]
            },
            "templates": [
                {
                    "name": "main",
                    "inputs": {
                        "parameters": [
                            {"name": "greeting"},
                            {"name": "mood", "valueFrom": {"configMapKeyRef": {"name": "moods", "key": "today"}}},
                        ]
                    },
                    "container": {
                        "image": "busybox",
                        "command": ["echo", "{{inputs.parameters.greeting}} {{inputs.parameters.mood}}"],
                    },
                }
            ],
        },
    }
    texts = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "texts"}, "data": {"hello": "bonjour"}}
    store = tmp_path / "home" / "configmaps"
    store.mkdir(parents=True)
    _write(
        store / "moods.yaml",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "moods"}, "data": {"today": "calm"}},
    )
    result = CliRunner().invoke(run_command, [_write(tmp_path / "wf.yaml", texts, workflow), "-o", "json"])
    assert result.exit_code == 0, result.output
    (pod,) = json.loads(result.output)["status"]["nodes"].values()
    assert pod["outputs"]["result"] == "bonjour calm"

    (store / "moods.yaml").unlink()
    missing = CliRunner().invoke(run_command, [_write(tmp_path / "wf.yaml", texts, workflow)])
    assert missing.exit_code == 1 and "ConfigMap 'moods' has no key 'today'" in missing.output


def test_the_tree_is_argo_gets_the_one_runs_get_prints(tmp_path):
    """Step groups dissolve: a and b (group 0) and c (group 1) are siblings under the root, each with its pod."""
    from workflows.engine._cli_render import node_tree

    say = {"image": "busybox", "command": ["sh", "-c"], "args": ["echo hi"]}
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "tree"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": [[{"name": "a", "template": "say"}, {"name": "b", "template": "say"}],
                                           [{"name": "c", "template": "say"}]]},
                {"name": "say", "container": say},
            ],
        },
    }  # fmt: skip
    result = CliRunner().invoke(run_command, [_write(tmp_path / "tree.yaml", workflow)])
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("STEP") :].splitlines()
    assert table[0].split() == ["STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE"]
    assert [line.split()[:3] for line in table[1:]] == [
        ["✔", "tree", "main"],
        ["├─✔", "a", "say"],
        ["├─✔", "b", "say"],
        ["└─✔", "c", "say"],
    ]
    assert all(line.split()[3].startswith("tree-say-") for line in table[2:])
    finished = json.loads(CliRunner().invoke(run_command, [str(tmp_path / "tree.yaml"), "-o", "json"]).output)
    assert [row[0] for row in node_tree(finished)] == ["STEP", "✔ tree", "├─✔ a", "├─✔ b", "└─✔ c"]
