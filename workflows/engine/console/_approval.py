"""The console's Approve / Reject of a training run waiting in its ``approval`` task (issue 13's human approval).

A plain Resume would let the run reach promote with no recorded decision, which promote treats as a rejection
(nothing is promoted without a recorded yes). So for a run waiting in the approval gate the console shows a form
instead — who decides, why, Approve or Reject — and its POST does what ``driftloop approve`` does: record the
decision in the registry (through ``ModelSources``: the engine's layer imports no MLflow code), then resume that
node only. The person is named in the form: the console's session proves the engine's token, not a person.
"""

from __future__ import annotations

import re
from typing import Any

from driftloop.errors import ConfigError, ConflictError, ServiceUnavailableError
from driftloop.registry_contract import APPROVAL_TASK
from workflows.engine.console._html import esc
from workflows.engine.console._list import LABEL_MODEL
from workflows.engine.console._sources import NO_SOURCES, ModelSources

__all__ = ["APPROVE_ACTION", "approval_form", "approval_gate", "decision_from_form", "model_of", "record_decision"]

APPROVE_ACTION = "approve"
MAX_REASON = 300
MAX_BY = 80
_PERSON = re.compile(r"[\w .@'-]{1,80}")  # a name or a login, as a commit trailer can carry it


def approval_gate(workflow: dict[str, Any]) -> dict[str, Any] | None:
    """The run's approval node while it waits (a Running suspend node of the approval template), else None."""
    for node in ((workflow.get("status") or {}).get("nodes") or {}).values():
        if (
            node.get("templateName") == APPROVAL_TASK
            and node.get("type") == "Suspend"
            and node.get("phase") == "Running"
        ):
            return dict(node)
    return None


def model_of(workflow: dict[str, Any]) -> str | None:
    """The model a training run trains: its ``driftloop.io/model`` label, else its ``model-name`` parameter."""
    labels = (workflow.get("metadata") or {}).get("labels") or {}
    if labels.get(LABEL_MODEL):
        return str(labels[LABEL_MODEL])
    for parameter in ((workflow.get("spec") or {}).get("arguments") or {}).get("parameters") or []:
        if parameter.get("name") == "model-name" and parameter.get("value"):
            return str(parameter["value"])
    return None


def approval_form(base: str, csrf: str) -> str:
    """Who, why, and the two buttons; both fields are required (the browser says so before the server does)."""
    return (
        f'<form method="post" action="{esc(base)}/{APPROVE_ACTION}" class="approval" aria-label="approval">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        "<strong>Waiting for approval before promote.</strong> "
        f'<label>Your name <input name="by" required maxlength="{MAX_BY}" autocomplete="name"></label> '
        f'<label>Reason <input name="reason" required maxlength="{MAX_REASON}" size="40"></label> '
        '<button type="submit" name="decision" value="approve" title="Record the approval, then promote">'
        "Approve</button>"
        '<button type="submit" name="decision" value="reject" title="Record the rejection: the champion stays">'
        "Reject</button></form>"
    )


def decision_from_form(form: dict[str, str]) -> tuple[bool, str, str]:
    """(approve, by, reason) from the form, or a ConfigError (400) naming the field that is wrong."""
    decision = form.get("decision", "")
    if decision not in {"approve", "reject"}:
        raise ConfigError(f"decision {decision[:20]!r} is neither approve nor reject", hint="press Approve or Reject")
    by = " ".join(form.get("by", "").split())
    if not by:
        raise ConfigError("say who decides: the form's name field is empty", hint="fill in your name")
    if len(by) > MAX_BY or not _PERSON.fullmatch(by):
        raise ConfigError(f"{by[:40]!r} is not a name", hint=f"letters, digits, space . @ ' - ({MAX_BY} at most)")
    reason = " ".join(form.get("reason", "").split())
    if not reason:
        raise ConfigError("an approval needs a reason: the form's reason field is empty", hint="say why")
    if len(reason) > MAX_REASON:
        raise ConfigError(f"the reason is {len(reason)} characters; {MAX_REASON} at most", hint="shorten it")
    return decision == "approve", by, reason


def record_decision(sources: ModelSources | None, workflow: dict[str, Any], form: dict[str, str]) -> str:
    """Check the run waits for an approval and the form is complete, then record the decision; a summary line."""
    name = str(workflow["metadata"]["name"])
    if approval_gate(workflow) is None:
        phase = (workflow.get("status") or {}).get("phase") or "Pending"
        raise ConflictError(f"workflow {name} is not waiting for an approval (phase {phase})",
                            hint="reload the page: someone may have decided already")  # fmt: skip
    approve, by, reason = decision_from_form(form)
    model = model_of(workflow)
    if model is None:
        raise ConflictError(f"workflow {name} names no model", hint="only training runs wait for an approval")
    if sources is None:
        raise ServiceUnavailableError(NO_SOURCES, hint="decide with `driftloop approve RUN --reason ...` instead")
    return sources.record_approval(model, name, approve=approve, by=f"{by} (console)", reason=reason)
