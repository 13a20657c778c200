"""A real MLflow server for the GitOps tests, a fresh GitOps bare repository per test, and tiny real models.

The models are MLflow "models from code" with the signature of the feature schema in force, so the real
promotion gates pass; each has its own DIVISOR, so two versions score differently and have different digests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests._support import free_port

MODEL = "credit-risk"
MODEL_CODE = """
import mlflow
import pandas as pd


class Score(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.DataFrame({"prediction": model_input["age"].astype(float) / DIVISOR})


mlflow.models.set_model(Score())
"""
LINEAGE = {
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
    "data_snapshot_id": "snap-baseline-0001",
    "workflow_name": "training-x7k2p",
    "workflow_uid": "uid-1",
    "trigger": "alert",
    "trigger_ref": "DriftDetected/credit-risk",
}


@pytest.fixture(scope="package")
def gitops_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("gitops-home")
    keys = ("DRIFTLOOP_HOME", "DRIFTLOOP_MLFLOW_URI", "DRIFTLOOP_GITOPS_REPO", "MLFLOW_TRACKING_URI")
    saved = {key: os.environ.get(key) for key in keys}
    os.environ["DRIFTLOOP_HOME"] = str(home)
    os.environ["DRIFTLOOP_MLFLOW_URI"] = os.environ["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{free_port()}"
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="package")
def mlflow_server(gitops_env: Path) -> Iterator[str]:
    from driftloop.config import get_settings
    from driftloop.stack import ProcessManager
    from driftloop.stack.services import service

    settings = get_settings()
    manager = ProcessManager(settings)
    mlflow = replace(service("mlflow"), start_timeout_s=300)  # six helpers share two cores: MLflow starts slowly
    manager.start(mlflow)
    yield settings.mlflow_uri
    manager.stop(mlflow)


@pytest.fixture
def bare_repo(tmp_path: Path, mlflow_server: str) -> Iterator[Path]:
    """A fresh bare GitOps repository for each test (DRIFTLOOP_GITOPS_REPO)."""
    bare = tmp_path / "gitops.git"
    os.environ["DRIFTLOOP_GITOPS_REPO"] = str(bare)
    yield bare
    os.environ.pop("DRIFTLOOP_GITOPS_REPO", None)


@pytest.fixture(scope="package")
def register(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[[float], str]:
    """Log + register a tiny model (prediction = age / divisor) with lineage tags; returns its version."""
    import mlflow

    from features.store import code_schema
    from workflows.steps._pyfunc import signature_for

    mlflow.set_tracking_uri(mlflow_server)
    workdir = tmp_path_factory.mktemp("models")
    signature = signature_for(code_schema(MODEL))

    def make(divisor: float) -> str:
        code = workdir / f"score_{str(divisor).replace('.', '_')}.py"
        code.write_text(f"DIVISOR = {divisor}\n" + MODEL_CODE)
        # MLflow's fluent API keeps process-wide state: the tracking and registry URIs and the active experiment id,
        # which an earlier test file in this worker may have pointed at its own (now stopped) server
        mlflow.set_tracking_uri(mlflow_server)
        mlflow.set_registry_uri(mlflow_server)
        mlflow.set_experiment("gitops-tests")
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(code), signature=signature, pip_requirements=["mlflow"]
            )
            version = mlflow.register_model(info.model_uri, MODEL, tags=LINEAGE).version
        return str(version)

    return make
