"""MLflow access shared by the steps: connect (with a clear error when the server is down), aliases, artifacts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from driftloop.config import get_settings
from driftloop.errors import NotFoundError, ServiceUnavailableError
from driftloop.registry_contract import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS_CHAMPION",
    "connect",
    "download_artifact",
    "experiment_name",
    "get_version",
    "version_by_alias",
]


def experiment_name(model_name: str) -> str:
    return f"{model_name}-training"


def _skip_feast_header_provider() -> None:
    """Feast registers an MLflow request-header plugin, so the first REST call imports all of Feast (5-12 s here).

    We never use Feast's MLflow auth integration; dropping that one entry point before MLflow loads its plugin
    registry keeps train/evaluate/register fast. No-op once the registry is loaded or if MLflow's API changes.
    """
    import sys

    import mlflow.utils.plugins as plugins

    if "mlflow.tracking.request_header.registry" in sys.modules or getattr(plugins, "_driftloop_filtered", False):
        return
    original = plugins.get_entry_points

    def filtered(group: str) -> Any:
        found = original(group)
        if group != "mlflow.request_header_provider":
            return found
        return [entry for entry in found if not str(getattr(entry, "value", "")).startswith("feast.")]

    plugins.get_entry_points = filtered
    plugins._driftloop_filtered = True  # type: ignore[attr-defined]


def connect() -> Any:
    """An MlflowClient on DRIFTLOOP_MLFLOW_URI, after checking the server answers (fail in seconds, not minutes)."""
    import httpx
    import mlflow
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in step logs
    uri = get_settings().mlflow_uri
    if uri.startswith(("http://", "https://")):
        try:
            httpx.get(f"{uri}/health", timeout=5.0).raise_for_status()
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"MLflow at {uri} is not reachable ({exc.__class__.__name__})",
                hint="start it with `driftloop stack up`, or point DRIFTLOOP_MLFLOW_URI at a running server",
            ) from None
    _skip_feast_header_provider()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _missing(exc: Exception) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower()


def version_by_alias(client: Any, model_name: str, alias: str) -> Any | None:
    """The version holding ``alias``, or None when the model or the alias does not exist yet."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if _missing(exc) or "alias" in str(exc).lower():
            return None
        raise


def get_version(client: Any, model_name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(model_name, str(version))
    except MlflowException as exc:
        if _missing(exc):
            raise NotFoundError(
                f"model {model_name!r} has no version {version!r}",
                hint=f"list versions in the MLflow UI ({get_settings().mlflow_uri}/#/models/{model_name})",
            ) from None
        raise


def download_artifact(client: Any, run_id: str, path: str, destination: Path | None = None) -> Path:
    """Download one artifact (file or folder) of a run to ``destination`` (a fresh temp dir by default)."""
    target = destination or Path(tempfile.mkdtemp(prefix="driftloop-artifact-"))
    target.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(target)))
