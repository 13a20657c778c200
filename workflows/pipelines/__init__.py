"""Pipelines as Python: Hera DAGs built from the step contract and registered by name.

from workflows.pipelines import get_pipeline, list_pipelines
get_pipeline("training").template()      # the WorkflowTemplate as a dict

A pipeline module builds a :class:`PipelineDAG` (explicit, typed wiring checked in Python) and registers a
:class:`Pipeline`; docs/pipelines.md walks through one.
"""

from __future__ import annotations

from workflows.pipelines._registry import (
    LABEL_MODEL,
    LABEL_PIPELINE,
    LABEL_TRIGGER,
    PIPELINE_MODULES,
    BuildOptions,
    Pipeline,
    get_pipeline,
    list_pipelines,
    register,
)
from workflows.pipelines._wiring import ITEM, Output, PipelineDAG, TaskHandle, WorkflowParameter
from workflows.pipelines.runtime import GpuSpec, ResourceSpec, RetrySpec, TaskRuntime

__all__ = [
    "ITEM",
    "LABEL_MODEL",
    "LABEL_PIPELINE",
    "LABEL_TRIGGER",
    "PIPELINE_MODULES",
    "BuildOptions",
    "GpuSpec",
    "Output",
    "Pipeline",
    "PipelineDAG",
    "ResourceSpec",
    "RetrySpec",
    "TaskHandle",
    "TaskRuntime",
    "WorkflowParameter",
    "get_pipeline",
    "list_pipelines",
    "register",
]
