"""A real `mlflow server` (SQLite, job execution disabled) for this test package, started with the stack's own
process manager on a random free port, plus small deterministic datasets. Torn down when the package finishes,
so no environment leaks into other test folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from features.generator import generate, write_dataset
from tests._support import free_port as _free_port

ROWS = 8_000


@pytest.fixture(scope="package")
def steps_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """DRIFTLOOP_HOME (and the MLflow URI a server may use) for the whole package; restored afterwards."""
    home = tmp_path_factory.mktemp("steps-home")
    saved = {key: os.environ.get(key) for key in ("DRIFTLOOP_HOME", "DRIFTLOOP_MLFLOW_URI")}
    os.environ["DRIFTLOOP_HOME"] = str(home)
    os.environ["DRIFTLOOP_MLFLOW_URI"] = f"http://127.0.0.1:{_free_port()}"
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="package")
def mlflow_server(steps_env: Path) -> Iterator[str]:
    from driftloop.config import get_settings
    from driftloop.stack import ProcessManager
    from driftloop.stack.services import service

    settings = get_settings()
    manager = ProcessManager(settings)
    mlflow = service("mlflow")
    manager.start(mlflow)
    yield settings.mlflow_uri
    manager.stop(mlflow)


@pytest.fixture(scope="package")
def baseline_path(steps_env: Path) -> Path:
    return write_dataset(generate("baseline", ROWS), steps_env / "datasets" / "baseline.parquet")


@pytest.fixture(scope="package")
def scenario_path(steps_env: Path):  # type: ignore[no-untyped-def]
    def make(name: str, rows: int = ROWS) -> Path:
        return write_dataset(generate(name, rows), steps_env / "datasets" / f"{name}-{rows}.parquet")

    return make
