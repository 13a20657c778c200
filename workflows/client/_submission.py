"""What ``submit`` sends for a target: a pipeline name (its WorkflowTemplate, built now) or a YAML file.

The client's, not the engine's: building a pipeline's objects needs the compiler and the pipelines, which sit
below the client and beside the engine (docs/architecture.md, "Layers of workflows/").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from driftloop.config import get_settings
from driftloop.errors import ConfigError, EngineError
from workflows.spec.submit import split_parameter, workflow_from_template

__all__ = ["load_submission"]


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]
    except UnicodeDecodeError:
        raise EngineError(
            f"{path} is not a text file (not UTF-8)", hint="give a Workflow or WorkflowTemplate YAML file"
        ) from None
    except yaml.YAMLError as exc:
        raise EngineError(
            f"{path} is not valid YAML: {exc}", hint="check the indentation near the line shown"
        ) from None
    if not documents:
        raise EngineError(f"{path} holds no Argo object", hint="give a Workflow or WorkflowTemplate manifest")
    return documents


def require_mlflow_server(mlflow_uri: str) -> None:
    """Pipelines need an MLflow *server*: refuse a store URI (sqlite:///…, a folder) before anything is submitted.

    Each step runs in its own pod with a private filesystem; with a store URI every step would write its
    artifacts relative to its own working directory, and ``evaluate`` fails after a minute of training
    with ``No such artifact``. A server (``--serve-artifacts``) is the one place all steps share.
    """
    scheme = mlflow_uri.split("://", 1)[0].lower() if "://" in mlflow_uri else ""
    if scheme not in {"http", "https"}:
        raise ConfigError(
            f"DRIFTLOOP_MLFLOW_URI={mlflow_uri!r} is an MLflow store, not a server: pipeline steps run in "
            "separate pods and must share one tracking server for runs and artifacts",
            hint="run `driftloop stack up mlflow` and unset DRIFTLOOP_MLFLOW_URI (default http://127.0.0.1:5000), "
            "or set it to your MLflow server's http(s):// URL",
        )


def _pipeline_submission(
    name: str, parameters: list[str], allow_dirty: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A registered pipeline: its WorkflowTemplate (built for this machine's settings) and the Workflow that runs it.

    The Workflow comes from ``workflows.compiler.submission``, which checks the parameter names and enum values,
    fills ``git-commit`` from the checkout and sets the ``driftloop.io/*`` labels.
    """
    # start-up speed, not a cycle: the pipelines import Hera (seconds), which submitting a YAML file never needs
    from workflows.compiler.submission import submission_workflow
    from workflows.pipelines import BuildOptions, get_pipeline

    require_mlflow_server(get_settings().mlflow_uri)
    options = BuildOptions.from_settings()
    values = dict(split_parameter(text) for text in parameters)
    workflow = submission_workflow(name, values, options=options, allow_dirty=allow_dirty)
    return [get_pipeline(name).template(options)], [workflow]


def load_submission(
    target: str, parameters: list[str] | None = None, *, allow_dirty: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """(templates to apply, workflows to create, whether `parameters` are already applied) for a pipeline or file."""
    path = Path(target)
    if not path.is_file():
        templates, workflows = _pipeline_submission(target, list(parameters or []), allow_dirty)
        return templates, workflows, True
    documents = _documents(path)
    templates = [d for d in documents if d.get("kind") == "WorkflowTemplate"]
    workflows = [d for d in documents if d.get("kind") == "Workflow"]
    if not workflows and len(templates) == 1:  # a template alone: run it, as `argo submit --from` does
        workflows = [workflow_from_template(templates[0], cluster=False, options={})]
    if not workflows:
        raise EngineError(f"{target} holds no Workflow to submit", hint="add a Workflow, or a single WorkflowTemplate")
    return templates, workflows, False
