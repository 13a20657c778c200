"""Human approval of a promotion: who decided, when and why, kept as a tag of the registered model.

A training run that promotes to an environment listed in ``DRIFTLOOP_APPROVAL_ENVIRONMENTS`` suspends before
``promote`` (its ``approval`` task). ``driftloop approve RUN [--reject]`` records the decision here, then resumes
the run; the ``promote`` step reads it back: approved -> promote (the GitOps commit carries ``Approved-By``);
rejected -> no promotion, champion unchanged. The console's Approve / Reject records here too. A run resumed with
no decision (its ``approval-timeout`` passed, or a bare ``argo resume``) is recorded as rejected by ``timeout``:
nothing is promoted without a recorded yes.

The record lives in the registry (tag ``approval.<workflow>`` of the registered model), which the CLI and the
step pods share on one machine as on a cluster; each run is decided once.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from driftloop.errors import ConfigError, ConflictError
from driftloop.registry_contract import APPROVAL_TAG_PREFIX

__all__ = ["APPROVED", "REJECTED", "Approval", "approvals", "lookup", "operator", "record"]

APPROVED, REJECTED = "approved", "rejected"
TAG_PREFIX = APPROVAL_TAG_PREFIX
TIMEOUT_ACTOR = "timeout"


@dataclass(frozen=True)
class Approval:
    workflow: str
    model: str
    environment: str
    decision: str  # approved | rejected
    by: str
    at: str  # ISO 8601, UTC
    reason: str

    @property
    def approved(self) -> bool:
        return self.decision == APPROVED

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def operator() -> str:
    """The person deciding: the OS login name (``--by`` overrides it)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return os.environ.get("USER") or "unknown"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def lookup(client: Any, model: str, workflow: str) -> Approval | None:
    """The decision recorded for run `workflow` of `model`, or None."""
    text = (client.get_registered_model(model).tags or {}).get(TAG_PREFIX + workflow)
    return Approval(**json.loads(text)) if text else None


def record(
    client: Any, model: str, workflow: str, *, approve: bool, by: str, reason: str, environment: str = "production"
) -> Approval:
    """Record the decision on `workflow` (once: a second decision is a ConflictError naming the first)."""
    if not reason.strip():
        raise ConfigError("an approval needs a reason", hint='pass --reason "why"')
    if not workflow or any(c not in "abcdefghijklmnopqrstuvwxyz0123456789-." for c in workflow):
        raise ConfigError(f"{workflow!r} is not a workflow name", hint="e.g. training-x7k2p")
    existing = lookup(client, model, workflow)
    if existing is not None:
        raise ConflictError(
            f"{workflow} was already {existing.decision} by {existing.by} at {existing.at}: {existing.reason}",
            hint="a run is decided once; submit a new training run to decide again",
        )
    decision = Approval(
        workflow, model, environment, APPROVED if approve else REJECTED, by, _now(), reason.replace("\n", " ")[:300]
    )
    client.set_registered_model_tag(model, TAG_PREFIX + workflow, json.dumps(decision.as_dict(), sort_keys=True))
    return decision


def approvals(client: Any, model: str) -> list[Approval]:
    """Every recorded decision on `model`'s runs, newest first."""
    tags = client.get_registered_model(model).tags or {}
    found = [Approval(**json.loads(v)) for k, v in tags.items() if k.startswith(TAG_PREFIX)]
    return sorted(found, key=lambda a: a.at, reverse=True)
