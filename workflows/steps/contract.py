"""The step contract: names, inputs and outputs of every pipeline step, fixed in one place.

The compiler (``workflows.compiler``) turns this into Argo container templates; the step entry points
(``python -m workflows.steps.<module>``) parse exactly these flags and write exactly these outputs. A step
writes each output *parameter* to ``/tmp/outputs/<name>`` and each output *artifact* to the path given
here, which is where Argo (and the embedded engine) collect them after the main process exits.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from driftloop.errors import ConfigError

__all__ = [
    "INPUT_DIR",
    "OUTPUT_DIR",
    "PARAM_TYPES",
    "STEPS",
    "Artifact",
    "Param",
    "ParamType",
    "StepContract",
    "parse_value",
    "render_value",
    "step",
]

OUTPUT_DIR = "/tmp/outputs"
INPUT_DIR = "/tmp/inputs"


ParamType = Literal["str", "int", "float", "bool", "json"]
PARAM_TYPES: tuple[str, ...] = get_args(ParamType)
_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "json": "JSON"}


@dataclass(frozen=True)
class Param:
    """A typed input or output parameter; Argo carries every value as a string, the type says how to read it."""

    name: str
    description: str
    default: str | None = None  # None: the caller must supply it
    type: ParamType = "str"
    enum: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ConfigError(
                f"parameter {self.name!r} has type {self.type!r}, which is not a parameter type",
                hint=f"use one of {', '.join(PARAM_TYPES)}; files are Artifacts, not parameters",
            )
        if self.default is not None and not self.default.startswith("{{"):
            parse_value(self, self.default)  # a default that does not parse is a bug in the contract


def parse_value(param: Param, text: str) -> Any:
    """`text` read as `param`'s type; a ConfigError such as "epochs must be an integer (got 'abc')" otherwise."""
    if param.enum is not None and text not in param.enum:
        raise ConfigError(f"{param.name} must be one of {', '.join(param.enum)} (got {text!r})", hint=param.description)
    try:
        if param.type == "int":
            return int(text)
        if param.type == "float":
            return float(text)
        if param.type == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        if param.type == "json":
            return json.loads(text)
    except ValueError:
        raise ConfigError(
            f"{param.name} must be {_TYPE_WORDS[param.type]} (got {text!r})", hint=param.description
        ) from None
    return text


def render_value(value: object) -> str:
    """A Python value as the string Argo passes: bools as true/false, lists and dicts as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


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

    def __post_init__(self) -> None:
        _remember(self)

    def output_path(self, parameter: str) -> str:
        return f"{OUTPUT_DIR}/{parameter}"

    def input(self, name: str) -> Param:
        """The input parameter `name`, or a ConfigError that lists the inputs it has."""
        for param in self.inputs:
            if param.name == name:
                return param
        raise ConfigError(
            f"step {self.name!r} has no input parameter {name!r}",
            hint=f"it has: {', '.join(p.name for p in self.inputs) or 'none'}",
        )


# Every contract defined so far, by name: a step module that defines (or imports) its contract can be run by
# name, whatever pipeline it belongs to. Names are global because `run_step(name)` and the engine key on them.
_KNOWN: dict[str, StepContract] = {}


def _remember(contract: StepContract) -> None:
    existing = _KNOWN.get(contract.name)
    if existing is not None and existing != contract:
        raise ConfigError(
            f"two different step contracts are named {contract.name!r} ({existing.module} and {contract.module})",
            hint="step names are global (templates, `run_step`, logs key on them): rename one of them",
        )
    _KNOWN[contract.name] = contract


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
            Param("max-null-share", "Largest tolerated share of nulls in any feature column.", "0.05", "float"),
            Param(
                "max-drift-share",
                "Largest tolerated share of drifted columns vs the champion's reference.",
                "0.5",
                "float",
            ),
        ),
        outputs=(Param("rows", "Rows in the validated dataset.", type="int"),),
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
        outputs=(_SNAPSHOT, Param("rows", "Rows in the training set.", type="int")),
        output_artifacts=(Artifact("training-set", "Training set (parquet).", f"{OUTPUT_DIR}/training-set.parquet"),),
    ),
    StepContract(
        name="train",
        module="workflows.steps.train",
        description="PyTorch tabular model (embeddings + MLP) logged to MLflow with a Feast-derived signature.",
        inputs=(
            _MODEL,
            _SNAPSHOT,
            Param("epochs", "Training epochs.", "8", "int"),
            Param("seed", "Random seed (runs are deterministic on CPU).", "42", "int"),
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
            Param("min-auc", "Absolute ROC AUC floor.", "0.70", "float"),
            Param("max-regression", "Largest tolerated ROC AUC drop versus the champion.", "0.01", "float"),
        ),
        input_artifacts=(_TRAINING_SET,),
        outputs=(
            Param("passed", "'true' when the challenger passes the gate, else 'false'.", type="bool"),
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
            Param("trigger", "manual | schedule | drift | quality."),
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
        description="Approval and schema compatibility gates, then alias champion (runs only when evaluate passed).",
        inputs=(
            _MODEL,
            Param("version", "Model version to promote."),
            Param("workflow-name", "This run, whose recorded approval (`driftloop approve`) promote requires."),
        ),
        outputs=(Param("champion-version", "The version now aliased champion."),),
    ),
)


def _load_pipelines() -> None:
    """Import the registered pipelines, which import every contract they use (by name: steps sit below pipelines)."""
    registry = importlib.import_module("workflows.pipelines._registry")
    for module in registry.PIPELINE_MODULES:
        importlib.import_module(module)


def step(name: str) -> StepContract:
    """The contract called `name`: defined already (the running step module) or by a registered pipeline."""
    if name not in _KNOWN:
        _load_pipelines()
    if name not in _KNOWN:
        raise ConfigError(
            f"no step contract named {name!r}",
            hint=f"define its StepContract in the step module (or a module it imports) and use it in a pipeline "
            f"listed in PIPELINE_MODULES; known steps: {', '.join(sorted(_KNOWN)) or 'none'}",
        )
    return _KNOWN[name]
