"""The GitOps repository: clone, change, commit, push — with fetch/re-apply/retry, never a force-push.

Every change is a function that edits a fresh clone of the branch head and says whether it changed anything
(no change -> no commit: promotions are idempotent). A rejected push (someone else pushed first) fetches the
new head and applies the change again on top of it — a rebase that cannot conflict, because the change is
re-computed rather than replayed — up to ``MAX_ATTEMPTS`` times. A commit that was pushed is never lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from driftloop.errors import ConflictError, MissingDependencyError, ServiceUnavailableError

__all__ = ["MAX_ATTEMPTS", "Commit", "GitOpsRepo"]

MAX_ATTEMPTS = 8
_COMMITTER = ("driftloop", "driftloop@localhost")
_FIELD, _RECORD = "\x1f", "\x1e"


@dataclass(frozen=True)
class Commit:
    sha: str
    date: str  # ISO 8601, committer date
    author: str
    subject: str
    trailers: dict[str, str]


def _trailers(body: str) -> dict[str, str]:
    """``Key: value`` lines of the last paragraph of a commit message."""
    paragraph = body.strip().split("\n\n")[-1]
    found: dict[str, str] = {}
    for line in paragraph.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            found[key] = value.strip()
    return found


class GitOpsRepo:
    """One branch of one GitOps repository (a local bare repo standing for the remote, or any git URL)."""

    def __init__(self, url: str, branch: str, lock_path: Path, seed: Path | None = None) -> None:
        if shutil.which("git") is None:
            raise MissingDependencyError("git is not installed", hint="apt-get install -y git (or `make system`)")
        self.url = url
        self.branch = branch
        self.lock_path = lock_path
        self.seed = seed  # files the repository starts with (the project's manifests/serving), when we create it

    # -- plumbing -------------------------------------------------------------------------------------------
    def _git(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise ServiceUnavailableError(
                f"git {' '.join(args[:2])} failed for {self.url}: {(proc.stderr or proc.stdout).strip()[-400:]}",
                hint="check DRIFTLOOP_GITOPS_REPO and that this machine may push to it",
            )
        return proc

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise the writers on this machine (registry + git as one step); other machines rely on the retry."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _is_local(self) -> bool:
        return "://" not in self.url and ":" not in self.url.split("/", 1)[0]

    def ensure(self) -> None:
        """Create the local bare repository with a first commit of the seed, when it does not exist yet."""
        if not self._is_local():
            return
        bare = Path(self.url)
        if (bare / "HEAD").exists() and self._git("ls-remote", "--heads", self.url, self.branch).stdout.strip():
            return
        bare.mkdir(parents=True, exist_ok=True)
        self._git("init", "--bare", "-q", f"--initial-branch={self.branch}", str(bare))
        with tempfile.TemporaryDirectory(prefix="driftloop-gitops-seed-") as tmp:
            work = Path(tmp) / "work"
            self._git("init", "-q", f"--initial-branch={self.branch}", str(work))
            if self.seed is not None and self.seed.is_dir():
                shutil.copytree(self.seed, work / "manifests" / "serving", dirs_exist_ok=True)
            (work / "README.md").write_text(
                "# GitOps repository\n\nWhat Argo CD syncs: `manifests/serving/overlays/<env>`. Every change is a "
                "commit by `driftloop promote` / `rollback` (or the deployer); never rewrite history here.\n"
            )
            self._git("add", "-A", cwd=work)
            self._commit(work, "gitops: initialise the repository", author=_COMMITTER[0])
            self._git("push", "-q", self.url, f"HEAD:refs/heads/{self.branch}", cwd=work)

    def _commit(self, work: Path, message: str, author: str) -> None:
        name, email = _COMMITTER
        self._git(
            "-c", f"user.name={name}", "-c", f"user.email={email}",
            "commit", "-q", "--no-verify", "--author", f"{author} <{email}>", "-m", message,
            cwd=work,
        )  # fmt: skip

    @contextlib.contextmanager
    def _clone(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="driftloop-gitops-") as tmp:
            work = Path(tmp) / "work"
            self._git("clone", "-q", "--single-branch", "--branch", self.branch, self.url, str(work))
            yield work

    # -- public ---------------------------------------------------------------------------------------------
    def read(self, path: str) -> str | None:
        """A file at the branch head, or None when it does not exist."""
        self.ensure()
        with self._clone() as work:
            target = work / path
            return target.read_text() if target.is_file() else None

    def head(self) -> str:
        self.ensure()
        line = self._git("ls-remote", "--heads", self.url, self.branch).stdout.split()
        return line[0] if line else ""

    def change(
        self,
        apply: Callable[[Path], str | None],
        author: str,
        before_push: Callable[[int], None] | None = None,
    ) -> str | None:
        """Run ``apply(worktree)`` on the head; it edits files and returns a commit message, or None for no change.

        Returns the pushed commit's sha, or None when there was nothing to change. ``before_push(attempt)`` is a
        seam for tests that need another writer to win the race.
        """
        self.ensure()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with self._clone() as work:
                message = apply(work)
                self._git("add", "-A", cwd=work)
                if message is None or not self._git("status", "--porcelain", cwd=work).stdout.strip():
                    return None
                self._commit(work, message, author)
                if before_push is not None:
                    before_push(attempt)
                pushed = self._git("push", "-q", "origin", f"HEAD:refs/heads/{self.branch}", cwd=work, check=False)
                if pushed.returncode == 0:
                    return self._git("rev-parse", "HEAD", cwd=work).stdout.strip()
                rejected = ("rejected", "fetch first", "non-fast-forward", "stale info", "cannot lock ref")
                if not any(word in pushed.stderr for word in rejected):
                    raise ServiceUnavailableError(
                        f"git push to {self.url} failed: {pushed.stderr.strip()[-400:]}",
                        hint="check DRIFTLOOP_GITOPS_REPO and the credentials git uses for it",
                    )
        raise ConflictError(
            f"{MAX_ATTEMPTS} pushes to {self.url} were rejected: other writers keep moving {self.branch}",
            hint="retry; nothing was lost (no commit of this change was pushed)",
        )

    def log(self, path: str) -> list[Commit]:
        """Commits that touched ``path``, newest first."""
        self.ensure()
        with self._clone() as work:
            fmt = _FIELD.join(("%H", "%cI", "%an", "%s", "%B")) + _RECORD
            out = self._git("log", f"--format={fmt}", "--", path, cwd=work).stdout
        commits = []
        for record in out.split(_RECORD):
            parts = record.strip("\n").split(_FIELD)
            if len(parts) == 5:
                sha, date, author, subject, body = parts
                commits.append(Commit(sha, date, author, subject, _trailers(body)))
        return commits
