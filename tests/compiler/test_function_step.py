"""A step written as one typed function: contract from the signature, wired and compiled, run with `python -m`."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hera.workflows import WorkflowTemplate

from driftloop.config import repo_root
from driftloop.errors import ConfigError
from workflows.pipelines import PipelineDAG
from workflows.spec.lint import lint_text
from workflows.steps.function import function_step

MODULE = '''
"""Counts characters."""
from __future__ import annotations

from typing import Annotated, Any

from workflows.steps.function import function_step


@function_step("fn-count-chars", outputs={"length": int, "words": list}, gpu=True)
def count_chars(message: Annotated[str, "The text."], times: int = 1, shout: bool = False) -> dict[str, Any]:
    """Count the characters of a text."""
    text = message.upper() if shout else message
    return {"length": len(text) * times, "words": text.split()}


if __name__ == "__main__":
    count_chars.main()
'''


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fnstep")
    (path / "fn_count.py").write_text(MODULE)
    sys.path.insert(0, str(path))
    yield path
    sys.path.remove(str(path))


def test_the_contract_is_read_off_the_signature(folder: Path) -> None:
    step = importlib.import_module("fn_count").count_chars
    contract = step.contract
    assert contract.module == "fn_count" and contract.description == "Count the characters of a text."
    assert [(p.name, p.type, p.default, p.description) for p in contract.inputs] == [
        ("message", "str", None, "The text."), ("times", "int", "1", "times"), ("shout", "bool", "false", "shout"),
    ]  # fmt: skip
    assert [(p.name, p.type) for p in contract.outputs] == [("length", "int"), ("words", "json")]
    assert step("ab", times=2) == {"length": 4, "words": ["ab"]}  # still the plain function
    dag = PipelineDAG("fn", image="driftloop:test")
    first = dag.task(contract, message="hello world")
    with pytest.raises(ConfigError, match="is int but output 'words' of task 'fn-count-chars' is json"):
        dag.task(contract, name="again", message="x", times=first.output("words"))
    dag.task(contract, name="again", message="x", times=first.output("length"))
    with WorkflowTemplate(name="fn", entrypoint="fn", arguments=dag.arguments()) as template:
        dag.emit()
    built = template.to_dict()
    assert not lint_text(yaml.safe_dump(built), "fn.yaml", strict_templates=True)
    counter = next(t for t in built["spec"]["templates"] if t["name"] == "fn-count-chars")
    assert counter["container"]["command"] == ["python", "-m", "fn_count"]
    assert counter["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_python_m_runs_it_with_typed_flags_and_checked_outputs(folder: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{repo_root()}", "DRIFTLOOP_STEP_OUTPUT_DIR": str(tmp_path)}
    argv = [sys.executable, "-m", "fn_count", "--message", "hi there", "--times", "2", "--shout", "true"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "length").read_text() == "16" and (tmp_path / "words").read_text() == '["HI", "THERE"]'
    bad = subprocess.run([*argv[:5], "--times", "twice"], env=env, capture_output=True, text=True, timeout=120,
                         check=False)  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.startswith("error: times must be an integer (got 'twice')")


def test_an_unsupported_annotation_is_refused_at_definition() -> None:
    with pytest.raises(ConfigError, match=re.escape("parameter 'path' of step 'bad' is annotated <class")):

        @function_step("bad", outputs={})
        def bad(path: Path) -> dict[str, object]:
            return {}
