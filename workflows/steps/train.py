"""Step ``train``: the PyTorch tabular model, logged to MLflow with everything needed to trust and reproduce it.

Logs params, per-epoch metrics, the environment (python, torch, CUDA, GPU, pip freeze), the training set itself
(for ``driftloop reproduce``) and the model as a pyfunc with a Feast-derived signature and explicit requirements.
CUDA when visible, else CPU; deterministic on CPU.

    DRIFTLOOP_STEP_INPUT_DIR=/tmp/outputs python -m workflows.steps.train --model-name credit-risk \\
        --snapshot-id <id> --git-commit $(git rev-parse HEAD)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.registry_contract import MODEL_PATH, MODEL_URI_TAG
from workflows.steps._io import input_artifact, run_step
from workflows.steps.contract import StepContract

__all__ = ["MODEL_PATH", "MODEL_URI_TAG", "SCHEMA_ARTIFACT", "TRAINING_SET_ARTIFACT", "TrainResult", "main", "train"]

TRAINING_SET_ARTIFACT = "training-set/training-set.parquet"
SCHEMA_ARTIFACT = "feature_schema.json"


@dataclass
class TrainResult:
    run_id: str
    device: str
    history: list[dict[str, float]] = field(default_factory=list)


def _verify_snapshot(frame: Any, schema: Any, expected: str) -> str:
    from driftloop.errors import DataContractError
    from workflows.steps._dataset import snapshot_id

    actual = snapshot_id(frame, schema)
    if expected and expected != actual:
        raise DataContractError(
            f"training set snapshot is {actual}, but --snapshot-id says {expected}",
            hint="the training-set artifact changed after build-training-set; rebuild it in the same workflow run",
        )
    return actual


def _log_model(fitted: Any, schema: Any, workdir: Path) -> str:
    """Log the pyfunc; returns its ``models:/<id>`` URI (MLflow 3 keeps models apart from run artifacts)."""
    import json
    import warnings

    import torch

    from workflows.steps._environment import skip_installed_package_scan

    skip_installed_package_scan()
    weights, config = workdir / "weights.pt", workdir / "preprocessing.json"
    torch.save({k: v.cpu() for k, v in fitted.net.state_dict().items()}, weights)
    config.write_text(json.dumps(fitted.config()))
    with warnings.catch_warnings():  # advice about type hints / input examples / cloudpickle: noise in step logs
        warnings.simplefilter("ignore", UserWarning)
        info = _log_pyfunc(weights, config, schema)
    return str(info.model_uri)


def _log_pyfunc(weights: Path, config: Path, schema: Any) -> Any:
    import mlflow

    from workflows.steps._environment import pip_requirements
    from workflows.steps._pyfunc import PREPROCESSING, WEIGHTS, served_model

    return mlflow.pyfunc.log_model(  # the signature comes from served_model's type hints (the feature schema)
        name=MODEL_PATH,
        python_model=served_model(schema),
        artifacts={WEIGHTS: str(weights), PREPROCESSING: str(config)},
        pip_requirements=pip_requirements(),
    )


def _log_training_set(path: Path, workdir: Path) -> None:
    """Keep the exact training set with the run, under a fixed name: reproduce downloads it from there."""
    import shutil

    import mlflow

    artifact = Path(TRAINING_SET_ARTIFACT)
    copy = workdir / artifact.name
    shutil.copyfile(path, copy)
    mlflow.log_artifact(str(copy), artifact.parent.as_posix())


def train(
    model_name: str,
    snapshot_id: str,
    training_set_path: Path,
    epochs: int = 8,
    seed: int = 42,
    git_commit: str = "unknown",
    *,
    extra_tags: dict[str, str] | None = None,
) -> TrainResult:
    """Fit on the training set and log the run; returns its id, the device and the per-epoch history."""
    import json
    import tempfile

    import mlflow

    from workflows.steps._dataset import read_training_set
    from workflows.steps._environment import environment_tags, pip_freeze
    from workflows.steps._registry import connect, experiment_name
    from workflows.steps._tabular import pick_device
    from workflows.steps._training import BATCH_SIZE, HIDDEN, LEARNING_RATE, fit

    data = read_training_set(training_set_path)
    snapshot = _verify_snapshot(data.frame, data.schema, snapshot_id)
    device = pick_device()
    connect()
    mlflow.set_experiment(experiment_name(model_name))
    with mlflow.start_run(run_name=f"train-{snapshot[:8]}") as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params(
            {
                "model_name": model_name,
                "snapshot_id": snapshot,
                "epochs": epochs,
                "seed": seed,
                "git_commit": git_commit,
                "rows": len(data.frame),
                "batch_size": BATCH_SIZE,
                "learning_rate": LEARNING_RATE,
                "hidden": ",".join(map(str, HIDDEN)),
                "feature_service": data.schema.service,
                "feature_schema_fingerprint": data.schema.fingerprint(),
            }
        )
        mlflow.set_tags({**environment_tags(device.type), **(extra_tags or {})})
        mlflow.log_text(pip_freeze(), "environment/pip-freeze.txt")
        mlflow.log_text(json.dumps(data.schema.to_json(), indent=2), SCHEMA_ARTIFACT)
        _log_training_set(training_set_path, Path(tmp))
        fitted = fit(data, epochs, seed, device)
        for row in fitted.history:
            step = int(row["epoch"])
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=step)
        mlflow.set_tag(MODEL_URI_TAG, _log_model(fitted, data.schema, Path(tmp)))
        return TrainResult(run_id=run.info.run_id, device=device.type, history=fitted.history)


def _body(contract: StepContract, flags: dict[str, Any]) -> dict[str, Any]:
    result = train(
        flags["model_name"],
        flags["snapshot_id"],
        input_artifact(contract, "training-set"),
        flags["epochs"],
        flags["seed"],
        flags["git_commit"],
    )
    return {"run-id": result.run_id, "device": result.device}


def main(argv: Sequence[str] | None = None) -> None:
    run_step("train", argv, _body)


if __name__ == "__main__":
    main()
