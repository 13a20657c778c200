"""Argo templates derived from the step contract, so the contract is stated once (``workflows/steps/contract.py``).

A step becomes a container template running ``python -m <module> --<param> {{inputs.parameters.<param>}}``;
its output parameters are read from ``/tmp/outputs/<name>``. A chain of steps becomes DAG tasks whose inputs
are wired automatically: from the nearest earlier step that outputs a parameter (or artifact) of that name,
from an Argo workflow variable, or else from a workflow parameter of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hera.workflows import Artifact, ConfigMapEnvFrom, Container, Parameter, Task
from hera.workflows import models as m

from driftloop.errors import ConfigError
from workflows.pipelines.runtime import TaskRuntime
from workflows.steps.contract import Param, StepContract

__all__ = ["CONFIG_MAP", "WORKFLOW_VARIABLES", "add_tasks", "container_template", "free_parameters"]

CONFIG_MAP = "driftloop-config"  # every pod's DRIFTLOOP_* environment (see manifests/workflows/)
WORKFLOW_VARIABLES = {"workflow-name": "{{workflow.name}}", "workflow-uid": "{{workflow.uid}}"}


def container_template(contract: StepContract, image: str, runtime: TaskRuntime) -> Container:
    """The Argo container template of one step (not yet called by any task)."""
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


def free_parameters(steps: Sequence[StepContract]) -> dict[str, Param]:
    """Inputs no earlier step produces and no workflow variable provides: they become workflow parameters."""
    produced: set[str] = set()
    free: dict[str, Param] = {}
    for contract in steps:
        for param in contract.inputs:
            if param.name not in produced and param.name not in WORKFLOW_VARIABLES:
                free.setdefault(param.name, param)
        produced |= {p.name for p in contract.outputs}
    return free


@dataclass(frozen=True)
class _Wiring:
    """Where each earlier output came from: name -> producing task."""

    parameters: dict[str, str]
    artifacts: dict[str, str]


def _arguments(contract: StepContract, wiring: _Wiring) -> tuple[list[Parameter], list[Artifact]]:
    parameters = []
    for param in contract.inputs:
        if param.name in wiring.parameters:
            value = f"{{{{tasks.{wiring.parameters[param.name]}.outputs.parameters.{param.name}}}}}"
        else:
            value = WORKFLOW_VARIABLES.get(param.name, f"{{{{workflow.parameters.{param.name}}}}}")
        parameters.append(Parameter(name=param.name, value=value))
    artifacts = [
        Artifact(name=a.name, from_=f"{{{{tasks.{wiring.artifacts[a.name]}.outputs.artifacts.{a.name}}}}}")
        for a in contract.input_artifacts
        if a.name in wiring.artifacts
    ]
    return parameters, artifacts


def add_tasks(
    steps: Sequence[StepContract],
    templates: Mapping[str, Container],
    when: Mapping[str, str] | None = None,
) -> list[Task]:
    """Call each step's template as a task, in order, each depending on the previous one (inside a ``DAG``)."""
    wiring = _Wiring({}, {})
    tasks: list[Task] = []
    for contract in steps:
        missing = [a.name for a in contract.input_artifacts if a.name not in wiring.artifacts and not a.optional]
        if missing:
            produced = sorted(wiring.artifacts) or "none"
            raise ConfigError(
                f"step '{contract.name}' needs artifact(s) {missing} that no earlier step produces",
                hint=f"put the step that outputs {missing} before '{contract.name}', or mark the input optional "
                f"in its StepContract (artifacts produced so far: {produced})",
            )
        if contract.name not in templates:
            raise ConfigError(
                f"step '{contract.name}' has no container template",
                hint=f"build one with container_template() for every step passed to add_tasks (have: {sorted(templates)})",
            )
        parameters, artifacts = _arguments(contract, wiring)
        task = templates[contract.name](
            name=contract.name, arguments=[*parameters, *artifacts], when=(when or {}).get(contract.name)
        )
        assert isinstance(task, Task)
        if tasks:
            tasks[-1] >> task
        tasks.append(task)
        wiring.parameters.update({p.name: contract.name for p in contract.outputs})
        wiring.artifacts.update({a.name: contract.name for a in contract.output_artifacts})
    return tasks
