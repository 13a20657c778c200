"""The registry and GitOps history the engine's console shows on its model page (``/models/<name>``).

The engine's layer imports neither MLflow helpers nor git code (tests/core/test_layers.py); ``driftloop engine
serve`` hands this object to the server, which sees it only through ``workflows.engine.console.ModelSources``.
"""

from __future__ import annotations

from typing import Any

from workflows.gitops.promotion import HistoryEvent, gitops_repo, history
from workflows.steps._registry import _skip_feast_header_provider

__all__ = ["RegistrySources"]


class RegistrySources:
    """MLflow clients and the promotion history, as the CLI's ``driftloop history`` reads them."""

    def mlflow_client(self, uri: str) -> Any:
        from mlflow.tracking import MlflowClient

        _skip_feast_header_provider()  # the first REST call would otherwise import all of Feast
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def promotion_history(self, model: str) -> list[HistoryEvent]:
        return list(history(gitops_repo(), model))

    def record_approval(self, model: str, workflow: str, *, approve: bool, by: str, reason: str) -> str:
        from mlflow.exceptions import MlflowException

        from driftloop.errors import ServiceUnavailableError
        from workflows.steps._registry import connect
        from workflows.steps.approval import record

        try:
            decision = record(connect(), model, workflow, approve=approve, by=by, reason=reason)
        except (MlflowException, OSError) as exc:
            raise ServiceUnavailableError(
                f"the registry did not record the decision: {str(exc)[:200]}",
                hint="the run keeps waiting; check `driftloop stack status` (mlflow), then decide again",
            ) from None
        return f"{workflow}: {decision.decision} by {decision.by} at {decision.at} ({decision.reason})"
