"""Which code a run trained with: the commit, and — only when explicitly allowed — uncommitted changes on top.

Code, data and model move as one unit, so a registered model must name the exact code. ``driftloop submit``
refuses a dirty working tree for pipelines that record a commit (the ``git-commit`` parameter); with
``--allow-dirty`` it passes ``<sha>+dirty.<sha256 of the diff>`` instead, the register step records
``git_dirty=true`` and ``git_diff_sha256``, and ``driftloop reproduce`` refuses to call a re-training "the same
code" unless the checkout has exactly that commit and that diff.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from driftloop.errors import ConflictError

__all__ = ["DIRTY_MARK", "GitState", "check_reproducible", "commit_tags", "git_state"]

DIRTY_MARK = "+dirty."


@dataclass(frozen=True)
class GitState:
    """HEAD of a checkout, whether it has uncommitted changes, and a content hash of those changes."""

    commit: str | None
    changed: tuple[str, ...] = ()  # `git status --porcelain` lines: tracked changes and untracked files
    diff_sha256: str | None = None

    @property
    def dirty(self) -> bool:
        return bool(self.changed)

    def commit_value(self) -> str | None:
        """What the ``git-commit`` parameter carries: the sha, plus the diff's hash when the tree is dirty."""
        if self.commit is None:
            return None
        return f"{self.commit}{DIRTY_MARK}{self.diff_sha256}" if self.dirty else self.commit


def _git(root: Path, *args: str) -> bytes | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(root: Path) -> GitState:
    """The checkout at `root` (read-only git); ``commit=None`` outside a git checkout.

    The hash covers the binary diff of tracked files against HEAD and the path and bytes of every untracked,
    not ignored file, so two trees hash alike only when their changes are byte-for-byte the same.
    """
    head = _git(root, "rev-parse", "HEAD")
    if not head:
        return GitState(None)
    status = _git(root, "status", "--porcelain", "--untracked-files=all") or b""
    changed = tuple(line for line in status.decode(errors="replace").splitlines() if line.strip())
    if not changed:
        return GitState(head.decode().strip())
    digest = hashlib.sha256()
    digest.update(
        _git(root, "-c", "core.quotepath=off", "diff", "--binary", "--no-color", "--no-ext-diff", "HEAD") or b""
    )
    untracked = _git(root, "ls-files", "-z", "--others", "--exclude-standard") or b""
    for name in sorted(filter(None, untracked.split(b"\0"))):
        digest.update(b"\0untracked\0" + name + b"\0")
        path = root / name.decode(errors="surrogateescape")
        digest.update(path.read_bytes() if path.is_file() else b"")
    return GitState(head.decode().strip(), changed, digest.hexdigest())


def commit_tags(value: str) -> dict[str, str]:
    """The lineage tags of a ``git-commit`` parameter value: ``git_commit``, ``git_dirty``, ``git_diff_sha256``."""
    commit, mark, digest = value.partition(DIRTY_MARK)
    return {"git_commit": commit, "git_dirty": "true" if mark else "false", "git_diff_sha256": digest or "none"}


def check_reproducible(tags: dict[str, str], state: GitState) -> None:
    """A version trained from uncommitted changes reproduces only from that commit plus exactly that diff."""
    if tags.get("git_dirty") != "true":
        return
    commit, recorded = tags.get("git_commit", ""), tags.get("git_diff_sha256", "")
    if state.commit == commit and state.diff_sha256 == recorded:
        return
    now = f"HEAD {state.commit or 'none'}" + (f" with changes {state.diff_sha256}" if state.dirty else ", clean")
    raise ConflictError(
        f"this version was trained from uncommitted changes on top of {commit} (diff sha256 {recorded}); "
        f"this checkout has {now}, so it is not the code that trained",
        hint=f"check out {commit} and re-apply exactly those changes (their sha256 must match), "
        "or pass --current-code to re-train with this checkout anyway",
    )
