"""The step contract: names, inputs and outputs of every pipeline step, fixed in one place.

The compiler (``workflows.compiler``) turns this into Argo container templates; the step entry points
(``python -m workflows.steps.<module>``) parse exactly these flags and write exactly these outputs. A step
writes each output *parameter* to ``/tmp/outputs/<name>`` and each output *artifact* to the path given
here, which is where Argo (and the embedded engine) collect them after the main process exits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["INPUT_DIR", "OUTPUT_DIR", "STEPS", "Artifact", "Param", "StepContract", "step"]

OUTPUT_DIR = "/tmp/outputs"
INPUT_DIR = "/tmp/inputs"


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    default: str | None = None  # None: the caller must supply it


@dataclass(frozen=True)
class Artifact:
    name: str
    description: str
    path: str
    optional: bool = False


@dataclass(frozen=True)
class StepContract:
    """One pipeline task: the module it runs, what it takes and what it leaves behind."""

    name: str  # the DAG task and template name
    module: str  # run as `python -m <module> --<param> {{inputs.parameters.<param>}} ...`
    description: str
    inputs: tuple[Param, ...] = ()
    input_artifacts: tuple[Artifact, ...] = ()
    outputs: tuple[Param, ...] = ()
    output_artifacts: tuple[Artifact, ...] = ()
    gpu: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def output_path(self, parameter: str) -> str:
        return f"{OUTPUT_DIR}/{parameter}"


_MODEL = Param("model-name", "Registered model name; every other name derives from it.")
_DATASET = Param("dataset", "Labelled entity rows to train on: a path/URI of parquet, or a scenario name.")
_SNAPSHOT = Param("snapshot-id", "Content hash of the training set and feature view definitions.")
_RUN_ID = Param("run-id", "MLflow run id of the training run.")
_TRAINING_SET = Artifact(
    "training-set", "Point-in-time correct training set (parquet).", f"{INPUT_DIR}/training-set.parquet"
)

STEPS: tuple[StepContract, ...] = (
    StepContract(
        name="validate-data",
        module="workflows.steps.validate_data",
        description="Data gate: schema, quality and drift against the champion's reference data.",
        inputs=(
            _MODEL,
            _DATASET,
            Param("max-null-share", "Largest tolerated share of nulls in any feature column.", "0.05"),
            Param("max-drift-share", "Largest tolerated share of drifted columns vs the champion's reference.", "0.5"),
        ),
        outputs=(Param("rows", "Rows in the validated dataset."),),
        output_artifacts=(
            Artifact("validation-report", "JSON report of every check.", f"{OUTPUT_DIR}/validation-report.json"),
            Artifact("drift-report", "Evidently HTML drift report.", f"{OUTPUT_DIR}/drift-report.html", optional=True),
        ),
    ),
    StepContract(
        name="build-training-set",
        module="workflows.steps.build_training_set",
        description="Point-in-time correct Feast historical features for the labelled entity rows.",
        inputs=(_MODEL, _DATASET, Param("feature-service", "Feast feature service ('' = <model-name>-v1).", "")),
        outputs=(_SNAPSHOT, Param("rows", "Rows in the training set.")),
        output_artifacts=(Artifact("training-set", "Training set (parquet).", f"{OUTPUT_DIR}/training-set.parquet"),),
    ),
    StepContract(
        name="train",
        module="workflows.steps.train",
        description="PyTorch tabular model (embeddings + MLP) logged to MLflow with a Feast-derived signature.",
        inputs=(
            _MODEL,
            _SNAPSHOT,
            Param("epochs", "Training epochs.", "8"),
            Param("seed", "Random seed (runs are deterministic on CPU).", "42"),
            Param("git-commit", "Commit of the code that trains."),
        ),
        input_artifacts=(_TRAINING_SET,),
        outputs=(_RUN_ID, Param("device", "Device used: cuda or cpu.")),
        gpu=True,
    ),
    StepContract(
        name="evaluate",
        module="workflows.steps.evaluate",
        description="Holdout metrics and the evaluation gate against the champion.",
        inputs=(
            _MODEL,
            _RUN_ID,
            Param("min-auc", "Absolute ROC AUC floor.", "0.70"),
            Param("max-regression", "Largest tolerated ROC AUC drop versus the champion.", "0.01"),
        ),
        input_artifacts=(_TRAINING_SET,),
        outputs=(
            Param("passed", "'true' when the challenger passes the gate, else 'false'."),
            Param("reason", "Why it passed or failed, in one line."),
        ),
        output_artifacts=(
            Artifact("metrics", "Holdout and per-segment metrics (JSON).", f"{OUTPUT_DIR}/metrics.json"),
        ),
        gpu=True,
    ),
    StepContract(
        name="register",
        module="workflows.steps.register",
        description="Register the version with full lineage tags, reference data and model card; alias challenger.",
        inputs=(
            _MODEL,
            _RUN_ID,
            _SNAPSHOT,
            Param("trigger", "manual | schedule | drift."),
            Param("trigger-ref", "What triggered it, e.g. the alert fingerprint."),
            Param(
                "drifted-features",
                'JSON list of the features whose drift started this run (drift retrains), e.g. ["age"].',
                "[]",
            ),
            Param("git-commit", "Commit of the code that trains."),
            Param("workflow-name", "Name of the workflow run."),
            Param("workflow-uid", "UID of the workflow run."),
        ),
        outputs=(Param("version", "Registered model version."),),
    ),
    StepContract(
        name="promote",
        module="workflows.steps.promote",
        description="Schema compatibility gate, then alias champion (runs only when evaluate passed).",
        inputs=(_MODEL, Param("version", "Model version to promote.")),
        outputs=(Param("champion-version", "The version now aliased champion."),),
    ),
)


def step(name: str) -> StepContract:
    for contract in STEPS:
        if contract.name == name:
            return contract
    raise KeyError(name)
