"""Argo container templates derived from the step contract, so the contract is stated once.

A step becomes a container template running ``python -m <module> --<param> {{inputs.parameters.<param>}}``;
its output parameters are read from ``/tmp/outputs/<name>``. How tasks call these templates (the wiring) is
``workflows/pipelines/_wiring.py``.
"""

from __future__ import annotations

from hera.workflows import Artifact, ConfigMapEnvFrom, Container, Parameter
from hera.workflows import models as m

from workflows.pipelines.runtime import TaskRuntime, default_runtime, with_contract_gpu
from workflows.steps.contract import Param, StepContract

__all__ = ["CONFIG_MAP", "WORKFLOW_VARIABLES", "container_template"]

CONFIG_MAP = "driftloop-config"  # every pod's DRIFTLOOP_* environment (see manifests/workflows/)
WORKFLOW_VARIABLES = {"workflow-name": "{{workflow.name}}", "workflow-uid": "{{workflow.uid}}"}


def container_template(contract: StepContract, image: str, runtime: TaskRuntime | None = None) -> Container:
    """The Argo container template of one step (not yet called by any task).

    `runtime` defaults to the contract's (GPU_TASK when ``gpu=True``); a runtime without a GPU given for a step
    that needs one gets the default GPU, so ``gpu=True`` means a GPU pod in every pipeline.
    """
    runtime = with_contract_gpu(runtime or default_runtime(contract), contract)
    args: list[str] = []
    for param in contract.inputs:
        args += [f"--{param.name}", f"{{{{inputs.parameters.{param.name}}}}}"]
    return Container(
        name=contract.name,
        annotations={"workflows.argoproj.io/description": contract.description},
        image=image,
        command=["python", "-m", contract.module],
        args=args,
        env_from=[ConfigMapEnvFrom(name=CONFIG_MAP)],
        inputs=[_input(p) for p in contract.inputs]
        + [Artifact(name=a.name, path=a.path, optional=a.optional or None) for a in contract.input_artifacts],
        outputs=[
            Parameter(name=p.name, description=p.description, value_from=m.ValueFrom(path=contract.output_path(p.name)))
            for p in contract.outputs
        ]
        + [Artifact(name=a.name, path=a.path, optional=a.optional or None) for a in contract.output_artifacts],
        **runtime.container_kwargs(),
    )


def _input(param: Param) -> Parameter:
    if param.default is None:  # Hera would write the string 'null'
        return Parameter(name=param.name, description=param.description)
    return Parameter(name=param.name, description=param.description, default=param.default)
