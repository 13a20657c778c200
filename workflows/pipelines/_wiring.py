"""Explicit, typed wiring of pipeline tasks, checked while the pipeline is built in Python.

A pipeline is a DAG of tasks, each calling one step (its ``StepContract``). An input is wired explicitly — an
output handle of another task (``hello.output("message")``), a declared workflow parameter
(``dag.parameter("greeting")``), a literal, or ``ITEM`` inside a fan-out — and every mistake is a ConfigError
that names the line of the pipeline's Python source, before any YAML exists:

- an input the step does not have (``mesage=`` for ``message``), an output the producer does not have;
- a required input with no value, no default and no workflow parameter of that name (never ``value: ''``);
- a type mismatch (an ``int`` output into a ``float`` input, a parameter into an artifact, ``"abc"`` for an int);
- ``ITEM`` outside ``with_items``/``with_param``, ``with_param`` from something that is not a JSON list.

Dependencies follow the data (plus ``after=``), reduced to the direct ones: tasks sharing no data run in parallel.
``chain()`` wires a linear pipeline by name, on top of the same checks. ``approval()`` adds a task that waits for a
person (an Argo ``suspend`` template: resumed by ``driftloop approve``, or done when its ``duration`` passes).
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hera.workflows import DAG, Artifact, Container, Parameter, Suspend, Task

from driftloop.config import repo_root
from driftloop.errors import ConfigError
from workflows.pipelines._templates import WORKFLOW_VARIABLES, container_template
from workflows.pipelines.runtime import TaskRuntime, default_runtime
from workflows.steps.contract import Param, StepContract, parse_value, render_value

__all__ = ["ITEM", "Output", "PipelineDAG", "TaskHandle", "WorkflowParameter"]

_TASK_REF = re.compile(r"\{\{\s*tasks\.([A-Za-z0-9_-]+)\.")
_HERE = {os.path.abspath(__file__), os.path.abspath(sys.modules[container_template.__module__].__file__ or "")}


def _caller() -> str:
    """``file:line`` of the pipeline code that called into this module (the line an error should point at)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename) in _HERE:
        frame = frame.f_back
    path = os.path.abspath(frame.f_code.co_filename)
    root = str(repo_root())
    shown = os.path.relpath(path, root) if path.startswith(root + os.sep) else path
    return f"{shown}:{frame.f_lineno}"


def _error(where: str, message: str, hint: str) -> ConfigError:
    return ConfigError(f"{where}: {message}", hint=hint)


class _Item:
    """The current element of a fan-out (``{{item}}``)."""

    def __repr__(self) -> str:
        return "ITEM"


ITEM = _Item()


@dataclass(frozen=True)
class Output:
    """An output of a task: pass it as another task's input (that task then depends on this one)."""

    task: str
    name: str
    kind: str  # "parameter" or "artifact"
    type: str  # the parameter type ("json" for the aggregated outputs of a fan-out); "artifact" for artifacts

    def expression(self) -> str:
        return f"{{{{tasks.{self.task}.outputs.{self.kind}s.{self.name}}}}}"


@dataclass(frozen=True)
class WorkflowParameter:
    """A declared workflow parameter (settable with ``driftloop submit -p name=value``)."""

    param: Param

    def expression(self) -> str:
        return f"{{{{workflow.parameters.{self.param.name}}}}}"


@dataclass(frozen=True)
class TaskHandle:
    """A task added to a :class:`PipelineDAG`; ``output(name)`` hands one of its outputs to later tasks."""

    name: str
    contract: StepContract | None  # None: an approval (suspend) task, which has no outputs
    source: str
    fan_out: bool = False

    def output(self, name: str) -> Output:
        where = _caller()
        if self.contract is None:
            raise _error(where, f"approval task {self.name!r} has no output {name!r}", "wire it with after=[...]")
        for param in self.contract.outputs:
            if param.name == name:
                return Output(self.name, name, "parameter", "json" if self.fan_out else param.type)
        for artifact in self.contract.output_artifacts:
            if artifact.name == name:
                return Output(self.name, name, "artifact", "artifact")
        has = [p.name for p in self.contract.outputs] + [a.name for a in self.contract.output_artifacts]
        raise _error(
            where,
            f"task {self.name!r} (step {self.contract.name!r}) has no output {name!r}",
            f"it has: {', '.join(has) or 'none'} (declared in its StepContract, task added at {self.source})",
        )


Value = Output | WorkflowParameter | _Item | str | int | float | bool | list[Any] | dict[str, Any]


