"""Process-free helpers: input binding, fan-out items, node names/ids, durations, retry plans, selectors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.engine._control import matches_selector
from workflows.engine._images import ImageMap
from workflows.engine._io import BindError, bind_parameters, expand_items, item_label, sequence_items
from workflows.engine._model import node_id_for
from workflows.engine._retry import RetryPlan, parse_duration


def test_bind_parameters_prefers_arguments_then_value_then_default():
    template = {
        "name": "t",
        "inputs": {
            "parameters": [{"name": "a"}, {"name": "b", "default": "2"}, {"name": "c", "value": "3", "default": "x"}]
        },
    }
    assert bind_parameters(template, {"parameters": [{"name": "a", "value": 1}]}) == {"a": "1", "b": "2", "c": "3"}
    with pytest.raises(BindError, match=r"inputs\.parameters\.a was not supplied"):
        bind_parameters(template, {})


def test_unresolved_output_reference_falls_back_to_the_input_default():
    template = {"name": "t", "inputs": {"parameters": [{"name": "in", "default": "fallback"}]}}
    arguments = {"parameters": [{"name": "in", "value": "{{tasks.producer.outputs.parameters.msg}}"}]}
    assert bind_parameters(template, arguments) == {"in": "fallback"}


def test_fan_out_items_and_labels():
    assert expand_items({"withParam": '[{"a": 1}, "x"]'}) == [{"a": 1}, "x"]
    assert expand_items({"withItems": [True, 2.0]}) == [True, 2.0]
    assert sequence_items({"start": "5", "end": "3"}) == ["5", "4", "3"]
    assert sequence_items({"count": "3", "format": "x%02d"}) == ["x00", "x01", "x02"]
    assert item_label({"tag": "9.1", "image": "debian"}) == "image:debian,tag:9.1"
    assert item_label(True) == "true"
    with pytest.raises(BindError, match="not a JSON list"):
        expand_items({"withParam": "{not json"})
    with pytest.raises(BindError, match="mutually exclusive"):
        sequence_items({"count": "2", "end": "4"})


def test_node_ids_match_argos_fnv_scheme():
    assert node_id_for("wf", "wf") == "wf"
    first, second = node_id_for("wf", "wf[0].a"), node_id_for("wf", "wf[0].b")
    assert first != second and first.startswith("wf-") and first[3:].isdigit()


@given(st.integers(min_value=0, max_value=10**6))
def test_durations_in_seconds_and_go_syntax_agree(seconds):
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    assert parse_duration(f"{hours}h{minutes}m{secs}s") == seconds == parse_duration(str(seconds))


def test_bad_duration_is_a_clear_error():
    with pytest.raises(Exception, match="is not a duration"):
        parse_duration("soon")


def test_retry_plan_backoff_grows_and_caps():
    plan = RetryPlan.parse({"limit": "3", "backoff": {"duration": "1s", "factor": "2", "cap": "3s"}})
    assert [plan.backoff_before(n) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]
    assert plan.attempts_left(3) and not plan.attempts_left(4)
    assert plan.policy_allows("Failed", "") and not plan.policy_allows("Error", "")
    always = RetryPlan.parse({"retryPolicy": "Always"})
    assert always.limit is None and always.policy_allows("Error", "") and always.policy_allows("Failed", "")


def test_node_field_selectors():
    node = {"displayName": "approve", "templateName": "wait", "phase": "Running"}
    assert matches_selector(node, "displayName=approve")
    assert matches_selector(node, "displayName=approve,templateName!=other")
    assert not matches_selector(node, "displayName=deny")
    assert matches_selector(node, None)


def test_image_map_rules(tmp_path):
    (tmp_path / "image-map.yaml").write_text("'acme/*': python\n")
    images = ImageMap.load(tmp_path, tmp_path / "bin")
    assert images.kind_of("acme/trainer:1.2") == "python"
    assert images.kind_of("argoproj/argosay:v2") == "argosay"
    assert images.kind_of("argoproj/argosay:v1") == "cowsay"
    assert images.kind_of("docker/whalesay:latest") == "cowsay"
    assert images.kind_of("python:alpine3.23") == "python"
    assert images.kind_of("ghcr.io/driftloop/driftloop:abc123") == "project"
    assert images.kind_of("busybox") == "host"
    assert images.runtime("busybox").argv([], ["echo", "x"]) == ["echo", "x"]
    assert images.runtime("argoproj/argosay:v2").argv([], []) == ["argosay"]
