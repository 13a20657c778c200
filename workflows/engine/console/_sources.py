"""What the console's model page needs from the layers above the engine (a Protocol, so the engine imports neither)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["NO_SOURCES", "ModelSources"]


class ModelSources(Protocol):
    """What the console needs from the layers above the engine: the registry, the GitOps history, approvals.

    The engine imports neither (tests/core/test_layers.py): the command that starts the server passes an
    implementation in (``workflows.gitops.console_sources.RegistrySources`` for ``driftloop engine serve``), and a
    server started without one shows those sections as "not available".
    """

    def mlflow_client(self, uri: str) -> Any:
        """An MLflow client on ``uri`` (the server is already known to answer)."""
        ...

    def promotion_history(self, model: str) -> list[Any]:
        """The promotion/rollback events of ``model``, oldest first, as ``driftloop history`` reads them."""
        ...

    def record_approval(self, model: str, workflow: str, *, approve: bool, by: str, reason: str) -> str:
        """Record a person's decision on training run ``workflow`` as ``driftloop approve`` does; a summary line.

        A second decision on the same run is a ConflictError naming the first; an unreachable registry is a
        ServiceUnavailableError (the run keeps waiting: nothing is resumed without a recorded decision).
        """
        ...


NO_SOURCES = "this engine was started without the registry view (`driftloop engine serve` provides it)"
