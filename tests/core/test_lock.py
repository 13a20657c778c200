"""The dependency lock: `make` installs exactly requirements.lock, and a stale lock fails `make test`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from driftloop.config import repo_root

ROOT = repo_root()


def _copy_inputs(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lock.py", tmp_path / "scripts" / "lock.py")
    for name in ("pyproject.toml", "requirements.lock", "lock-policy.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "lock.py"), "--check"], capture_output=True, text=True, check=False
    )


def test_the_committed_lock_matches_pyproject() -> None:
    result = _check(ROOT)
    assert result.returncode == 0, result.stderr


def test_a_changed_dependency_makes_the_lock_stale(tmp_path: Path) -> None:
    root = _copy_inputs(tmp_path)
    assert _check(root).returncode == 0
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"click>=8.1,<9"', '"click>=8.2,<9"'))
    result = _check(root)
    assert result.returncode == 1
    assert "stale" in result.stderr and "make lock" in result.stderr


def test_a_changed_policy_makes_the_lock_stale(tmp_path: Path) -> None:
    root = _copy_inputs(tmp_path)
    (root / "lock-policy.txt").write_text("torch==2.14.1\n")
    assert _check(root).returncode == 1


def test_every_declared_dependency_is_pinned_with_a_hash_and_torch_is_the_cpu_build() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\\n    --hash=sha256:[0-9a-f]{64}$", lock, re.M))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    names = {re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in declared}
    assert names - set(pins) == set(), "declared but not locked"
    assert pins["torch"].endswith("+cpu")
    assert not [name for name in pins if name.startswith("nvidia-")]
    assert len(pins) == len(re.findall(r"^[a-z0-9]", lock, re.M))  # every pin carries a hash
