"""The pipeline registry: every pipeline the project can compile, submit, schedule and retrain on drift.

A pipeline is a function from :class:`BuildOptions` to a Hera ``WorkflowTemplate``. Registering it is enough
for ``driftloop compile`` to write its WorkflowTemplate (plus a CronWorkflow when it has a schedule and a
retraining Workflow when drift alerts retrain it) and for ``driftloop submit <name>`` to find it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hera.workflows import WorkflowTemplate

from driftloop.config import Settings, get_settings
from driftloop.errors import ConfigError, NotFoundError
from workflows.steps.contract import Param, ParamType, StepContract, step

__all__ = [
    "LABEL_MODEL",
    "LABEL_PIPELINE",
    "LABEL_TRIGGER",
    "PIPELINE_MODULES",
    "BuildOptions",
    "Pipeline",
    "get_pipeline",
    "list_pipelines",
    "register",
]

# Labels every pipeline run carries, so runs can be listed by model, trigger and pipeline.
LABEL_MODEL = "driftloop.io/model"
LABEL_TRIGGER = "driftloop.io/trigger"
LABEL_PIPELINE = "driftloop.io/pipeline"

_WORKFLOW_PARAMETER = re.compile(r"\{\{workflow\.parameters\.([A-Za-z0-9_.-]+)\}\}")

# Modules that register pipelines when imported; add yours here. This is the one list of pipelines, and through
# them of steps: `workflows.steps.contract.step(name)` imports these to find any step's contract.
PIPELINE_MODULES = ("workflows.pipelines.training",)


@dataclass(frozen=True)
class BuildOptions:
    """The settings a compiled manifest depends on.

    ``defaults()`` ignores the caller's environment on purpose: the committed manifests must be the same bytes
    on every machine. ``from_settings()`` is for what is submitted now, from this machine.
    """

    image: str
    namespace: str
    service_account: str
    artifact_repository: str  # "configmap:key", or "" for the cluster's default artifact repository
    model_name: str

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> BuildOptions:
        settings = settings or get_settings()
        return cls(
            image=settings.image,
            namespace=settings.namespace,
            service_account=settings.service_account,
            artifact_repository=settings.artifact_repository,
            model_name=settings.model_name,
        )

    @classmethod
    def defaults(cls) -> BuildOptions:
        return cls.from_settings(get_settings(env={}))


@dataclass(frozen=True)
class Pipeline:
    """One registered pipeline; `schedule` (cron, UTC) adds a CronWorkflow, `retrain_on_drift` a retraining Workflow."""

    name: str
    description: str
    build: Callable[[BuildOptions], WorkflowTemplate]
    schedule: str | None = None
    retrain_on_drift: bool = False

    def template(self, options: BuildOptions | None = None) -> dict[str, Any]:
        """The WorkflowTemplate as a plain dict (Hera's ``to_dict``)."""
        built = self.build(options or BuildOptions.defaults())
        result: dict[str, Any] = built.to_dict()
        return result

    def steps(self, template: dict[str, Any] | None = None) -> tuple[StepContract, ...]:
        """The step contracts this pipeline runs (its container templates), in template order."""
        spec = (template or self.template())["spec"]
        return tuple(step(t["name"]) for t in spec.get("templates", []) if "container" in t)

    def parameters(self, template: dict[str, Any] | None = None) -> dict[str, Param]:
        """The workflow parameters, each typed as the step inputs it feeds (``str`` when it feeds none).

        Argo carries no types; the contracts do. Reading them off the built template keeps one source of truth.
        """
        spec = (template or self.template())["spec"]
        types: dict[str, ParamType] = {}
        contracts = {c.name: c for c in self.steps({"spec": spec})}
        for tmpl in spec.get("templates", []):
            for task in (tmpl.get("dag") or {}).get("tasks", []):
                contract = contracts.get(task.get("template", ""))
                for argument in (task.get("arguments") or {}).get("parameters", []) if contract else []:
                    match = _WORKFLOW_PARAMETER.fullmatch(str(argument.get("value", "")))
                    kind = contract.input(argument["name"]).type if contract and match else "str"
                    if match and kind != "str":
                        types[match.group(1)] = kind
        return {
            p["name"]: Param(
                p["name"],
                p.get("description", ""),
                p.get("value"),
                types.get(p["name"], "str"),
                tuple(p["enum"]) if p.get("enum") else None,
            )
            for p in spec.get("arguments", {}).get("parameters", [])
        }


_REGISTRY: dict[str, Pipeline] = {}


def register(pipeline: Pipeline) -> Pipeline:
    """Add a pipeline (at import time of its module); a second pipeline of the same name is a bug."""
    existing = _REGISTRY.get(pipeline.name)
    if existing is not None and existing is not pipeline:
        raise ConfigError(
            f"two pipelines are named {pipeline.name!r} ({existing.description!r} and {pipeline.description!r})",
            hint="give one of them another name= in its Pipeline(...); names are what `driftloop submit` takes",
        )
    _REGISTRY[pipeline.name] = pipeline
    return pipeline


def _load() -> None:
    for module in PIPELINE_MODULES:
        importlib.import_module(module)


def list_pipelines() -> list[Pipeline]:
    """Every registered pipeline, sorted by name."""
    _load()
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def get_pipeline(name: str) -> Pipeline:
    """The pipeline called `name`, or a NotFoundError that lists the ones that exist."""
    _load()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise NotFoundError(
            f"no pipeline named {name!r}", hint=f"registered pipelines: {known} (see `driftloop compile --list`)"
        )
    return _REGISTRY[name]
