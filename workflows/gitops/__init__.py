"""GitOps: the model pin, its digest, and promotion/rollback as commits to the GitOps repository.

The promote step (``workflows/steps/promote.py``) and ``driftloop promote|rollback|history`` use this package;
``driftloop deployer`` (``monitors/deployer``) follows the branch it writes.
"""

from workflows.gitops.digest import model_digest
from workflows.gitops.pin import ENVIRONMENTS, ModelPin, alias_for, pin_path
from workflows.gitops.promotion import GitOpsChange, HistoryEvent, gitops_repo, history, publish, reconcile, rollback

__all__ = [
    "ENVIRONMENTS",
    "GitOpsChange",
    "HistoryEvent",
    "ModelPin",
    "alias_for",
    "gitops_repo",
    "history",
    "model_digest",
    "pin_path",
    "publish",
    "reconcile",
    "rollback",
]
