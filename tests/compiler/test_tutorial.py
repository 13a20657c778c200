"""docs/pipelines.md's tutorial, executed as written, in a copy of the repository.

The copy holds what git tracks (plus untracked, not ignored files), and ``../shared`` next to it. Every
``<!-- tutorial: create|after|replace PATH ... -->`` block is applied literally, every ``<!-- tutorial: run -->``
block is run command by command (``driftloop`` and ``python`` are this interpreter, in the copy), and the results
are checked: the added step is in the compiled training pipeline and runs on its own, the new two-step pipeline
compiles, lints and succeeds on the embedded engine, and the compiler tests pass in the copy unchanged — adding a
step touches only the step and the pipeline.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.config import get_settings, repo_root

DOC = repo_root() / "docs" / "pipelines.md"
_BLOCK = re.compile(r"<!-- tutorial: (?P<action>\w+)(?P<args>[^>]*?)-->\s*\n```\w*\n(?P<body>.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Block:
    action: str  # create | after | replace | run
    path: str
    anchor: str
    body: str


def tutorial_blocks(text: str) -> list[Block]:
    blocks = []
    for match in _BLOCK.finditer(text):
        path, _, anchor = match["args"].strip().partition(" | ")
        blocks.append(Block(match["action"], path.strip(), anchor.strip(), match["body"]))
    return blocks


def _apply(root: Path, block: Block) -> None:
    target = root / block.path
    if block.action == "create":
        assert not target.exists(), f"the tutorial creates {block.path}, which exists already"
        target.write_text(block.body)
        return
    text = target.read_text()
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if block.anchor in line]
    assert len(hits) == 1, f"anchor {block.anchor!r} of {block.path} found {len(hits)} times (the doc is stale)"
    (at,) = hits
    if block.action == "replace":
        lines[at] = block.body
    else:
        assert block.action == "after", block.action
        end = at  # after the whole statement the anchor starts: up to the line that closes its brackets
        while _depth("".join(lines[at : end + 1])) > 0:
            end += 1
        lines.insert(end + 1, block.body)
    target.write_text("".join(lines))


def _depth(code: str) -> int:
    return sum(code.count(o) - code.count(c) for o, c in ("()", "[]", "{}"))


def _run(root: Path, env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    if argv[0] == "driftloop":
        argv = [sys.executable, "-m", "driftloop", *argv[1:]]
    elif argv[0] == "python":  # a step run by hand: its /tmp/inputs and /tmp/outputs moved into the test's folder
        argv = [sys.executable, *argv[1:]]
        env = env | {
            "DRIFTLOOP_STEP_INPUT_DIR": str(root.parent / "in"),
            "DRIFTLOOP_STEP_OUTPUT_DIR": str(root.parent / "out"),
        }
    return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("tutorial")
    root = base / "repo"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo_root(), capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = repo_root() / name
        if source.is_file() and name.split("/")[0] in {"driftloop", "workflows", "monitors", "features", "manifests",
                                                        "tests", "docs", "pyproject.toml"}:  # fmt: skip
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    (base / "shared").symlink_to(get_settings().shared_dir.resolve())
    home = base / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env |= {"DRIFTLOOP_HOME": str(home), "PYTHONPATH": str(root)}
    (base / "in").mkdir()
    (base / "in" / "metrics.json").write_text(json.dumps({"metrics": {"roc_auc": 0.75123, "log_loss": 0.5}}))
    return root, env


@pytest.fixture(scope="module")
def outputs(copy: tuple[Path, dict[str, str]]) -> list[tuple[str, subprocess.CompletedProcess[str]]]:
    """Apply the whole tutorial in order; every command's result, by command line."""
    root, env = copy
    results = []
    for block in tutorial_blocks(DOC.read_text()):
        if block.action != "run":
            _apply(root, block)
            continue
        for command in filter(None, (line.strip() for line in block.body.splitlines())):
            results.append((command, _run(root, env, command)))
    return results


def _result(outputs: list[tuple[str, Any]], command: str, nth: int = 0) -> subprocess.CompletedProcess[str]:
    found = [result for line, result in outputs if line == command]
    return found[nth]  # type: ignore[no-any-return]


def test_the_doc_has_the_tutorial_blocks_the_test_expects() -> None:
    actions = [(b.action, b.path) for b in tutorial_blocks(DOC.read_text())]
    assert ("create", "workflows/steps/holdout_summary.py") in actions
    assert ("create", "workflows/pipelines/greeting.py") in actions
    assert sum(a == "run" for a, _ in actions) == 2


