"""Promotion and rollback as git commits, with the MLflow aliases following git.

Order of the two writes, and why: **git first, then the registry.** The GitOps commit is the desired state that
Argo CD (or the local deployer) converges on; the ``champion`` alias mirrors it. A crash after the push and
before the alias move leaves the registry one step behind git, never ahead of it: every promote, rollback and
history call (and the deployer) first runs :func:`reconcile`, which moves the alias to what git pins. A crash
before the push changes nothing anywhere. So registry and git cannot stay in disagreement.
"""

from __future__ import annotations

import getpass
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop.config import get_settings, repo_root
from driftloop.errors import ConflictError, NotFoundError
from driftloop.registry_contract import previous_alias
from workflows.gitops._git import Commit, GitOpsRepo
from workflows.gitops.digest import model_digest
from workflows.gitops.pin import ENVIRONMENTS, ModelPin, alias_for, pin_path

__all__ = [
    "GitOpsChange",
    "HistoryEvent",
    "build_pin",
    "current_pin",
    "gitops_repo",
    "history",
    "publish",
    "reconcile",
    "rollback",
]


@dataclass(frozen=True)
class GitOpsChange:
    pin: ModelPin
    previous_version: str | None
    commit: str | None  # None: nothing to commit (already pinned)
    event: str


@dataclass(frozen=True)
class HistoryEvent:
    date: str
    commit: str
    event: str  # promote | rollback | deployer-rollback
    environment: str
    version: str
    previous_version: str
    actor: str
    workflow: str
    trigger: str
    trigger_ref: str
    reason: str
    approved_by: str = ""  # the person whose `driftloop approve` let the pipeline promote ("" when none was needed)

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def gitops_repo() -> GitOpsRepo:
    settings = get_settings()
    return GitOpsRepo(
        settings.gitops_repo,
        settings.gitops_branch,
        lock_path=settings.home / "gitops.lock",
        seed=repo_root() / "manifests" / "serving",
    )


def _check_environment(environment: str) -> None:
    if environment not in ENVIRONMENTS:
        raise NotFoundError(f"unknown environment {environment!r}", hint=f"use one of: {', '.join(ENVIRONMENTS)}")


def actor() -> str:
    """Who is acting: DRIFTLOOP_ACTOR when set (the pipeline sets it), else the login name."""
    try:
        return os.environ.get("DRIFTLOOP_ACTOR") or getpass.getuser()
    except (OSError, KeyError):  # no login name (a container's uid without a passwd entry)
        return "unknown"


def build_pin(client: Any, model_name: str, version: str, environment: str) -> ModelPin:
    """The pin of ``model_name`` v``version``: its lineage tags and the digest of its downloaded model directory."""
    import mlflow

    from workflows.steps._registry import get_version

    mv = get_version(client, model_name, version)
    tags = mv.tags or {}
    with tempfile.TemporaryDirectory(prefix="driftloop-pin-") as tmp:
        # models:/ resolves through MLflow's global registry URI (connect() set it; its default is ./mlflow.db)
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_name}/{version}", dst_path=tmp)
        digest = model_digest(Path(local))
    return ModelPin(
        environment=environment,
        model_name=model_name,
        model_version=str(mv.version),
        run_id=mv.run_id or "",
        model_uri=f"models:/{model_name}/{mv.version}",
        sha256=digest,
        feature_schema_fingerprint=tags.get("feature_schema_fingerprint", ""),
        data_snapshot_id=tags.get("data_snapshot_id", ""),
        code_commit=tags.get("git_commit", ""),
    )


def current_pin(repo: GitOpsRepo, model_name: str, environment: str) -> ModelPin:
    text = repo.read(str(pin_path(environment)))
    if text is None:
        return ModelPin.unpinned(environment, model_name)
    return ModelPin.from_yaml(text, str(pin_path(environment)))


def _message(
    pin: ModelPin, previous: str | None, event: str, tags: dict[str, str], who: str, reason: str, approved_by: str
) -> str:
    verb = {"promote": "promote", "rollback": "roll back to", "deployer-rollback": "deployer: roll back to"}[event]
    lines = {
        "Event": event,
        "Model": pin.model_name,
        "Version": pin.model_version,
        "Previous-Version": previous or "none",
        "Environment": pin.environment,
        "Sha256": pin.sha256,
        "Run-Id": pin.run_id,
        "Data-Snapshot": pin.data_snapshot_id or "unknown",
        "Code-Commit": pin.code_commit or "unknown",
        "Feature-Schema": pin.feature_schema_fingerprint or "unknown",
        "Workflow": tags.get("workflow_name") or "none",
        "Workflow-Uid": tags.get("workflow_uid") or "none",
        "Trigger": tags.get("trigger") or "none",
        "Trigger-Ref": (tags.get("trigger_ref") or "none").replace("\n", " "),
        "Actor": who,
    }
    if approved_by:
        lines["Approved-By"] = approved_by.replace("\n", " ")
    if reason:
        lines["Reason"] = reason.replace("\n", " ")[:300]
    body = "\n".join(f"{key}: {value}" for key, value in lines.items())
    return f"{verb} {pin.model_name} v{pin.model_version} in {pin.environment}\n\n{body}\n"


