"""The training pipeline: validate-data -> build-training-set -> train -> evaluate -> register (-> promote).

Every task comes from the step contract; this module only says what is specific to training: which steps,
which run on a GPU, when promotion happens, and the workflow-level guarantees (one training per model at a
time, an outcome record however the run ends, labels and a title the Argo UI can show).
"""

from __future__ import annotations

from dataclasses import replace

from hera.workflows import DAG, Parameter, WorkflowTemplate
from hera.workflows import models as m

from workflows.pipelines._registry import LABEL_MODEL, LABEL_PIPELINE, LABEL_TRIGGER, BuildOptions, Pipeline, register
from workflows.pipelines._templates import add_tasks, container_template, free_parameters
from workflows.pipelines.runtime import GpuSpec, ResourceSpec, RetrySpec, TaskRuntime
from workflows.steps.contract import STEPS, Param, StepContract
from workflows.steps.record_outcome import RECORD_OUTCOME

__all__ = ["TRAINING", "TRIGGERS", "build_training", "training_runtimes"]

TRIGGERS = ("manual", "schedule", "drift")
PROMOTE_WHEN = "{{tasks.evaluate.outputs.parameters.passed}} == true"

CPU_TASK = TaskRuntime(deadline_seconds=1800)
GPU_TASK = TaskRuntime(
    resources=ResourceSpec(cpu_request="2", cpu_limit="8", memory_request="8Gi", memory_limit="32Gi"),
    gpu=GpuSpec(count=1),
    retry=RetrySpec(limit=3, policy="OnError"),
    deadline_seconds=4 * 3600,
)
EXIT_TASK = TaskRuntime(
    resources=ResourceSpec(cpu_request="100m", cpu_limit="500m", memory_request="128Mi", memory_limit="512Mi"),
    deadline_seconds=300,
)

# Workflow parameters the steps' contract leaves without a default, or whose default is pipeline-specific.
_PARAMETER_OVERRIDES: dict[str, Param] = {
    "dataset": Param("dataset", "Labelled entity rows to train on: a parquet path/URI or a scenario name.", "baseline"),
    "git-commit": Param("git-commit", "Commit of the code that trains (filled in by `driftloop submit`).", "unknown"),
    "trigger": Param("trigger", "What started this run: manual | schedule | drift.", "manual"),
    "trigger-ref": Param("trigger-ref", "What triggered it, e.g. the drift alert's fingerprint.", ""),
}


def training_runtimes(validate_on_gpu: bool = False, gpu: GpuSpec | None = None) -> dict[str, TaskRuntime]:
    """Where each step runs: the contract's GPU steps (train, evaluate) on a GPU, optionally validate-data too."""
    gpu_task = replace(GPU_TASK, gpu=gpu or GPU_TASK.gpu)
    runtimes = {s.name: gpu_task if s.gpu else CPU_TASK for s in STEPS}
    if validate_on_gpu:
        runtimes["validate-data"] = gpu_task
    runtimes[RECORD_OUTCOME.name] = EXIT_TASK
    return runtimes


def _workflow_parameters(steps: tuple[StepContract, ...], options: BuildOptions) -> list[Parameter]:
    params = {**free_parameters(steps), **_PARAMETER_OVERRIDES}
    params["model-name"] = replace(params["model-name"], default=options.model_name)
    return [
        Parameter(
            name=p.name,
            description=p.description,
            value=p.default if p.default is not None else "",
            enum=list(TRIGGERS) if p.name == "trigger" else None,
        )
        for p in params.values()
    ]


def _artifact_repository(setting: str) -> m.ArtifactRepositoryRef | None:
    if not setting:
        return None
    config_map, _, key = setting.partition(":")
    return m.ArtifactRepositoryRef(config_map=config_map, key=key or None)


def build_training(
    options: BuildOptions, *, validate_on_gpu: bool = False, gpu: GpuSpec | None = None
) -> WorkflowTemplate:
    """The training WorkflowTemplate for `options` (image, namespace, service account, artifact repository)."""
    runtimes = training_runtimes(validate_on_gpu, gpu)
    with WorkflowTemplate(
        name="training",
        namespace=options.namespace,
        labels={LABEL_PIPELINE: "training", LABEL_MODEL: options.model_name},
        annotations={
            "workflows.argoproj.io/title": "Training pipeline",
            "workflows.argoproj.io/description": __doc__.splitlines()[0] if __doc__ else "",
        },
        entrypoint="training",
        arguments=_workflow_parameters(STEPS, options),
        service_account_name=options.service_account,
        on_exit=RECORD_OUTCOME.name,
        synchronization=m.Synchronization(mutexes=[m.Mutex(name="training-{{workflow.parameters.model-name}}")]),
        pod_gc=m.PodGC(strategy="OnPodSuccess", delete_delay_duration="10m"),
        artifact_repository_ref=_artifact_repository(options.artifact_repository),
        workflow_metadata=m.WorkflowMetadata(
            labels={LABEL_PIPELINE: "training"},
            labels_from={
                LABEL_MODEL: m.LabelValueFrom(expression="workflow.parameters['model-name']"),
                LABEL_TRIGGER: m.LabelValueFrom(expression="workflow.parameters['trigger']"),
            },
            annotations={
                "workflows.argoproj.io/title": "train {{workflow.parameters.model-name}}"
                " ({{workflow.parameters.trigger}})",
                "workflows.argoproj.io/description": "Training of {{workflow.parameters.model-name}} on"
                " {{workflow.parameters.dataset}}, triggered by {{workflow.parameters.trigger}}"
                " {{workflow.parameters.trigger-ref}}",
            },
        ),
    ) as template:
        containers = {s.name: container_template(s, options.image, runtimes[s.name]) for s in STEPS}
        container_template(RECORD_OUTCOME, options.image, runtimes[RECORD_OUTCOME.name])
        with DAG(name="training"):
            add_tasks(STEPS, containers, when={"promote": PROMOTE_WHEN})
    return template


TRAINING = register(
    Pipeline(
        name="training",
        description="Validate data, build the training set, train, evaluate, register and (if better) promote.",
        build=build_training,
        schedule="0 3 * * 1",
        retrain_on_drift=True,
    )
)
