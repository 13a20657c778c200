"""Promotion, rollback and history as GitOps commits, against a real MLflow server and real git."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests._support import driftloop
from tests.gitops.conftest import LINEAGE, MODEL
from workflows.gitops import ModelPin, gitops_repo, history, pin_path, publish, reconcile
from workflows.gitops.digest import model_digest
from workflows.steps._registry import connect, version_by_alias
from workflows.steps.promote import promote

PIN = str(pin_path("production"))


def _git(bare: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={bare}", *args], capture_output=True, text=True, check=True).stdout


def _pin_commits(bare: Path) -> list[str]:
    """Commits that changed the production pin, newest first, after the repository's first (seed) commit."""
    return _git(bare, "log", "--format=%H", "main", "--invert-grep", "--grep=^gitops: initialise", "--", PIN).split()


def _champion() -> str | None:
    held = version_by_alias(connect(), MODEL, "champion")
    return str(held.version) if held is not None else None


def test_digest_is_what_find_sort_sha256sum_gives(tmp_path: Path) -> None:
    (tmp_path / "m" / "artifacts" / "b").mkdir(parents=True)
    (tmp_path / "m" / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "m" / "artifacts" / "b" / "weights.pt").write_bytes(bytes(range(256)) * 50)
    (tmp_path / "m" / "Zeta.txt").write_text("z")  # uppercase sorts before lowercase bytewise
    shell = subprocess.run(
        "find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum",
        shell=True, cwd=tmp_path / "m", capture_output=True, text=True, check=True,
    ).stdout.split()[0]  # fmt: skip
    assert model_digest(tmp_path / "m") == shell
    (tmp_path / "m" / "Zeta.txt").write_text("y")
    assert model_digest(tmp_path / "m") != shell


def test_pin_text_is_deterministic_and_round_trips() -> None:
    pin = ModelPin("production", MODEL, "3", "r1", "models:/credit-risk/3", "ab" * 32, "fp", "snap", "c0ffee")
    assert pin.to_yaml() == pin.to_yaml()
    assert ModelPin.from_yaml(pin.to_yaml()) == pin
    body = [line for line in pin.to_yaml().splitlines() if not line.startswith("#")]
    assert body[2] == 'model_version: "3"' and body[5] == f'sha256: "{"ab" * 32}"' and len(body) == 9


def test_promotion_is_one_commit_with_digest_and_lineage_and_idempotent(bare_repo: Path, register) -> None:  # type: ignore[no-untyped-def]
    version = register(100.0)
    result = promote(MODEL, version, payload_columns={})
    assert result.commit is not None and _champion() == version
    commits = _pin_commits(bare_repo)
    assert commits == [result.commit]  # exactly one commit touched the pin
    message = _git(bare_repo, "log", "-1", "--format=%B", result.commit)
    assert f"Version: {version}" in message and f"Data-Snapshot: {LINEAGE['data_snapshot_id']}" in message
    assert f"Code-Commit: {LINEAGE['git_commit']}" in message and f"Workflow: {LINEAGE['workflow_name']}" in message
    assert "Trigger: alert" in message and f"Trigger-Ref: {LINEAGE['trigger_ref']}" in message
    pin = ModelPin.from_yaml(_git(bare_repo, "show", f"main:{PIN}"))
    with tempfile.TemporaryDirectory() as tmp:
        import mlflow

        local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{MODEL}/{version}", dst_path=tmp)
        assert pin.sha256 == model_digest(Path(local)) and f"Sha256: {pin.sha256}" in message
    assert (pin.model_version, pin.data_snapshot_id, pin.code_commit) == (
        version, LINEAGE["data_snapshot_id"], LINEAGE["git_commit"],
    )  # fmt: skip
    again = promote(MODEL, version, payload_columns={})
    assert again.commit is None and _pin_commits(bare_repo) == commits  # idempotent: no second commit


def test_promote_rollback_history_through_the_cli(bare_repo: Path, register) -> None:  # type: ignore[no-untyped-def]
    first, second = register(100.0), register(50.0)
    env = {**os.environ, "DRIFTLOOP_ACTOR": "alice"}
    promote(MODEL, first, payload_columns={})
    promoted = driftloop(env, "promote", MODEL, "--version", second, timeout=120)
    assert promoted.returncode == 0, promoted.stderr
    assert _champion() == second
    rolled = driftloop(env, "rollback", MODEL, "--reason", "p99 regression", timeout=120)
    assert rolled.returncode == 0, rolled.stderr
    assert _champion() == first  # registry restored
    assert ModelPin.from_yaml(_git(bare_repo, "show", f"main:{PIN}")).model_version == first  # git restored
    assert len(_pin_commits(bare_repo)) == 3  # a new commit, history not rewritten
    shown = driftloop(env, "history", MODEL, "--json", timeout=60)
    events = json.loads(shown.stdout)
    assert [(e["event"], e["version"], e["previous_version"]) for e in events] == [
        ("rollback", first, second), ("promote", second, first), ("promote", first, "none"),
    ]  # fmt: skip
    assert events[0]["actor"] == "alice" and events[0]["reason"] == "p99 regression"
    assert events[1]["workflow"] == LINEAGE["workflow_name"] and events[1]["trigger"] == "alert"
    from click.testing import CliRunner

    from workflows.gitops.cli import history_command, rollback_command

    table = CliRunner().invoke(history_command, [MODEL])  # in-process: the subprocess path is covered above
    assert table.exit_code == 0 and "rollback" in table.output and events[0]["commit"][:12] in table.output
    nothing = CliRunner().invoke(rollback_command, [MODEL, "--to", first])
    assert nothing.exit_code != 0 and "already pinned" in str(nothing.exception)


