"""Pipelines as Python: Hera DAGs built from the step contract and registered by name.

from workflows.pipelines import get_pipeline, list_pipelines
get_pipeline("training").template()      # the WorkflowTemplate as a dict
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
from workflows.pipelines.runtime import GpuSpec, ResourceSpec, RetrySpec, TaskRuntime

__all__ = [
    "LABEL_MODEL",
    "LABEL_PIPELINE",
    "LABEL_TRIGGER",
    "PIPELINE_MODULES",
    "BuildOptions",
    "GpuSpec",
    "Pipeline",
    "ResourceSpec",
    "RetrySpec",
    "TaskRuntime",
    "get_pipeline",
    "list_pipelines",
    "register",
]
