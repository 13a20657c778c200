"""Where the monitor gets the champion's reference: MLflow (cached per version) or a local directory.

Both give a ``LoadedReference``: the model version it belongs to, the profile, and the directory it came
from (which may also hold ``sample.parquet`` for the HTML report). Tests and air-gapped setups use
``LocalReference``; the stack uses ``MlflowReference``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from driftloop.config import bound_mlflow_retries
from driftloop.errors import NotFoundError, ServiceUnavailableError
from driftloop.registry_contract import (
    CHAMPION,
    EVALUATION_AUC_METRIC,
    REFERENCE_DIR,
    REFERENCE_PROFILE,
    REFERENCE_SAMPLE,
)
from monitors.drift._inputs import is_profile_dir
from monitors.drift.reference import ReferenceProfile

__all__ = ["LoadedReference", "LocalReference", "MlflowReference", "ReferenceSource"]

CHAMPION_ALIAS = CHAMPION  # kept for importers; the contract lives in driftloop.registry_contract


@dataclass(frozen=True)
class LoadedReference:
    version: str
    profile: ReferenceProfile
    directory: Path  # the reference/ folder: profile/ and, when the register step logged it, sample.parquet
    evaluation_auc: float | None = None  # the version's holdout ROC AUC (what its live AUC is compared with)

    def sample(self) -> pd.DataFrame:
        """The logged reference sample when there is one, else a stand-in rebuilt from the profile."""
        path = self.directory / REFERENCE_SAMPLE
        if path.is_file():
            return pd.read_parquet(path)
        return self.profile.reference_frame()


class ReferenceSource(Protocol):
    def resolve(self) -> LoadedReference:
        """The reference of the model version in force now."""
        ...


def _profile_dir(directory: Path) -> Path:
    """Accept the reference/ folder (profile/ inside) or the profile directory itself."""
    return directory if is_profile_dir(directory) else directory / REFERENCE_PROFILE


class LocalReference:
    """A reference directory on disk; its version label comes from the profile's metadata ('local' if none)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._loaded: LoadedReference | None = None

    def resolve(self) -> LoadedReference:
        if self._loaded is None:
            profile = ReferenceProfile.load(_profile_dir(self.directory))
            version = str(profile.metadata.get("version", "local"))
            folder = self.directory if not is_profile_dir(self.directory) else self.directory.parent
            recorded = profile.metadata.get(EVALUATION_AUC_METRIC)
            self._loaded = LoadedReference(version, profile, folder, None if recorded is None else float(recorded))
        return self._loaded


def _evaluation_auc(client: object, run_id: str) -> float | None:
    """The run's ``holdout_roc_auc`` (logged by the evaluate step), or None when it has none or MLflow fails."""
    try:
        value = client.get_run(run_id).data.metrics.get(EVALUATION_AUC_METRIC)  # type: ignore[attr-defined]
    except Exception:  # the live-quality comparison is optional: the monitor still watches drift
        return None
    return None if value is None else float(value)


class MlflowReference:
    """The champion's ``reference/`` run artifacts, downloaded once per version into ``cache_root``."""

    def __init__(self, model: str, tracking_uri: str, cache_root: Path, alias: str = CHAMPION_ALIAS) -> None:
        self.model = model
        self.tracking_uri = tracking_uri
        self.cache_root = cache_root
        self.alias = alias
        self._by_version: dict[str, LoadedReference] = {}

    def resolve(self) -> LoadedReference:
        # a monitor should say the registry is unreachable within seconds and try again next interval
        bound_mlflow_retries()
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        try:
            version = client.get_model_version_by_alias(self.model, self.alias)
        except MlflowException as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower():
                raise NotFoundError(
                    f"model {self.model!r} has no version aliased {self.alias!r} in MLflow ({self.tracking_uri})",
                    hint="train and promote a version first (`driftloop submit training --wait`), "
                    "or give --reference DIR",
                ) from exc
            unreachable = "Max retries exceeded" in str(exc) or "Connection refused" in str(exc)
            raise ServiceUnavailableError(
                f"cannot reach MLflow at {self.tracking_uri}" if unreachable else f"MLflow failed: {exc}",
                hint="start the stack (`driftloop stack up`), set DRIFTLOOP_MLFLOW_URI, or give --reference DIR",
            ) from exc
        except Exception as exc:  # connection errors come as requests/urllib3 exceptions
            raise ServiceUnavailableError(
                f"cannot reach MLflow at {self.tracking_uri} ({type(exc).__name__}: {exc})",
                hint="start the stack (`driftloop stack up`) or set DRIFTLOOP_MLFLOW_URI",
            ) from exc
        label = str(version.version)
        if not version.run_id:
            raise NotFoundError(
                f"version {label} of {self.model!r} has no run, so no reference artifacts",
                hint="register versions with the training pipeline's register step, or give --reference DIR",
            )
        if label not in self._by_version:
            directory = self._download(client, version.run_id, label)
            profile = ReferenceProfile.load(_profile_dir(directory))
            recorded = profile.metadata.get(EVALUATION_AUC_METRIC)  # registered by this driftloop: no extra call
            auc = float(recorded) if recorded is not None else _evaluation_auc(client, version.run_id)
            self._by_version[label] = LoadedReference(label, profile, directory, auc)
        return self._by_version[label]

    def _download(self, client: object, run_id: str, version: str) -> Path:
        """Fetch ``reference/`` into ``<cache>/<model>/v<version>/reference`` unless a complete copy is there."""
        target = self.cache_root / self.model / f"v{version}" / REFERENCE_DIR
        if is_profile_dir(target / REFERENCE_PROFILE):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".download-"))
        try:
            fetched = Path(client.download_artifacts(run_id, REFERENCE_DIR, str(staging)))  # type: ignore[attr-defined]
            if not is_profile_dir(fetched / REFERENCE_PROFILE):
                raise NotFoundError(
                    f"version {version} of {self.model!r} (run {run_id}) has no {REFERENCE_DIR}/{REFERENCE_PROFILE}/ artifact",
                    hint="re-register the version with this driftloop, whose register step logs the profile",
                )
            shutil.rmtree(target, ignore_errors=True)
            fetched.rename(target)  # same filesystem: a complete copy appears at once
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target
