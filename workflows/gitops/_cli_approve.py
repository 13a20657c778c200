"""``driftloop approve RUN [--reject] --reason "…"``: decide on a training run waiting before promote, then resume it."""

from __future__ import annotations

from typing import Any

import click

from driftloop.errors import ConflictError

__all__ = ["APPROVAL_TASK", "approve_command", "waiting_approval"]

APPROVAL_TASK = "approval"  # the suspend task of the training pipeline (workflows/pipelines/training.py)


def waiting_approval(workflow: dict[str, Any]) -> dict[str, Any] | None:
    """The run's approval node while it waits (a Running suspend node of the approval template), else None."""
    for node in ((workflow.get("status") or {}).get("nodes") or {}).values():
        if (
            node.get("templateName") == APPROVAL_TASK
            and node.get("type") == "Suspend"
            and node.get("phase") == "Running"
        ):
            return dict(node)
    return None


def _model_of(workflow: dict[str, Any]) -> str:
    from workflows.pipelines import LABEL_MODEL

    labels = (workflow.get("metadata") or {}).get("labels") or {}
    if labels.get(LABEL_MODEL):
        return str(labels[LABEL_MODEL])
    for parameter in ((workflow.get("spec") or {}).get("arguments") or {}).get("parameters") or []:
        if parameter.get("name") == "model-name" and parameter.get("value"):
            return str(parameter["value"])
    raise ConflictError(
        f"workflow {workflow['metadata']['name']} names no model", hint="only training runs wait for an approval"
    )


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
    from workflows.steps._registry import connect
    from workflows.steps.approval import operator, record

    argo = client()
    workflow = argo.get_workflow(run)
    name = str(workflow["metadata"]["name"])
    if waiting_approval(workflow) is None:
        phase = (workflow.get("status") or {}).get("phase") or "Pending"
        raise ConflictError(
            f"workflow {name} is not waiting for an approval (phase {phase})",
            hint="`driftloop runs get NAME` shows its nodes; a run waits in its `approval` task after register",
        )
    decision = record(connect(), _model_of(workflow), name, approve=not reject, by=by or operator(), reason=reason)
    argo.act("resume", name, node_field_selector=f"templateName={APPROVAL_TASK}")
    click.echo(f"{name}: {decision.decision} by {decision.by} at {decision.at} ({decision.reason}); resumed")
