"""The training pipeline: validate-data -> build-training-set -> train -> evaluate -> register (-> promote).

Before promote, a run that needs a person's approval (``approval=required``, which ``driftloop submit`` sets from
DRIFTLOOP_APPROVAL_ENVIRONMENTS) suspends in its ``approval`` task until ``driftloop approve RUN [--reject]`` or
until ``approval-timeout`` passes; promote then acts on the recorded decision (workflows/steps/approval.py).

Every task comes from the step contract; this module only says what is specific to training: which steps,
which run on a GPU, when promotion happens, and the workflow-level guarantees (one training per model at a
time, an outcome record however the run ends, labels and a title the Argo UI can show).
"""

from __future__ import annotations

from dataclasses import replace

from hera.workflows import WorkflowTemplate
from hera.workflows import models as m

from driftloop.config import SETTING_DOCS
from driftloop.registry_contract import APPROVAL_TASK, TRIGGERS
from workflows.pipelines._registry import LABEL_MODEL, LABEL_PIPELINE, LABEL_TRIGGER, BuildOptions, Pipeline, register
from workflows.pipelines._wiring import PipelineDAG
from workflows.pipelines.runtime import CPU_TASK, GPU_TASK, GpuSpec, ResourceSpec, TaskRuntime
from workflows.steps.contract import STEPS, Param
from workflows.steps.record_outcome import RECORD_OUTCOME

__all__ = ["APPROVAL_VALUES", "TRAINING", "TRIGGERS", "build_training", "training_runtimes"]

VALIDATE_DATA, BUILD_TRAINING_SET, TRAIN, EVALUATE, REGISTER, PROMOTE = STEPS
PROMOTE_WHEN = "{{tasks.evaluate.outputs.parameters.passed}} == true"
APPROVAL_VALUES = ("required", "not-required")
APPROVAL_WHEN = f"{PROMOTE_WHEN} && '{{{{workflow.parameters.approval}}}}' == 'required'"

EXIT_TASK = TaskRuntime(
    resources=ResourceSpec(cpu_request="100m", cpu_limit="500m", memory_request="128Mi", memory_limit="512Mi"),
    deadline_seconds=300,
)

# Workflow parameters the steps' contract leaves without a default, or whose default is pipeline-specific.
_PARAMETERS: tuple[Param, ...] = (
    Param("dataset", "Labelled entity rows to train on: a parquet path/URI or a scenario name.", "baseline"),
    Param("git-commit", "Commit of the code that trains (filled in by `driftloop submit`).", "unknown"),
    Param("trigger", "What started this run: manual | schedule | drift | quality.", "manual", enum=TRIGGERS),
    Param("trigger-ref", "What triggered it, e.g. the drift alert's fingerprint.", ""),
    Param(
        "approval",
        "Wait for `driftloop approve` before promote (filled in by `driftloop submit` from the settings).",
        "required",
        enum=APPROVAL_VALUES,
    ),
    Param(
        "approval-timeout",
        "How long to wait for the approval before the run counts as rejected.",
        SETTING_DOCS["approval_timeout"][0],
    ),
)


def training_runtimes(validate_on_gpu: bool = False, gpu: GpuSpec | None = None) -> dict[str, TaskRuntime]:
    """Where each step runs: the contract's GPU steps (train, evaluate) on a GPU, optionally validate-data too."""
    gpu_task = replace(GPU_TASK, gpu=gpu or GPU_TASK.gpu)
    runtimes = {s.name: gpu_task if s.gpu else CPU_TASK for s in STEPS}
    if validate_on_gpu:
        runtimes["validate-data"] = gpu_task
    runtimes[RECORD_OUTCOME.name] = EXIT_TASK
    return runtimes


def _parameters(options: BuildOptions) -> list[Param]:
    model = STEPS[0].input("model-name")
    return [Param(model.name, model.description, options.model_name), *_PARAMETERS]


def _artifact_repository(setting: str) -> m.ArtifactRepositoryRef | None:
    if not setting:
        return None
    config_map, _, key = setting.partition(":")
    return m.ArtifactRepositoryRef(config_map=config_map, key=key or None)


def build_training(
    options: BuildOptions, *, validate_on_gpu: bool = False, gpu: GpuSpec | None = None
) -> WorkflowTemplate:
    """The training WorkflowTemplate for `options` (image, namespace, service account, artifact repository)."""
    dag = PipelineDAG(
        "training",
        image=options.image,
        parameters=_parameters(options),
        runtimes=training_runtimes(validate_on_gpu, gpu),
    )
    validate = dag.task(VALIDATE_DATA)
    built = dag.task(BUILD_TRAINING_SET, after=[validate])  # the data gate must pass first; no data flows from it
    trained = dag.task(TRAIN, snapshot_id=built.output("snapshot-id"), training_set=built.output("training-set"))
    evaluated = dag.task(EVALUATE, run_id=trained.output("run-id"), training_set=built.output("training-set"))
    registered = dag.task(
        REGISTER, run_id=trained.output("run-id"), snapshot_id=built.output("snapshot-id"), after=[evaluated]
    )
    approval = dag.approval(
        APPROVAL_TASK, after=[registered], duration=dag.parameter("approval-timeout"), when=APPROVAL_WHEN
    )
    dag.task(PROMOTE, version=registered.output("version"), when=PROMOTE_WHEN, after=[approval])
    dag.template(RECORD_OUTCOME)
    with WorkflowTemplate(
        name="training",
        namespace=options.namespace,
        labels={LABEL_PIPELINE: "training", LABEL_MODEL: options.model_name},
        annotations={
            "workflows.argoproj.io/title": "Training pipeline",
            "workflows.argoproj.io/description": __doc__.splitlines()[0] if __doc__ else "",
        },
        entrypoint="training",
        arguments=dag.arguments(),
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
        dag.emit()
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