def test_a_concurrent_push_is_never_lost_and_never_forced(bare_repo: Path, register, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = register(100.0), register(50.0)
    client = connect()
    publish(client, MODEL, first, environment="staging")
    raced: list[int] = []

    def other_machine_pushes_first(attempt: int) -> None:
        """Another machine (its own clone, its own lock) pins staging and pushes while we are about to push."""
        if attempt != 1:
            return
        raced.append(attempt)
        other = tmp_path / "other"
        subprocess.run(["git", "clone", "-q", str(bare_repo), str(other)], check=True)
        staged = other / pin_path("staging")
        pin = ModelPin.from_yaml(staged.read_text())
        staged.write_text(ModelPin(**{**pin.__dict__, "model_version": second}).to_yaml())
        git = ["git", "-C", str(other), "-c", "user.name=bob", "-c", "user.email=bob@example.com"]
        subprocess.run([*git, "commit", "-qam", "bob pins staging"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)

    change = publish(client, MODEL, second, who="alice", before_push=other_machine_pushes_first)
    assert raced == [1] and change.commit is not None
    log = _git(bare_repo, "log", "--format=%H %an %s", "main").splitlines()
    assert log[0].startswith(change.commit) and "alice" in log[0] and "bob" in log[1]  # both kept, in order
    assert len(log) == 4  # init + staging + bob + alice: nothing rewritten, nothing lost
    assert ModelPin.from_yaml(_git(bare_repo, "show", f"main:{pin_path('staging')}")).model_version == second
    assert ModelPin.from_yaml(_git(bare_repo, "show", f"main:{PIN}")).model_version == second


def test_crash_between_git_and_registry_is_repaired_from_git(bare_repo: Path, register, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import workflows.gitops.promotion as promotion

    first, second = register(100.0), register(50.0)
    client = connect()
    publish(client, MODEL, first)

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("killed after the push, before the alias moved")

    with monkeypatch.context() as patched:
        patched.setattr(promotion, "_move_aliases", crash)
        with pytest.raises(KeyboardInterrupt):
            publish(client, MODEL, second)
    assert _champion() == first  # the registry lags git by one step…
    assert ModelPin.from_yaml(_git(bare_repo, "show", f"main:{PIN}")).model_version == second
    repaired = reconcile(client, gitops_repo(), MODEL, "production")
    assert repaired is not None and _champion() == second  # …and the next command makes it follow git
    assert reconcile(client, gitops_repo(), MODEL, "production") is None

    def crash_before_push(attempt: int) -> None:
        raise KeyboardInterrupt("killed before the push")

    with pytest.raises(KeyboardInterrupt):
        publish(client, MODEL, first, before_push=crash_before_push)
    assert _champion() == second and len(_pin_commits(bare_repo)) == 2  # nothing changed anywhere
    assert [e.version for e in history(gitops_repo(), MODEL)] == [second, first]


def test_serving_check_refuses_a_model_whose_digest_differs(bare_repo: Path, register, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from workflows.gitops.verify import REFUSED, main

    version = register(100.0)
    pin = publish(connect(), MODEL, version, environment="staging").pin
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(pin.to_yaml())
    bad.write_text(ModelPin(**{**pin.__dict__, "sha256": "0" * 64}).to_yaml())
    assert main(["--pin", str(bad), "--dest", str(tmp_path / "refused")]) == REFUSED
    assert not (tmp_path / "refused").exists()  # nothing a model server could start from
    assert main(["--pin", str(good), "--dest", str(tmp_path / "served")]) == 0
    assert (tmp_path / "served" / "MLmodel").is_file() and model_digest(tmp_path / "served") == pin.sha256
    unpinned = tmp_path / "none.yaml"
    unpinned.write_text(ModelPin.unpinned("staging", MODEL).to_yaml())
    assert main(["--pin", str(unpinned), "--dest", str(tmp_path / "none")]) == REFUSED