@dataclass
class _TaskSpec:
    name: str
    contract: StepContract | None  # None: a suspend task (``duration`` below)
    parameters: list[tuple[str, str]]
    artifacts: list[tuple[str, str]]
    depends: list[str]
    when: str | None
    with_items: list[Any] | None
    with_param: str | None
    duration: str | None = None


@dataclass
class PipelineDAG:
    """The tasks of one pipeline; ``emit()`` (inside a ``WorkflowTemplate`` block) writes the Hera templates.

    `parameters` are the workflow parameters the pipeline declares; an input nobody wires resolves, by its name,
    to an Argo workflow variable (``workflow-name``/``workflow-uid``), to a declared parameter, or to the
    contract's default (which then becomes a workflow parameter with that default, tunable at submit).
    """

    name: str
    image: str
    parameters: Sequence[Param] = ()
    runtimes: Mapping[str, TaskRuntime] = field(default_factory=dict)
    _tasks: dict[str, _TaskSpec] = field(default_factory=dict, init=False)
    _ancestors: dict[str, set[str]] = field(default_factory=dict, init=False)
    _contracts: dict[str, StepContract] = field(default_factory=dict, init=False)
    _used: dict[str, Param] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._declared = {p.name: p for p in self.parameters}

    # -- building ---------------------------------------------------------------------------------------------
    def parameter(self, name: str) -> WorkflowParameter:
        """The declared workflow parameter `name` (a ConfigError naming this line when it is not declared)."""
        if name not in self._declared:
            raise _error(
                _caller(),
                f"pipeline {self.name!r} declares no workflow parameter {name!r}",
                f"declare it: PipelineDAG(..., parameters=[Param({name!r}, 'what it is', default)]); "
                f"declared: {', '.join(self._declared) or 'none'}",
            )
        return WorkflowParameter(self._declared[name])

    def template(self, contract: StepContract) -> None:
        """Add a step's template without a task (e.g. the ``onExit`` handler)."""
        self._remember(contract, _caller())

    def task(
        self,
        contract: StepContract,
        *,
        name: str | None = None,
        inputs: Mapping[str, Value] | None = None,
        after: Sequence[TaskHandle] = (),
        when: str | None = None,
        with_items: Sequence[Any] | None = None,
        with_param: Output | WorkflowParameter | None = None,
        **kwargs: Value,
    ) -> TaskHandle:
        """Call `contract` as task `name` (default: the step's name); inputs by keyword (``_`` for ``-``) or dict."""
        where = _caller()
        task_name = name or contract.name
        if task_name in self._tasks:
            raise _error(where, f"pipeline {self.name!r} already has a task {task_name!r}", "pass name='...'")
        self._remember(contract, where)
        given = {key.replace("_", "-"): value for key, value in kwargs.items()} | dict(inputs or {})
        fan_out = with_items is not None or with_param is not None
        sources: list[str] = [h.name for h in after]
        known = {p.name for p in contract.inputs} | {a.name for a in contract.input_artifacts}
        for unknown in sorted(set(given) - known):
            raise _error(
                where,
                f"step {contract.name!r} has no input {unknown!r}",
                f"it has: {', '.join(sorted(known)) or 'none'} (task {task_name!r})",
            )
        parameters = []
        for param in contract.inputs:
            text, source = self._parameter_value(where, task_name, param, given.get(param.name, _MISSING), fan_out)
            parameters.append((param.name, text))
            sources += source
        artifacts = []
        for artifact in contract.input_artifacts:
            value = given.get(artifact.name, _MISSING)
            if value is _MISSING:
                if artifact.optional:
                    continue
                raise _error(
                    where,
                    f"input artifact {artifact.name!r} of task {task_name!r} is not wired",
                    f"pass {artifact.name.replace('-', '_')}=<task>.output({artifact.name!r}) from the task that "
                    "produces it, or mark it optional in the StepContract",
                )
            if not isinstance(value, Output) or value.kind != "artifact":
                raise _error(
                    where,
                    f"input artifact {artifact.name!r} of task {task_name!r} needs an artifact output, got {value!r}",
                    "pass <task>.output('<artifact name>') of a task whose contract lists it in output_artifacts",
                )
            artifacts.append((artifact.name, value.expression()))
            sources.append(value.task)
        items, param_expression = self._fan_out(where, with_items, with_param, sources)
        for referenced in _TASK_REF.findall(when or ""):
            if referenced not in self._tasks:
                raise _error(
                    where,
                    f"when={when!r} names task {referenced!r}, which is not (yet) in the DAG",
                    f"tasks so far: {', '.join(self._tasks) or 'none'}",
                )
            sources.append(referenced)
        depends = self._direct(sources)
        self._tasks[task_name] = _TaskSpec(
            task_name, contract, parameters, artifacts, depends, when, items, param_expression
        )
        self._ancestors[task_name] = set(sources).union(*(self._ancestors[s] for s in sources))
        return TaskHandle(task_name, contract, where, fan_out)

    def approval(
        self,
        name: str = "approval",
        *,
        after: Sequence[TaskHandle] = (),
        duration: WorkflowParameter | str | None = None,
        when: str | None = None,
    ) -> TaskHandle:
        """A task that suspends the run until resumed (``driftloop approve``) or until `duration` passes.

        Compiles to an Argo ``suspend`` template named like the task; `duration` is a declared workflow parameter
        or an Argo duration (``30m``, ``24h``; none: wait for ever). Later tasks wait for it with ``after=[...]``.
        """
        where = _caller()
        if name in self._tasks or name in self._contracts:
            raise _error(where, f"pipeline {self.name!r} already has a task or template {name!r}", "pass name='...'")
        sources = [h.name for h in after]
        if isinstance(duration, WorkflowParameter):
            self._used.setdefault(duration.param.name, duration.param)
            text: str | None = duration.expression()
        else:
            text = duration
            if text is not None and not re.fullmatch(r"\d+[smhd]?", text):
                raise _error(where, f"approval duration {text!r} is not an Argo duration", "e.g. '30m' or '24h'")
        for referenced in _TASK_REF.findall(when or ""):
            if referenced not in self._tasks:
                raise _error(where, f"when={when!r} names task {referenced!r}, which is not (yet) in the DAG",
                             f"tasks so far: {', '.join(self._tasks) or 'none'}")  # fmt: skip
            sources.append(referenced)
        self._tasks[name] = _TaskSpec(name, None, [], [], self._direct(sources), when, None, None, text)
        self._ancestors[name] = set(sources).union(*(self._ancestors[s] for s in sources))
        return TaskHandle(name, None, where)

    def chain(self, steps: Sequence[StepContract], when: Mapping[str, str] | None = None) -> list[TaskHandle]:
        """Each step after the previous one, inputs wired by name from the nearest earlier step that outputs them."""
        handles: list[TaskHandle] = []
        produced: dict[str, Output] = {}
        for contract in steps:
            wanted = [p.name for p in contract.inputs] + [a.name for a in contract.input_artifacts]
            inputs: dict[str, Value] = {n: produced[n] for n in wanted if n in produced}
            handle = self.task(contract, inputs=inputs, after=handles[-1:], when=(when or {}).get(contract.name))
            handles.append(handle)
            for param in contract.outputs:
                produced[param.name] = Output(handle.name, param.name, "parameter", param.type)
            for artifact in contract.output_artifacts:
                produced[artifact.name] = Output(handle.name, artifact.name, "artifact", "artifact")
        return handles

    # -- what it compiles to ----------------------------------------------------------------------------------
    @property
    def steps(self) -> tuple[StepContract, ...]:
        """Every step this pipeline runs (tasks and task-less templates), in the order they were added."""
        return tuple(self._contracts.values())

    def arguments(self) -> list[Parameter]:
        """The workflow parameters: those the tasks use (in order of use), then declared ones nothing used."""
        params = {**self._used, **{n: p for n, p in self._declared.items() if n not in self._used}}
        return [
            Parameter(
                name=p.name,
                description=p.description,
                value=p.default,
                enum=list(p.enum) if p.enum else None,
            )
            for p in params.values()
        ]

    def emit(self) -> None:
        """The container templates and the DAG, inside the enclosing ``WorkflowTemplate`` context."""
        containers: dict[str, Container] = {
            c.name: container_template(c, self.image, self.runtimes.get(c.name) or default_runtime(c))
            for c in self._contracts.values()
        }
        suspends = {
            spec.name: Suspend(name=spec.name, duration=spec.duration)
            for spec in self._tasks.values()
            if spec.contract is None
        }
        with DAG(name=self.name):
            for spec in self._tasks.values():
                Task(
                    name=spec.name,
                    template=containers[spec.contract.name] if spec.contract is not None else suspends[spec.name],
                    arguments=[Parameter(name=n, value=v) for n, v in spec.parameters]
                    + [Artifact(name=n, from_=v) for n, v in spec.artifacts],
                    depends=" && ".join(spec.depends) or None,
                    when=spec.when,
                    with_items=spec.with_items,
                    with_param=spec.with_param,
                )

    # -- checks -----------------------------------------------------------------------------------------------
    def _remember(self, contract: StepContract, where: str) -> None:
        existing = self._contracts.get(contract.name)
        if existing is not None and existing != contract:
            raise _error(
                where,
                f"two different steps named {contract.name!r} in pipeline {self.name!r}",
                "a template name is one step: rename one of the StepContracts",
            )
        self._contracts[contract.name] = contract

    def _parameter_value(
        self, where: str, task: str, param: Param, value: object, fan_out: bool
    ) -> tuple[str, list[str]]:
        what = f"input {param.name!r} of task {task!r}"
        if value is _MISSING:
            if param.name in WORKFLOW_VARIABLES:
                return WORKFLOW_VARIABLES[param.name], []
            declared = self._declared.get(param.name)
            if declared is None and param.default is None:
                raise _error(
                    where,
                    f"{what} is required and not wired: no value, no default, no workflow parameter {param.name!r}"
                    + self._did_you_mean(param.name),
                    f"pass {param.name.replace('-', '_')}=<task>.output('...') or a value, or declare "
                    f"Param({param.name!r}, ...) in the pipeline's parameters"
                    f" (declared: {', '.join(self._declared) or 'none'})",
                )
            value = WorkflowParameter(declared or param)
        if isinstance(value, WorkflowParameter):
            self._check_type(where, what, param, value.param.type, f"workflow parameter {value.param.name!r}")
            self._used.setdefault(value.param.name, value.param)
            return value.expression(), []
        if isinstance(value, Output):
            if value.kind != "parameter":
                raise _error(
                    where,
                    f"{what} is a parameter but got artifact {value.name!r} of task {value.task!r}",
                    "artifacts can only feed the contract's input_artifacts",
                )
            self._check_type(where, what, param, value.type, f"output {value.name!r} of task {value.task!r}")
            return value.expression(), [value.task]
        if value is ITEM:
            if not fan_out:
                raise _error(
                    where,
                    f"{what} is ITEM but the task has no with_items/with_param",
                    "ITEM is the current element of a fan-out: add with_items=[...] or with_param=...",
                )
            return "{{item}}", []
        return self._literal(where, what, param, value), []

    def _did_you_mean(self, name: str) -> str:
        outputs = {p.name: t.name for t in self._tasks.values() if t.contract for p in t.contract.outputs}
        close = difflib.get_close_matches(name, [*outputs, *self._declared], n=1)
        if not close:
            return ""
        origin = f"output of task {outputs[close[0]]!r}" if close[0] in outputs else "workflow parameter"
        return f" (did you mean {close[0]!r}, {origin}?)"

    @staticmethod
    def _check_type(where: str, what: str, param: Param, got: str, source: str) -> None:
        if param.type != "str" and got != param.type:
            raise _error(
                where,
                f"{what} is {param.type} but {source} is {got}",
                "wire an output of the same type, or convert it in a step",
            )

    @staticmethod
    def _literal(where: str, what: str, param: Param, value: object) -> str:
        if isinstance(value, str):
            if "{{" not in value:
                try:
                    parse_value(param, value)
                except ConfigError as exc:
                    raise _error(where, f"{what}: {exc.message}", param.description) from None
            return value
        expected = {"int": (int,), "float": (int, float), "bool": (bool,), "json": (list, dict), "str": ()}[param.type]
        if not isinstance(value, expected) or (isinstance(value, bool) and param.type != "bool"):
            raise _error(
                where,
                f"{what} is {param.type} but got {value!r} ({type(value).__name__})",
                "pass a value of the input's type, or a string",
            )
        return render_value(value)

    def _fan_out(
        self, where: str, with_items: Sequence[Any] | None, with_param: object, sources: list[str]
    ) -> tuple[list[Any] | None, str | None]:
        if with_items is not None and with_param is not None:
            raise _error(where, "a task takes with_items or with_param, not both", "keep one of them")
        if with_param is None:
            return (list(with_items) if with_items is not None else None), None
        if isinstance(with_param, Output) and with_param.kind == "parameter" and with_param.type == "json":
            sources.append(with_param.task)
            return None, with_param.expression()
        if isinstance(with_param, WorkflowParameter) and with_param.param.type == "json":
            self._used.setdefault(with_param.param.name, with_param.param)
            return None, with_param.expression()
        raise _error(
            where,
            f"with_param needs a json output or workflow parameter (a JSON list), got {with_param!r}",
            "declare the producing output as Param(..., type='json') and write json.dumps([...]) to it",
        )

    def _direct(self, sources: list[str]) -> list[str]:
        """The sources no other source depends on (the rest are implied): a chain stays a chain."""
        unique = list(dict.fromkeys(sources))
        return [s for s in unique if not any(s in self._ancestors[o] for o in unique if o != s)]


_MISSING: Any = object()
