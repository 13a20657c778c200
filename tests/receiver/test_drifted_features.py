"""The drifted features travel alert → receiver → workflow parameter → register step → model-version tag.

The receiver end (the alert's ``drifted_features`` annotation becomes the ``drifted-features`` parameter of the
submitted run) is asserted against the real receiver and engine in ``test_decisions.py``; the tag itself against a
real MLflow in ``tests/steps/test_chain.py``. Here: the compiled template wires the parameter into the register step,
and the step refuses a malformed list before it registers anything.
"""

from __future__ import annotations

import json

import pytest

from driftloop.errors import DataContractError
from monitors.receiver._submit import drifted_features
from workflows.compiler import build_manifests
from workflows.steps._io import parse_flags
from workflows.steps.contract import step
from workflows.steps.register import DRIFTED_FEATURES_MAX_CHARS, main, parse_drifted_features


def _manifest(filename: str) -> dict:  # type: ignore[type-arg]
    return next(m for m in build_manifests() if m.filename == filename).documents[0]


def test_the_compiled_pipeline_passes_the_parameter_to_the_register_step() -> None:
    template = _manifest("training.workflowtemplate.yaml")
    parameters = {p["name"]: p.get("value") for p in template["spec"]["arguments"]["parameters"]}
    assert parameters["drifted-features"] == "[]"
    dag = next(t for t in template["spec"]["templates"] if t["name"] == "training")
    register_task = next(task for task in dag["dag"]["tasks"] if task["name"] == "register")
    arguments = {p["name"]: p["value"] for p in register_task["arguments"]["parameters"]}
    assert arguments["drifted-features"] == "{{workflow.parameters.drifted-features}}"
    container = next(t for t in template["spec"]["templates"] if t["name"] == "register")["container"]
    flag = container["args"].index("--drifted-features")
    assert container["args"][flag + 1] == "{{inputs.parameters.drifted-features}}"
    retrain = _manifest("training.retrain.workflow.yaml")
    assert {"name": "drifted-features", "value": "[]"} in retrain["spec"]["arguments"]["parameters"]
    flags = parse_flags(step("register"), ["--model-name", "m", "--run-id", "r", "--snapshot-id", "s",
                                           "--trigger", "drift", "--trigger-ref", "f", "--git-commit", "c",
                                           "--workflow-name", "w", "--workflow-uid", "u",
                                           "--drifted-features", '["age"]'])  # fmt: skip
    assert flags["drifted_features"] == '["age"]'


def test_the_register_step_parses_the_list_and_names_what_is_wrong() -> None:
    assert parse_drifted_features('["term","age","term"]') == ["term", "age"]
    assert parse_drifted_features("[]") == [] and parse_drifted_features("") == []
    for text, named in [
        ("age,term", "not JSON"),
        ('{"age": 1}', "not a list of strings"),
        ("[1, 2]", "not a list of strings"),
        ('["age", "x; rm -rf /"]', "is not a feature name"),
        (json.dumps([f"feature_{i:04d}" for i in range(400)]), f"over {DRIFTED_FEATURES_MAX_CHARS} characters"),
    ]:
        with pytest.raises(DataContractError) as caught:
            parse_drifted_features(text)
        assert named in caught.value.message, (text, caught.value.message)


def test_a_malformed_list_stops_the_step_before_it_reaches_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model-name", "m", "--run-id", "r", "--snapshot-id", "s", "--trigger", "drift", "--trigger-ref", "f",
            "--git-commit", "c", "--workflow-name", "w", "--workflow-uid", "u", "--drifted-features", "age"]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(argv)  # no MLflow is running: the step must fail on the flag, not on the connection
    assert exited.value.code == 1
    assert "--drifted-features 'age' is not JSON" in capsys.readouterr().err


def test_the_receiver_keeps_valid_names_only_and_within_the_tag_limit() -> None:
    alert = {"annotations": {"drifted_features": "term, age,,age,bad name,Ünïcode"}}
    assert drifted_features(alert, "http://127.0.0.1:9", "m") == ["age", "term"]
    many = {"annotations": {"drifted_features": ",".join(f"feature_{i:04d}" for i in range(400))}}
    kept = drifted_features(many, "http://127.0.0.1:9", "m")
    assert 0 < len(kept) < 400 and len(json.dumps(kept, separators=(",", ":"))) <= DRIFTED_FEATURES_MAX_CHARS
    assert parse_drifted_features(json.dumps(kept)) == kept  # what the receiver sends, the step accepts