def _move_aliases(client: Any, model_name: str, environment: str, version: str, previous: str | None) -> None:
    alias = alias_for(environment)
    if previous is not None and previous != version:
        client.set_registered_model_alias(model_name, previous_alias(alias), previous)
    client.set_model_version_tag(model_name, version, f"previous_{alias}_version".replace("-", "_"), previous or "none")
    client.set_registered_model_alias(model_name, alias, version)


def reconcile(client: Any, repo: GitOpsRepo, model_name: str, environment: str) -> str | None:
    """Make the registry alias match what git pins (git wins). Returns what was repaired, or None."""
    from workflows.steps._registry import version_by_alias

    pin = current_pin(repo, model_name, environment)
    if not pin.is_pinned:
        return None
    held = version_by_alias(client, model_name, alias_for(environment))
    held_version = str(held.version) if held is not None else None
    if held_version == pin.model_version:
        return None
    _move_aliases(client, model_name, environment, pin.model_version, held_version)
    return f"registry alias {alias_for(environment)!r} moved {held_version} -> {pin.model_version} to match git"


def publish(
    client: Any,
    model_name: str,
    version: str,
    *,
    environment: str = "production",
    event: str = "promote",
    reason: str = "",
    who: str | None = None,
    before_push: Callable[[int], None] | None = None,
    expected_sha256: str | None = None,
    approved_by: str = "",
) -> GitOpsChange:
    """Pin ``version`` in ``environment``: one commit (none when already pinned), then the registry alias."""
    _check_environment(environment)
    repo = gitops_repo()
    with repo.locked():
        reconcile(client, repo, model_name, environment)
        pin = build_pin(client, model_name, str(version), environment)
        if expected_sha256 is not None and pin.sha256 != expected_sha256:
            raise ConflictError(
                f"{model_name} v{version}: the registry artifact's sha256 {pin.sha256[:12]}… differs from the "
                f"{expected_sha256[:12]}… recorded when it was promoted; it was changed since",
                hint="do not serve it; re-register the model from its run and promote the new version",
            )
        tags = dict(client.get_model_version(model_name, str(version)).tags or {})
        previous: list[str | None] = [None]

        def apply(work: Path) -> str | None:
            target = work / pin_path(environment)
            old = ModelPin.from_yaml(target.read_text()) if target.is_file() else None
            previous[0] = old.model_version if old is not None and old.is_pinned else None
            if old == pin:
                return None
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(pin.to_yaml())
            return _message(pin, previous[0], event, tags, who or actor(), reason, approved_by)

        sha = repo.change(apply, author=who or actor(), before_push=before_push)
        _move_aliases(client, model_name, environment, pin.model_version, previous[0])
        return GitOpsChange(pin, previous[0], sha, event)


def history(repo: GitOpsRepo, model_name: str, environment: str | None = None) -> list[HistoryEvent]:
    """Every pin change of ``model_name`` (newest first), from the commits that carry the lineage trailers."""
    events = []
    for env in [environment] if environment else list(ENVIRONMENTS):
        commits: list[Commit] = repo.log(str(pin_path(env)))
        for commit in commits:
            t = commit.trailers
            if t.get("Model") != model_name:
                continue
            events.append(
                HistoryEvent(
                    date=commit.date,
                    commit=commit.sha,
                    event=t.get("Event", "?"),
                    environment=env,
                    version=t.get("Version", "?"),
                    previous_version=t.get("Previous-Version", "none"),
                    actor=t.get("Actor", commit.author),
                    workflow=t.get("Workflow", "none"),
                    trigger=t.get("Trigger", "none"),
                    trigger_ref=t.get("Trigger-Ref", "none"),
                    reason=t.get("Reason", ""),
                    approved_by=t.get("Approved-By", ""),
                )
            )
    return sorted(events, key=lambda e: e.date, reverse=True)


def rollback(
    client: Any,
    model_name: str,
    *,
    to: str | None = None,
    environment: str = "production",
    event: str = "rollback",
    reason: str = "",
    who: str | None = None,
) -> GitOpsChange:
    """Pin the previous (or ``to``) version again as a NEW commit — never a history rewrite."""
    _check_environment(environment)
    repo = gitops_repo()
    current = current_pin(repo, model_name, environment)
    if not current.is_pinned:
        raise NotFoundError(f"{model_name} has never been promoted in {environment}", hint="nothing to roll back")
    past = [e for e in history(repo, model_name, environment) if e.version != current.model_version]
    target = to or (past[0].version if past else None)
    if target is None:
        raise NotFoundError(
            f"{model_name} has had only version {current.model_version} in {environment}: no previous version",
            hint="pass --to VERSION to pin a specific registered version",
        )
    if str(target) == current.model_version:
        raise ConflictError(f"{model_name} v{target} is already pinned in {environment}", hint="nothing to do")
    recorded = _recorded_digest(repo, model_name, environment, str(target))
    return publish(
        client, model_name, str(target), environment=environment, event=event, reason=reason, who=who,
        expected_sha256=recorded,
    )  # fmt: skip


def _recorded_digest(repo: GitOpsRepo, model_name: str, environment: str, version: str) -> str | None:
    """The sha256 git recorded when ``version`` was last pinned (so a rollback refuses a tampered artifact)."""
    for commit in repo.log(str(pin_path(environment))):
        if commit.trailers.get("Model") == model_name and commit.trailers.get("Version") == version:
            return commit.trailers.get("Sha256")
    return None
