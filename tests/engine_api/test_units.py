"""Pure helpers: label selectors, the ``fields`` filter, structural lint, pod names, renderings."""

from __future__ import annotations

import pytest

from tests.engine_api.conftest import shell_workflow
from workflows.engine._cli_render import list_table, node_tree, progress_line
from workflows.engine._lint import lint_object
from workflows.engine._logs import log_entries, log_file, pod_name
from workflows.engine._selectors import SelectorError, filter_fields, matches_labels, parse_label_selector
from workflows.spec.submit import apply_submit_options


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=x", {"app": "x"}, True),
        ("app==x", {"app": "y"}, False),
        ("app!=x", {}, True),
        ("app in (x, y),tier", {"app": "y", "tier": "1"}, True),
        ("app notin (x)", {"app": "x"}, False),
        ("!tier", {"tier": "1"}, False),
        ("", {"anything": "goes"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert matches_labels(labels, parse_label_selector(selector)) is expected


def test_malformed_selector_names_the_part() -> None:
    with pytest.raises(SelectorError, match="a=b=c"):
        parse_label_selector("ok=1,a=b=c")


def test_fields_keep_and_drop() -> None:
    listing = {
        "metadata": {"resourceVersion": "3"},
        "items": [{"metadata": {"name": "a", "uid": "1"}, "status": {"phase": "Running", "nodes": {"x": {}}}}],
    }
    kept = filter_fields(listing, "metadata.resourceVersion,items.metadata.name,items.status.phase")
    assert kept == {
        "metadata": {"resourceVersion": "3"},
        "items": [{"metadata": {"name": "a"}, "status": {"phase": "Running"}}],
    }
    dropped = filter_fields(listing, "-items.status.nodes")
    assert dropped["items"][0]["status"] == {"phase": "Running"}


def test_lint_combines_the_linter_and_template_references() -> None:
    workflow = shell_workflow("w", "true")
    workflow["spec"]["entrypoint"] = "missing"
    assert any("missing" in issue.message for issue in lint_object(workflow))
    assert lint_object(shell_workflow("fine", "true")) == []
    reference = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "r-"},
                 "spec": {"workflowTemplateRef": {"name": "t"}}}  # fmt: skip
    assert [i.path for i in lint_object(reference, lambda kind, name: None)] == ["spec.workflowTemplateRef"]
    assert lint_object(reference, lambda kind, name: {"kind": kind}) == []


def test_log_selection_by_node_includes_its_retries(tmp_path) -> None:
    nodes = {
        "wf-1": {"id": "wf-1", "displayName": "train(0)", "type": "Pod", "templateName": "t", "phase": "Failed"},
        "wf-2": {"id": "wf-2", "displayName": "train(1)", "type": "Pod", "templateName": "t", "phase": "Succeeded"},
        "wf-3": {"id": "wf-3", "displayName": "trainer", "type": "Pod", "templateName": "t", "phase": "Succeeded"},
    }
    workflow = {"metadata": {"name": "wf"}, "status": {"phase": "Succeeded", "nodes": nodes}}
    for node_id in nodes:
        path = log_file(tmp_path, "wf", node_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"line of {node_id}\n")
    contents = [entry["result"]["content"] for entry in log_entries(workflow, tmp_path, pod="train")]
    assert sorted(contents) == ["line of wf-1", "line of wf-2"]


def test_pod_names_follow_argo_v2() -> None:
    node = {"id": "wf-123", "templateName": "train", "type": "Pod"}
    assert pod_name("wf", node) == "wf-train-123"
    assert pod_name("wf", {"id": "wf", "type": "Pod"}) == "wf"


def test_submit_options_apply_like_argo() -> None:
    workflow = shell_workflow("w", "true")
    workflow["spec"]["arguments"] = {"parameters": [{"name": "a", "value": "1"}]}
    options = {"generateName": "g-", "entryPoint": "step0", "parameters": ["a=2", "b=3"], "labels": "x=1,y=2"}
    applied = apply_submit_options(workflow, options)
    assert applied["spec"]["entrypoint"] == "step0"
    assert applied["spec"]["arguments"]["parameters"] == [{"name": "a", "value": "2"}, {"name": "b", "value": "3"}]
    assert applied["metadata"]["labels"] == {"x": "1", "y": "2"}


def test_renderings_show_tree_and_progress() -> None:
    workflow = {
        "metadata": {"name": "wf", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {
            "phase": "Running",
            "progress": "1/2",
            "startedAt": "2026-01-01T00:00:00Z",
            "nodes": {
                "wf": {"id": "wf", "displayName": "wf", "phase": "Running", "children": ["wf-1", "wf-2"], "type": "DAG"},
                "wf-1": {"id": "wf-1", "displayName": "a", "phase": "Succeeded", "type": "Pod", "templateName": "t",
                         "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:01:05Z"},
                "wf-2": {"id": "wf-2", "displayName": "b", "phase": "Running", "type": "Pod", "templateName": "t",
                         "startedAt": "2026-01-01T00:01:05Z"},
            },
        },
    }  # fmt: skip
    rows = node_tree(workflow)
    assert [row[0] for row in rows] == ["STEP", "● wf", "├─✔ a", "└─● b"]
    assert rows[0] == ["STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE"]
    assert rows[2][2:4] == ["wf-t-1", "1m05s"]
    assert progress_line(workflow) == "wf: Running  1/2  running: b"
    assert list_table([workflow])[1][:2] == ["wf", "Running"]
