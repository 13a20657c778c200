"""The champion's reference from a real MLflow registry (a local sqlite store, no server needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.errors import NotFoundError
from monitors.drift import build_profile
from monitors.drift._sources import MlflowReference


@pytest.fixture
def registry(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("drift", artifact_location=str(tmp_path / "artifacts"))
    return uri, client, experiment


def _register(tmp_path, client, experiment, model: str, mean: float) -> str:
    rng = np.random.default_rng(int(mean))
    frame = pd.DataFrame({"x": rng.normal(mean, 1, 300)})
    folder = tmp_path / f"reference-{mean}"
    build_profile(frame).save(folder / "profile")
    frame.to_parquet(folder / "sample.parquet")
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(folder), "reference")
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name='{model}'"):
        client.create_registered_model(model)
    version = client.create_model_version(model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return str(version.version)


@pytest.mark.slow
def test_champion_reference_is_downloaded_once_per_version(tmp_path, registry):
    uri, client, experiment = registry
    source = MlflowReference("scorer", uri, tmp_path / "cache")
    with pytest.raises(NotFoundError) as missing:
        source.resolve()
    assert "--reference" in (missing.value.hint or "")
    first = _register(tmp_path, client, experiment, "scorer", 0.0)
    client.set_registered_model_alias("scorer", "champion", first)
    loaded = source.resolve()
    assert loaded.version == first
    assert loaded.directory == tmp_path / "cache" / "scorer" / f"v{first}" / "reference"
    assert (loaded.directory / "profile" / "profile.json").is_file() and len(loaded.sample()) == 300
    assert source.resolve() is loaded  # cached in memory
    assert MlflowReference("scorer", uri, tmp_path / "cache").resolve().directory == loaded.directory  # and on disk
    second = _register(tmp_path, client, experiment, "scorer", 5.0)
    client.set_registered_model_alias("scorer", "champion", second)
    promoted = source.resolve()
    assert promoted.version == second and promoted.profile.columns["x"].sorted_values.mean() > 4


@pytest.mark.slow
def test_unreachable_mlflow_fails_fast_with_a_hint(tmp_path):
    import socket

    from driftloop.errors import ServiceUnavailableError

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = MlflowReference("scorer", f"http://127.0.0.1:{port}", tmp_path / "cache")
    with pytest.raises(ServiceUnavailableError) as error:
        source.resolve()
    assert "cannot reach MLflow" in error.value.message and "--reference" in (error.value.hint or "")
