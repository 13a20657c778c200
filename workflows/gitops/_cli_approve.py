"""``driftloop approve RUN [--reject] --reason "…"``: decide on a training run waiting before promote, then resume it."""

from __future__ import annotations

import click

from driftloop.errors import ConflictError
from driftloop.registry_contract import APPROVAL_TASK

__all__ = ["approve_command"]


@click.command("approve")
@click.argument("run")
@click.option("--reject", is_flag=True, help="Reject: promote is skipped and the champion stays as it is.")
@click.option("--reason", required=True, help="Why (recorded, and in the GitOps commit of an approved promotion).")
@click.option("--by", "by", default=None, help="Who decides [default: the OS login name].")
def approve_command(run: str, reject: bool, reason: str, by: str | None) -> None:
    """Approve (or --reject) training run RUN, which waits before promote, and resume it.

    The decision (who, when, why) is recorded in the registry before the run resumes; promote acts on it: an
    approved run promotes and its GitOps commit carries `Approved-By`; a rejected one leaves the champion alone.
    `driftloop history MODEL` lists the decisions. A run nobody decides on is rejected when its
    `approval-timeout` (DRIFTLOOP_APPROVAL_TIMEOUT) passes.

    \b
    Examples:
      driftloop approve @latest --reason "evaluation report reviewed"
      driftloop approve training-x7k2p --reject --reason "AUC gain too small for the risk" --by alice
    """
    from workflows.engine._cli_runs import client
    from workflows.engine.console import approval_gate, model_of
    from workflows.steps._registry import connect
    from workflows.steps.approval import operator, record

    argo = client()
    workflow = argo.get_workflow(run)
    name = str(workflow["metadata"]["name"])
    if approval_gate(workflow) is None:
        phase = (workflow.get("status") or {}).get("phase") or "Pending"
        raise ConflictError(
            f"workflow {name} is not waiting for an approval (phase {phase})",
            hint="`driftloop runs get NAME` shows its nodes; a run waits in its `approval` task after register",
        )
    model = model_of(workflow)
    if model is None:
        raise ConflictError(f"workflow {name} names no model", hint="only training runs wait for an approval")
    decision = record(connect(), model, name, approve=not reject, by=by or operator(), reason=reason)
    argo.act("resume", name, node_field_selector=f"templateName={APPROVAL_TASK}")
    click.echo(f"{name}: {decision.decision} by {decision.by} at {decision.at} ({decision.reason}); resumed")
