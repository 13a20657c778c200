"""What ``submit`` sends for a target: a pipeline name (its WorkflowTemplate, built now) or a YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from driftloop.errors import EngineError
from workflows.engine._submit import workflow_from_template

__all__ = ["load_submission"]


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise EngineError(
            f"{path} is not valid YAML: {exc}", hint="check the indentation near the line shown"
        ) from None
    if not documents:
        raise EngineError(f"{path} holds no Argo object", hint="give a Workflow or WorkflowTemplate manifest")
    return documents


def _pipeline_documents(name: str) -> list[dict[str, Any]]:
    """A registered pipeline's WorkflowTemplate, built for this machine's settings (``workflows.pipelines``)."""
    from workflows.pipelines import BuildOptions, get_pipeline

    return [get_pipeline(name).template(BuildOptions.from_settings())]


def load_submission(target: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(templates to apply, workflows to create) for a pipeline name or a YAML file."""
    path = Path(target)
    documents = _documents(path) if path.is_file() else _pipeline_documents(target)
    templates = [d for d in documents if d.get("kind") == "WorkflowTemplate"]
    workflows = [d for d in documents if d.get("kind") == "Workflow"]
    if not workflows and len(templates) == 1:  # a template alone: run it, as `argo submit --from` does
        workflows = [workflow_from_template(templates[0], cluster=False, options={})]
    if not workflows:
        raise EngineError(f"{target} holds no Workflow to submit", hint="add a Workflow, or a single WorkflowTemplate")
    return templates, workflows
