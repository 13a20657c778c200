"""``driftloop promote | rollback | history``: the registry alias and the GitOps commit, always together."""

from __future__ import annotations

import json
from typing import Any

import click

from workflows.gitops.pin import ENVIRONMENTS

__all__ = ["history_command", "promote_command", "rollback_command"]

_ENV = click.Choice(ENVIRONMENTS)


def _report(change: object) -> None:
    from workflows.gitops.promotion import GitOpsChange

    assert isinstance(change, GitOpsChange)
    pin = change.pin
    if change.commit is None:
        click.echo(f"{pin.model_name} v{pin.model_version} is already pinned in {pin.environment}: no commit")
    else:
        click.echo(f"{change.event}: {pin.model_name} v{change.previous_version or 'none'} -> v{pin.model_version} "
                   f"in {pin.environment}, commit {change.commit[:12]}")  # fmt: skip
    click.echo(f"  sha256 {pin.sha256}  ({pin.model_uri})")


@click.command("promote")
@click.argument("model")
@click.option("--version", "version", required=True, help="The registered version to promote.")
@click.option("--env", "environment", type=_ENV, default="production", show_default=True)
def promote_command(model: str, version: str, environment: str) -> None:
    """Promote MODEL --version V: the schema gates, then ONE commit of the model pin to the GitOps repository
    (digest + lineage in the message, pushed), then the `champion` alias (staging: alias `staging`).

    Promoting the version already pinned makes no commit. Order: git first, then the registry; a crash in
    between is repaired by the next promote/rollback/history (the alias follows git).

    \b
    Examples:
      driftloop promote credit-risk --version 3
      driftloop promote credit-risk --version 4 --env staging
      DRIFTLOOP_GITOPS_REPO=git@github.com:acme/ml-gitops.git driftloop promote credit-risk --version 3
    """
    from workflows.steps.promote import promote

    result = promote(model, version, environment=environment)
    _report_promotion(model, environment, result.commit, result.previous_version)


def _report_promotion(model: str, environment: str, commit: str | None, previous: str | None) -> None:
    from workflows.gitops.promotion import current_pin, gitops_repo

    pin = current_pin(gitops_repo(), model, environment)
    if commit is None:
        click.echo(f"{model} v{pin.model_version} is already pinned in {environment}: no commit")
    else:
        click.echo(f"promote: {model} v{previous or 'none'} -> v{pin.model_version} in {environment}, "
                   f"commit {commit[:12]}")  # fmt: skip
    click.echo(f"  sha256 {pin.sha256}  ({pin.model_uri})")


@click.command("rollback")
@click.argument("model")
@click.option("--to", "to", default=None, help="Version to restore [default: the one pinned before the current].")
@click.option("--env", "environment", type=_ENV, default="production", show_default=True)
@click.option("--reason", default="", help="Why, recorded in the commit message.")
def rollback_command(model: str, to: str | None, environment: str, reason: str) -> None:
    """Restore the previous (or --to) version of MODEL in the registry AND in git, as a NEW commit.

    History is never rewritten, so an auto-syncing Argo CD converges on the rollback instead of undoing it.
    The restored artifact must still have the sha256 recorded when it was first pinned.

    \b
    Examples:
      driftloop rollback credit-risk
      driftloop rollback credit-risk --to 2 --reason "p99 regression"
    """
    from workflows.gitops.promotion import rollback
    from workflows.steps._registry import connect

    _report(rollback(connect(), model, to=to, environment=environment, reason=reason))


@click.command("history")
@click.argument("model")
@click.option("--env", "environment", type=_ENV, default=None, help="Only this environment [default: all].")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, newest first.")
@click.option("--approvals", "only_approvals", is_flag=True, help="Only the approval decisions on training runs.")
def history_command(model: str, environment: str | None, as_json: bool, only_approvals: bool) -> None:
    """Which version held the pin (and `champion`) when, by which commit, promoted or rolled back by what,
    and who approved or rejected which training run (`driftloop approve`).

    Read from the GitOps commits (MLflow keeps no alias history) and the registry's approval records. Newest first.

    \b
    Examples:
      driftloop history credit-risk
      driftloop history credit-risk --env production --json | jq '.[0]'
      driftloop history credit-risk --approvals --json
    """
    from workflows.gitops.promotion import gitops_repo, history, reconcile
    from workflows.steps._registry import connect

    repo = gitops_repo()
    decisions: list[Any] = []
    try:
        client = connect()
        decisions = _decisions(client, model, environment)
    except Exception as exc:  # history is readable from git alone
        click.echo(f"warning: registry not checked against git ({exc})", err=True)
    else:
        for env in [environment] if environment else list(ENVIRONMENTS):
            repaired = reconcile(client, repo, model, env)
            if repaired:
                click.echo(f"repaired: {repaired}", err=True)
    if only_approvals:
        _print_decisions(decisions, as_json)
        return
    events = history(repo, model, environment)
    if as_json:
        click.echo(json.dumps([event.as_dict() for event in events], indent=2))
        return
    if not events:
        click.echo(f"{model}: no promotion recorded in {repo.url}")
        return
    click.echo(f"{'date':25} {'env':10} {'event':17} {'version':9} {'commit':12} {'by':28} trigger")
    for e in events:
        by = e.actor if e.workflow == "none" else f"{e.actor} / {e.workflow}"
        change = f"{e.previous_version}->{e.version}"
        trigger = f"{e.trigger} ({e.trigger_ref})" + (f" — {e.reason}" if e.reason else "")
        approved = f" [approved by {e.approved_by}]" if e.approved_by else ""
        click.echo(f"{e.date:25} {e.environment:10} {e.event:17} {change:9} {e.commit[:12]:12} {by:28} {trigger}"
                   f"{approved}")  # fmt: skip
    if decisions:
        click.echo("")
        _print_decisions(decisions, False)


def _decisions(client: Any, model: str, environment: str | None) -> list[Any]:
    from workflows.steps.approval import approvals

    return [a for a in approvals(client, model) if environment in (None, a.environment)]


def _print_decisions(decisions: list[Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([d.as_dict() for d in decisions], indent=2))
        return
    if not decisions:
        click.echo("no approval decision recorded")
        return
    click.echo(f"{'approval decided at':25} {'env':10} {'decision':9} {'run':22} {'by':16} reason")
    for d in decisions:
        click.echo(f"{d.at:25} {d.environment:10} {d.decision:9} {d.workflow:22} {d.by:16} {d.reason}")
