"""Explicit, typed wiring: every mistake of issue 15 is a ConfigError naming this file's line, before any YAML.

The contracts here are real StepContracts (a small two-step pipeline as an ML engineer would write one); the
YAML that comes out is linted by the same validator as `driftloop compile` (Argo's CRDs + semantic checks).
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hera.workflows import WorkflowTemplate

from driftloop.errors import ConfigError, ValidationError
from workflows.compiler.submission import submission_workflow
from workflows.pipelines import ITEM, PipelineDAG, ResourceSpec, RetrySpec, TaskRuntime
from workflows.spec.lint import lint_text
from workflows.steps.contract import Artifact, Param, StepContract, parse_value

HELLO = StepContract(
    "wiring-hello",
    "tests.compiler.test_wiring",
    "Says hello.",
    inputs=(Param("greeting", "Who to greet."),),
    outputs=(Param("message", "The greeting."), Param("names", "JSON list of names.", type="json")),
    output_artifacts=(Artifact("report", "A report.", "/tmp/outputs/report.txt"),),
)
COUNT = StepContract(
    "wiring-count",
    "tests.compiler.test_wiring",
    "Counts characters on a GPU.",
    inputs=(Param("message", "Text to count."), Param("times", "Repetitions.", "1", "int")),
    outputs=(Param("length", "Characters.", type="int"),),
    gpu=True,
)
SCALE = StepContract(
    "wiring-scale",
    "tests.compiler.test_wiring",
    "Scales a number.",
    inputs=(Param("factor", "A float.", type="float"),),
    input_artifacts=(Artifact("report", "A report.", "/tmp/inputs/report.txt"),),
)
GREETING = Param("greeting", "Who to greet.", "world")


def _line_of(marker: str) -> str:
    """``tests/compiler/test_wiring.py:<n>`` of the line of this file that holds `marker`."""
    lines = inspect.getsource(sys.modules[__name__]).splitlines()
    (number,) = [i for i, text in enumerate(lines, 1) if marker in text and "_line_of" not in text]
    return f"tests/compiler/test_wiring.py:{number}"


def _dag() -> PipelineDAG:
    return PipelineDAG("wiring", image="driftloop:test", parameters=[GREETING])


def _compiled(dag: PipelineDAG) -> dict[str, Any]:
    with WorkflowTemplate(name="wiring", entrypoint="wiring", arguments=dag.arguments()) as template:
        dag.emit()
    built: dict[str, Any] = template.to_dict()
    issues = lint_text(yaml.safe_dump(built), "wiring.yaml", strict_templates=True)
    assert not issues, [str(i) for i in issues]
    return built


def _tasks(built: dict[str, Any]) -> dict[str, dict[str, Any]]:
    dag = next(t for t in built["spec"]["templates"] if "dag" in t)
    return {t["name"]: t for t in dag["dag"]["tasks"]}


def test_a_typo_in_an_input_name_is_refused_with_the_line_and_the_likely_name() -> None:
    dag = _dag()
    dag.task(HELLO)
    typo = StepContract("wiring-typo", "x", "An input named 'mesage'.", inputs=(Param("mesage", "Typo."),))
    with pytest.raises(ConfigError) as caught:
        dag.chain([typo])  # marker: chain-typo
    assert caught.value.message.startswith(f"{_line_of('marker: chain-typo')}: input 'mesage'")
    assert "did you mean 'message', output of task 'wiring-hello'?" in caught.value.message
    assert "Param('mesage'" in (caught.value.hint or "")


def test_unknown_inputs_and_outputs_are_refused_where_they_are_written() -> None:
    dag = _dag()
    hello = dag.task(HELLO)
    with pytest.raises(ConfigError) as caught:
        dag.task(COUNT, mesage=hello.output("message"))  # marker: unknown-input
    assert caught.value.message == f"{_line_of('marker: unknown-input')}: step 'wiring-count' has no input 'mesage'"
    assert caught.value.hint == "it has: message, times (task 'wiring-count')"
    with pytest.raises(ConfigError) as caught:
        hello.output("mesage")  # marker: unknown-output
    assert caught.value.message.startswith(f"{_line_of('marker: unknown-output')}: task 'wiring-hello'")
    assert "it has: message, names, report" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="declares no workflow parameter 'greting'"):
        dag.parameter("greting")


def test_a_required_input_with_no_producer_is_never_an_empty_parameter() -> None:
    dag = PipelineDAG("wiring", image="driftloop:test")  # no workflow parameter 'greeting' declared
    with pytest.raises(ConfigError, match="input 'greeting' of task 'wiring-hello' is required and not wired"):
        dag.task(HELLO)
    with pytest.raises(ConfigError, match="input artifact 'report' of task 'wiring-scale' is not wired"):
        dag.task(SCALE, factor=2.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("length-as-float", "input 'factor' of task 'wiring-scale' is float but output 'length' of task"),
        ("artifact", "input 'factor' of task 'wiring-scale' is a parameter but got artifact 'report'"),
        ("abc", "input 'factor' of task 'wiring-scale': factor must be a number (got 'abc')"),
        (True, "input 'factor' of task 'wiring-scale' is float but got True (bool)"),
    ],
)
def test_type_mismatches_are_caught_when_the_pipeline_is_built(value: object, expected: str) -> None:
    dag = _dag()
    hello = dag.task(HELLO)
    count = dag.task(COUNT, message=hello.output("message"))
    given = {"length-as-float": count.output("length"), "artifact": hello.output("report")}.get(str(value), value)
    with pytest.raises(ConfigError, match="wiring-scale") as caught:
        dag.task(SCALE, factor=given, report=hello.output("report"))  # type: ignore[arg-type]
    assert expected in caught.value.message
    with pytest.raises(ConfigError, match="needs an artifact output"):
        dag.task(SCALE, factor=1.5, report=hello.output("message"))


def test_parallel_branches_join_and_gpu_steps_get_a_gpu_pod_in_any_pipeline() -> None:
    dag = _dag()
    hello = dag.task(HELLO, greeting=dag.parameter("greeting"))
    left = dag.task(COUNT, name="left", message=hello.output("message"), times=2)
    right = dag.task(COUNT, name="right", message=hello.output("message"))
    dag.task(SCALE, factor=1.5, report=hello.output("report"), after=[left, right])
    built = _compiled(dag)
    tasks = _tasks(built)
    assert tasks["left"]["depends"] == tasks["right"]["depends"] == "wiring-hello"  # parallel, not a chain
    assert tasks["wiring-scale"]["depends"] == "left && right"  # wiring-hello is implied, so not repeated
    assert {"name": "times", "value": "2"} in tasks["left"]["arguments"]["parameters"]
    assert {"name": "times", "value": "{{workflow.parameters.times}}"} in tasks["right"]["arguments"]["parameters"]
    params = {p["name"]: p for p in built["spec"]["arguments"]["parameters"]}
    assert params["greeting"]["value"] == "world" and params["times"]["value"] == "1"  # the contract's default
    counter = next(t for t in built["spec"]["templates"] if t["name"] == "wiring-count")
    assert counter["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in counter["tolerations"]
    cpu_only = TaskRuntime(resources=ResourceSpec(cpu_limit="1"), retry=RetrySpec(limit=5))  # no gpu= given
    overridden = PipelineDAG("wiring", image="driftloop:test", parameters=[GREETING], runtimes={COUNT.name: cpu_only})
    overridden.task(COUNT, message="hi")
    (given,) = [t for t in _compiled(overridden)["spec"]["templates"] if t["name"] == COUNT.name]
    assert given["container"]["resources"]["limits"] == {"cpu": "1", "memory": "4Gi", "nvidia.com/gpu": "1"}
    assert given["retryStrategy"]["limit"] == 5  # the override's settings, and gpu=True is never dropped


def test_an_approval_task_is_a_linted_suspend_between_steps_and_refuses_mistakes() -> None:
    timeout = Param("wait", "How long to wait for a person.", "24h")
    dag = PipelineDAG("wiring", image="driftloop:test", parameters=[GREETING, timeout])
    hello = dag.task(HELLO)
    gate = dag.approval("sign-off", after=[hello], duration=dag.parameter("wait"),
                        when="{{tasks.wiring-hello.outputs.parameters.message}} != ''")  # fmt: skip
    dag.task(COUNT, message=hello.output("message"), after=[gate])
    built = _compiled(dag)
    tasks = _tasks(built)
    assert tasks["sign-off"] == {
        "name": "sign-off",
        "template": "sign-off",
        "depends": "wiring-hello",
        "when": "{{tasks.wiring-hello.outputs.parameters.message}} != ''",
    }
    assert tasks["wiring-count"]["depends"] == "sign-off"  # wiring-hello is implied by the approval
    (suspend,) = [t for t in built["spec"]["templates"] if t["name"] == "sign-off"]
    assert suspend == {"name": "sign-off", "suspend": {"duration": "{{workflow.parameters.wait}}"}}
    assert {p["name"]: p["value"] for p in built["spec"]["arguments"]["parameters"]}["wait"] == "24h"
    with pytest.raises(ConfigError, match="already has a task or template 'sign-off'"):
        dag.approval("sign-off")
    with pytest.raises(ConfigError, match="'soon' is not an Argo duration"):
        dag.approval("other", duration="soon")
    with pytest.raises(ConfigError, match="approval task 'sign-off' has no output 'ok'"):
        gate.output("ok")
    forever = PipelineDAG("wiring", image="driftloop:test")
    forever.approval()
    (plain,) = [t for t in _compiled(forever)["spec"]["templates"] if t["name"] == "approval"]
    assert plain == {"name": "approval", "suspend": {}}  # no duration: it waits until resumed


def test_fan_out_with_items_and_with_param_from_python() -> None:
    dag = _dag()
    hello = dag.task(HELLO)
    dag.task(COUNT, name="each-word", message=ITEM, with_items=["a", "bb"])
    fanned = dag.task(COUNT, name="each-name", message=ITEM, with_param=hello.output("names"))
    with pytest.raises(ConfigError, match="is float but output 'length' of task 'each-name' is json"):
        dag.task(SCALE, factor=fanned.output("length"), report=hello.output("report"))  # aggregated: a JSON list
    with pytest.raises(ConfigError, match="with_param needs a json output"):
        dag.task(COUNT, name="bad", message=ITEM, with_param=hello.output("message"))
    with pytest.raises(ConfigError, match="is ITEM but the task has no with_items/with_param"):
        dag.task(COUNT, name="bad", message=ITEM)
    tasks = _tasks(_compiled(dag))
    assert tasks["each-word"]["withItems"] == ["a", "bb"] and "depends" not in tasks["each-word"]
    assert tasks["each-name"]["withParam"] == "{{tasks.wiring-hello.outputs.parameters.names}}"
    assert tasks["each-name"]["depends"] == "wiring-hello"
    assert {"name": "message", "value": "{{item}}"} in tasks["each-name"]["arguments"]["parameters"]


def test_typed_values_parse_or_say_what_is_expected() -> None:
    epochs = Param("epochs", "Training epochs.", "8", "int")
    assert parse_value(epochs, "3") == 3
    assert parse_value(Param("x", "", type="json"), '["a"]') == ["a"]
    assert parse_value(Param("x", "", type="bool"), "True") is True
    with pytest.raises(ConfigError, match=r"^epochs must be an integer \(got 'abc'\)\n  hint: Training epochs\.$"):
        parse_value(epochs, "abc")
    with pytest.raises(ConfigError, match="has type 'integer', which is not a parameter type"):
        Param("n", "", type="integer")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n must be an integer"):
        Param("n", "a default that does not parse", "eight", "int")


def test_submit_refuses_a_badly_typed_parameter_before_anything_is_sent() -> None:
    with pytest.raises(ValidationError) as caught:
        submission_workflow("training", {"epochs": "abc", "min-auc": "high", "seed": "7"}, git_commit="0" * 40)
    text = str(caught.value)
    assert "parameter epochs: epochs must be an integer (got 'abc')" in text
    assert "parameter min-auc: min-auc must be a number (got 'high')" in text
    assert "seed" not in text.split("hint:")[0]
    assert "epochs (int)" in (caught.value.hint or "")


def test_a_step_checks_its_typed_flags_itself_and_any_registered_step_runs_by_name(tmp_path: Path) -> None:
    """`python -m workflows.steps.train --epochs abc` exits 1 with the message, no traceback; unknown names too."""
    env = {"DRIFTLOOP_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    bad = subprocess.run(
        [sys.executable, "-m", "workflows.steps.train", "--model-name", "m", "--snapshot-id", "s",
         "--git-commit", "0", "--epochs", "abc"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert bad.returncode == 1, bad.stderr
    assert bad.stderr.startswith("error: epochs must be an integer (got 'abc')\n  hint: Training epochs.")
    probe = "from workflows.steps._io import run_step\nrun_step('no-such-step', [], lambda contract, flags: {})\n"
    unknown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env,
                             check=False)  # fmt: skip
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert unknown.stderr.startswith("error: no step contract named 'no-such-step'")
    assert "record-outcome" in unknown.stderr  # the known steps, found through the registered pipelines


def test_run_step_runs_a_contract_of_any_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workflows.steps._io import run_step

    monkeypatch.setenv("DRIFTLOOP_STEP_OUTPUT_DIR", str(tmp_path))
    run_step(COUNT, ["--message", "hello", "--times", "3"], lambda c, f: {"length": len(f["message"]) * f["times"]})
    assert (tmp_path / "length").read_text() == "15"
    run_step("wiring-count", ["--message", "hi"], lambda c, f: {"length": len(f["message"]) * f["times"]})
    assert (tmp_path / "length").read_text() == "2"  # by name: a contract defined outside contract.py


def test_run_step_refuses_outputs_that_break_the_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from workflows.steps._io import run_step

    monkeypatch.setenv("DRIFTLOOP_STEP_OUTPUT_DIR", str(tmp_path))
    for outputs, expected in (
        ({"length": "many"}, "error: length must be an integer (got 'many')"),
        ({}, "error: step 'wiring-count' returned outputs []; missing: ['length']"),
        ({"length": 1, "lenght": 1}, "not in its contract: ['lenght']"),
    ):
        with pytest.raises(SystemExit) as exited:
            run_step(COUNT, ["--message", "m"], lambda c, f, outputs=outputs: outputs)  # type: ignore[misc]
        assert exited.value.code == 1 and expected in capsys.readouterr().err
    assert not (tmp_path / "length").exists()  # nothing half-written for Argo to collect