def test_every_command_does_what_the_doc_says(outputs: list[tuple[str, Any]]) -> None:
    for command, result in outputs:
        expected_rc = 1 if command.endswith("--digits two") else 0
        assert result.returncode == expected_rc, f"{command}\n{result.stdout}\n{result.stderr}"


def test_the_added_step_is_wired_into_training_and_runs_on_its_own(
    copy: tuple[Path, dict[str, str]], outputs: list[tuple[str, Any]]
) -> None:
    root, _ = copy
    first = _result(outputs, "driftloop compile")
    assert "wrote " in first.stdout and "training.workflowtemplate.yaml (WorkflowTemplate training)" in first.stdout
    listing = _result(outputs, "driftloop compile --list").stdout
    assert "steps: validate-data, build-training-set, train, evaluate, holdout-summary, register, promote" in listing
    template = yaml.safe_load((root / "manifests/workflows/training.workflowtemplate.yaml").read_text())
    dag = next(t for t in template["spec"]["templates"] if t["name"] == "training")["dag"]["tasks"]
    summary = next(t for t in dag if t["name"] == "holdout-summary")
    assert summary["depends"] == "evaluate"  # parallel to register, which also waits for evaluate
    assert summary["arguments"]["artifacts"] == [
        {"name": "metrics", "from": "{{tasks.evaluate.outputs.artifacts.metrics}}"}
    ]
    ran = _result(outputs, "python -m workflows.steps.holdout_summary --digits 2")
    assert ran.stdout == "summary=log_loss=0.5 roc_auc=0.75\n"
    assert (root.parent / "out" / "summary").read_text() == "log_loss=0.5 roc_auc=0.75"
    refused = _result(outputs, "python -m workflows.steps.holdout_summary --digits two")
    assert (
        refused.stderr.startswith("error: digits must be an integer (got 'two')") and "Traceback" not in refused.stderr
    )


def test_the_new_pipeline_compiles_lints_and_succeeds_on_the_engine(
    copy: tuple[Path, dict[str, str]], outputs: list[tuple[str, Any]]
) -> None:
    root, _ = copy
    assert (root / "manifests/workflows/greeting.workflowtemplate.yaml").is_file()
    assert (
        "greeting.workflowtemplate.yaml (WorkflowTemplate greeting)" in _result(outputs, "driftloop compile", 1).stdout
    )
    run = _result(
        outputs, "driftloop engine run manifests/workflows/greeting.workflowtemplate.yaml -p greeting=tutorial -o json"
    )
    finished = json.loads(run.stdout)
    assert finished["status"]["phase"] == "Succeeded"
    nodes = {n["displayName"]: n for n in finished["status"]["nodes"].values()}
    lengths = {name: nodes[name]["outputs"]["parameters"][0]["value"] for name in ("count-message", "count-greeting")}
    assert lengths == {"count-message": str(len("hello, tutorial!")), "count-greeting": str(len("tutorial"))}
    assert nodes["count-greeting"]["startedAt"] <= nodes["say-hello"]["finishedAt"]  # the parallel branch


def test_the_compiler_tests_pass_in_the_copy_unchanged(
    copy: tuple[Path, dict[str, str]], outputs: list[tuple[str, Any]]
) -> None:
    """They derive steps and parameters from the pipeline: a new step and a new pipeline need no test edit."""
    root, env = copy
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/compiler/test_compile.py"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_a_wiring_mistake_in_the_new_pipeline_names_its_line_and_writes_nothing(
    copy: tuple[Path, dict[str, str]], outputs: list[tuple[str, Any]]
) -> None:
    """The issue's `mesage` typo, made in the tutorial's pipeline: compile refuses it at the Python line."""
    root, env = copy
    pipeline = root / "workflows" / "pipelines" / "greeting.py"
    good = pipeline.read_text()
    (line,) = [n for n, text in enumerate(good.splitlines(), 1) if 'hello.output("message")' in text]
    pipeline.write_text(good.replace('hello.output("message")', 'hello.output("mesage")'))
    before = (root / "manifests/workflows/greeting.workflowtemplate.yaml").read_bytes()
    try:
        result = _run(root, env, "driftloop compile")
    finally:
        pipeline.write_text(good)
    assert result.returncode == 2 and "Traceback" not in result.stderr  # 2: a configuration error (ConfigError)
    assert result.stderr.startswith(
        f"error: workflows/pipelines/greeting.py:{line}: task 'say-hello' (step 'say-hello') has no output 'mesage'"
    ), result.stderr
    assert "hint: it has: message" in result.stderr
    assert (root / "manifests/workflows/greeting.workflowtemplate.yaml").read_bytes() == before
