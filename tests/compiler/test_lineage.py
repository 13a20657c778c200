"""Lineage of the code: a dirty working tree is refused for runs that record a commit, or recorded exactly.

Real git repositories in a temporary folder; the training pipeline's real submission path.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from driftloop.errors import ConflictError
from workflows.compiler.submission import submission_workflow
from workflows.pipelines import BuildOptions
from workflows.steps._lineage import DIRTY_MARK, check_reproducible, commit_tags, git_state

OPTIONS = BuildOptions.defaults()
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=True,
                          env={**os.environ, **GIT_ENV})  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("EPOCHS = 8\n")
    (tmp_path / ".gitignore").write_text("*.db\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def _commit_argument(workflow: dict) -> str:  # type: ignore[type-arg]
    return next(p["value"] for p in workflow["spec"]["arguments"]["parameters"] if p["name"] == "git-commit")


def test_a_clean_tree_submits_its_head_and_ignored_files_do_not_count(repo: Path) -> None:
    (repo / "mlflow.db").write_text("ignored")
    workflow = submission_workflow("training", options=OPTIONS, checkout=repo)
    assert _commit_argument(workflow) == _git(repo, "rev-parse", "HEAD")


def test_uncommitted_changes_are_refused_with_the_commands_that_fix_it(repo: Path) -> None:
    (repo / "train.py").write_text("EPOCHS = 9\n")
    (repo / "new_step.py").write_text("print('new')\n")
    with pytest.raises(ConflictError) as caught:
        submission_workflow("training", options=OPTIONS, checkout=repo)
    assert "has uncommitted changes (2: M train.py, ?? new_step.py)" in caught.value.message
    assert f"HEAD {_git(repo, 'rev-parse', 'HEAD')}" in caught.value.message
    hint = caught.value.hint or ""
    assert "git add -A && git commit" in hint and "git stash -u" in hint and "--allow-dirty" in hint


def test_allow_dirty_records_the_commit_and_a_hash_of_exactly_the_changes(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text("EPOCHS = 9\n")
    first = _commit_argument(submission_workflow("training", options=OPTIONS, checkout=repo, allow_dirty=True))
    assert first.startswith(head + DIRTY_MARK) and len(first) == len(head) + len(DIRTY_MARK) + 64
    assert _commit_argument(submission_workflow("training", options=OPTIONS, checkout=repo, allow_dirty=True)) == first
    (repo / "untracked.py").write_text("x = 1\n")  # a new file is code too
    second = git_state(repo).commit_value()
    (repo / "untracked.py").write_text("x = 2\n")
    assert len({first, second, git_state(repo).commit_value()}) == 3
    tags = commit_tags(first)
    assert tags == {"git_commit": head, "git_dirty": "true", "git_diff_sha256": first.rpartition(".")[2]}
    assert commit_tags(head) == {"git_commit": head, "git_dirty": "false", "git_diff_sha256": "none"}


def test_reproduce_accepts_only_the_recorded_commit_with_the_recorded_changes(repo: Path) -> None:
    (repo / "train.py").write_text("EPOCHS = 9\n")
    tags = commit_tags(git_state(repo).commit_value() or "")
    check_reproducible(tags, git_state(repo))  # the same commit and the same diff: it is the code that trained
    (repo / "train.py").write_text("EPOCHS = 10\n")
    with pytest.raises(ConflictError, match="trained from uncommitted changes on top of") as caught:
        check_reproducible(tags, git_state(repo))
    assert "--current-code" in (caught.value.hint or "")
    _git(repo, "checkout", "--", "train.py")
    with pytest.raises(ConflictError, match="clean, so it is not the code that trained"):
        check_reproducible(tags, git_state(repo))
    check_reproducible(commit_tags(_git(repo, "rev-parse", "HEAD")), git_state(repo))  # a clean version: git archive
