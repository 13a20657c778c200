"""The one configuration module: every setting comes from a ``DRIFTLOOP_*`` environment variable.

Defaults describe the embedded (single-machine) mode, so a fresh clone works with no configuration;
on a cluster the same variables point at the real Argo Server, MLflow and object store.
Run ``driftloop config`` to see the values in force and where each came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from driftloop.errors import ConfigError

__all__ = ["PREFIX", "SETTING_DOCS", "Settings", "get_settings", "repo_root"]

PREFIX = "DRIFTLOOP_"


def repo_root() -> Path:
    """The checkout this package runs from (editable install), else the working directory."""
    here = Path(__file__).resolve().parents[1]
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


# name -> (default, documentation). Defaults that are paths are relative to the repository root.
SETTING_DOCS: dict[str, tuple[str, str]] = {
    "home": (".driftloop", "All local state: engine database, logs, artifacts, MLflow store, lake, spool."),
    "shared_dir": ("../shared", "Read-only reference schemas (Argo CRDs, Rollouts, Argo CD, prometheus-operator)."),
    "argo_server": ("http://127.0.0.1:2746", "Argo Server URL; the embedded engine serves the same API here."),
    "argo_token": ("", "Bearer token for the Argo Server (empty: no Authorization header)."),
    "namespace": ("driftloop", "Kubernetes namespace of workflows, templates and serving objects."),
    "service_account": ("driftloop-workflow", "Service account the workflow pods run as."),
    "artifact_repository": ("", "artifactRepositoryRef configMap:key for a cluster (empty: the default repository)."),
    "mlflow_uri": ("http://127.0.0.1:5000", "MLflow tracking and registry server."),
    "image": ("ghcr.io/driftloop/driftloop:latest", "The project image every pipeline step runs in."),
    "model_name": ("credit-risk", "The default model; every other name derives from it."),
    "gpu_fallback": ("cpu", "When a GPU is requested but the machine has none: 'cpu' (warn) or 'error'."),
    "semaphore_size": ("1", "Default size of a synchronization semaphore whose ConfigMap is not configured."),
    "lake_uri": ("", "Payload lake: a directory or fsspec URI, e.g. s3://bucket/lake (empty: <home>/lake)."),
    "serving_url": ("http://127.0.0.1:8180", "Payload sidecar in front of the model server; `traffic` targets it."),
    "model_server_url": ("http://127.0.0.1:5001", "MLflow scoring server for models:/<model>@champion."),
}


@dataclass(frozen=True)
class Settings:
    home: Path
    shared_dir: Path
    argo_server: str
    argo_token: str
    namespace: str
    service_account: str
    artifact_repository: str
    mlflow_uri: str
    image: str
    model_name: str
    gpu_fallback: str
    semaphore_size: int
    lake_uri: str
    serving_url: str
    model_server_url: str

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def source_of(self, name: str) -> str:
        """'env' when the value came from DRIFTLOOP_<NAME>, else 'default'."""
        return "env" if (PREFIX + name.upper()) in os.environ else "default"


def _raw(name: str, env: dict[str, str]) -> str:
    return env.get(PREFIX + name.upper(), SETTING_DOCS[name][0])


def _path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (repo_root() / path).resolve()


def get_settings(env: dict[str, str] | None = None) -> Settings:
    """Read the settings now (not at import), so tests and subprocesses can change the environment."""
    source = dict(os.environ if env is None else env)
    fallback = _raw("gpu_fallback", source)
    if fallback not in {"cpu", "error"}:
        raise ConfigError(
            f"{PREFIX}GPU_FALLBACK={fallback!r} is not valid",
            hint="use 'cpu' (run GPU steps on CPU with a warning) or 'error' (fail them)",
        )
    size_text = _raw("semaphore_size", source)
    try:
        semaphore_size = int(size_text)
        if semaphore_size < 1:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"{PREFIX}SEMAPHORE_SIZE={size_text!r} is not a positive integer",
            hint="e.g. export DRIFTLOOP_SEMAPHORE_SIZE=2",
        ) from None
    return Settings(
        home=_path(_raw("home", source)),
        shared_dir=_path(_raw("shared_dir", source)),
        argo_server=_raw("argo_server", source).rstrip("/"),
        argo_token=_raw("argo_token", source),
        namespace=_raw("namespace", source),
        service_account=_raw("service_account", source),
        artifact_repository=_raw("artifact_repository", source),
        mlflow_uri=_raw("mlflow_uri", source).rstrip("/"),
        image=_raw("image", source),
        model_name=_raw("model_name", source),
        gpu_fallback=fallback,
        semaphore_size=semaphore_size,
        lake_uri=_raw("lake_uri", source) or str(_path(_raw("home", source)) / "lake"),
        serving_url=_raw("serving_url", source).rstrip("/"),
        model_server_url=_raw("model_server_url", source).rstrip("/"),
    )
