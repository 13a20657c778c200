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
    "monitor_url": ("http://127.0.0.1:9308", "Drift monitor: where its Prometheus /metrics is served."),
    "monitor_interval": ("30", "Seconds between two drift evaluations of the stack's monitor."),
    "monitor_window_rows": ("2000", "The monitor's window: at most this many of the latest captured rows."),
    "monitor_window_minutes": ("60", "…and only rows captured in the last this many minutes."),
    "monitor_drift_share": (
        "0.3",
        "Dataset drift when at least this share of features drifted (Evidently's default 0.5 misses a 4-of-11 shift).",
    ),
    "gitops_repo": ("", "GitOps repository (path or git URL) the model pins go to (empty: <home>/gitops.git)."),
    "gitops_branch": ("main", "Branch of the GitOps repository that Argo CD (or `driftloop deployer`) follows."),
    "deployer_env": ("production", "Environment whose pin `driftloop deployer` serves (staging or production)."),
    "deployer_poll": ("2", "Seconds between two looks of `driftloop deployer` at the GitOps branch."),
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
    monitor_url: str
    monitor_interval: float
    monitor_window_rows: int
    monitor_window_minutes: float
    monitor_drift_share: float
    gitops_repo: str
    gitops_branch: str
    deployer_env: str
    deployer_poll: float

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


def _positive(name: str, source: dict[str, str], kind: type[int] | type[float], example: str) -> Any:
    """A setting that must be a positive int/float, else a ConfigError naming the variable and an example."""
    text = _raw(name, source)
    try:
        value = kind(text)
        if not value > 0:
            raise ValueError
    except ValueError:
        noun = "integer" if kind is int else "number"
        raise ConfigError(
            f"{PREFIX}{name.upper()}={text!r} is not a positive {noun}",
            hint=f"e.g. export {PREFIX}{name.upper()}={example}",
        ) from None
    return value


def get_settings(env: dict[str, str] | None = None) -> Settings:
    """Read the settings now (not at import), so tests and subprocesses can change the environment."""
    source = dict(os.environ if env is None else env)
    fallback = _raw("gpu_fallback", source)
    if fallback not in {"cpu", "error"}:
        raise ConfigError(
            f"{PREFIX}GPU_FALLBACK={fallback!r} is not valid",
            hint="use 'cpu' (run GPU steps on CPU with a warning) or 'error' (fail them)",
        )
    semaphore_size = _positive("semaphore_size", source, int, "2")
    drift_share = _positive("monitor_drift_share", source, float, "0.3")
    if drift_share > 1:
        raise ConfigError(
            f"{PREFIX}MONITOR_DRIFT_SHARE={drift_share} is above 1", hint="a share of features: e.g. 0.3 or 0.5"
        )
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
        monitor_url=_raw("monitor_url", source).rstrip("/"),
        monitor_interval=_positive("monitor_interval", source, float, "30"),
        monitor_window_rows=_positive("monitor_window_rows", source, int, "2000"),
        monitor_window_minutes=_positive("monitor_window_minutes", source, float, "60"),
        monitor_drift_share=drift_share,
        gitops_repo=_raw("gitops_repo", source) or str(_path(_raw("home", source)) / "gitops.git"),
        gitops_branch=_raw("gitops_branch", source),
        deployer_env=_raw("deployer_env", source),
        deployer_poll=_positive("deployer_poll", source, float, "2"),
    )
