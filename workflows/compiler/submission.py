"""The Workflow to submit for a registered pipeline, with parameter overrides checked before anything runs.

Used by ``driftloop submit <pipeline>`` and by the alert receiver (trigger=drift):

    wf = submission_workflow("training", {"epochs": "3"}, trigger="drift", trigger_ref=fingerprint)
    # -> {"apiVersion": ..., "kind": "Workflow", "metadata": {"generateName": "training-", ...},
    #     "spec": {"workflowTemplateRef": {"name": "training"}, "arguments": {"parameters": [...]}}}
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from driftloop.config import get_settings, repo_root
from driftloop.errors import ConfigError, ConflictError, LintIssue, ValidationError
from workflows.compiler._build import API_VERSION, template_ref_spec, workflow_labels
from workflows.pipelines import LABEL_MODEL, BuildOptions, get_pipeline
from workflows.steps._lineage import git_state
from workflows.steps.contract import Param, parse_value

__all__ = ["submission_workflow"]


def _commit_value(checkout: Path, allow_dirty: bool) -> str | None:
    """The ``git-commit`` value for a run from `checkout`: refused when uncommitted changes would go unrecorded."""
    state = git_state(checkout)
    if state.dirty and not allow_dirty:
        shown = ", ".join(line.strip() for line in state.changed[:5]) + (" ..." if len(state.changed) > 5 else "")
        raise ConflictError(
            f"{checkout} has uncommitted changes ({len(state.changed)}: {shown}); the model would be tagged with "
            f"HEAD {state.commit}, which is not the code that would train",
            hint="commit them (git add -A && git commit -m '...') or stash them (git stash -u), then submit again; "
            "or pass --allow-dirty to record git_dirty=true and the diff's sha256 (which `driftloop reproduce` "
            "checks)",
        )
    return state.commit_value()


def _check_overrides(pipeline_name: str, declared: dict[str, Param], values: dict[str, str]) -> None:
    """Unknown names, values outside an enum and values of the wrong type, all at once, before anything is sent."""
    issues = []
    for name, value in values.items():
        if name not in declared:
            issues.append(
                LintIssue(f"pipeline {pipeline_name}", f"parameter {name}", "is not a parameter of this pipeline")
            )
            continue
        try:
            parse_value(declared[name], value)
        except ConfigError as exc:
            issues.append(LintIssue(f"pipeline {pipeline_name}", f"parameter {name}", exc.message))
    if issues:
        listed = ", ".join(f"{p.name} ({p.type})" for p in declared.values())
        raise ValidationError(issues, hint=f"the parameters of '{pipeline_name}' are: {listed}")


def _approval_from_settings(declared: Mapping[str, Param], values: dict[str, str]) -> None:
    """``approval``/``approval-timeout`` of a pipeline that promotes, from DRIFTLOOP_APPROVAL_* unless given
    (passed only where they differ from the template's defaults)."""
    settings = get_settings()
    wanted = {
        "approval": "required" if "production" in settings.approval_environments else "not-required",
        "approval-timeout": settings.approval_timeout,
    }
    for key, value in wanted.items():
        if key in declared and key not in values and value != declared[key].default:
            values[key] = value


def submission_workflow(
    name: str,
    parameters: Mapping[str, object] | None = None,
    *,
    trigger: str | None = None,
    trigger_ref: str | None = None,
    options: BuildOptions | None = None,
    inline: bool = False,
    git_commit: str | None = None,
    allow_dirty: bool = False,
    checkout: Path | None = None,
) -> dict[str, Any]:
    """The Workflow dict that runs pipeline `name` with `parameters` overriding its defaults.

    `options` default to this machine's DRIFTLOOP_* settings. `inline=False` references the WorkflowTemplate
    (it must exist on the server: ``kubectl apply -f manifests/workflows``); `inline=True` embeds its whole
    spec, for a server that does not have it. `git_commit` defaults to the checkout's HEAD; a pipeline that records
    it is refused (ConflictError) when `checkout` (this repository) has uncommitted changes, unless `allow_dirty`,
    which passes ``<sha>+dirty.<sha256 of the diff>`` (see ``workflows/steps/_lineage.py``).
    Raises NotFoundError (unknown pipeline) or ValidationError (unknown parameter, value outside an enum or not
    of the parameter's type, e.g. ``epochs=abc``).
    """
    pipeline = get_pipeline(name)
    options = options or BuildOptions.from_settings()
    template = pipeline.template(options)
    declared = pipeline.parameters(template)
    values = {key: str(value) for key, value in (parameters or {}).items()}
    for key, value in (("trigger", trigger), ("trigger-ref", trigger_ref), ("git-commit", git_commit)):
        if value is not None:
            values[key] = value
    _check_overrides(name, declared, values)
    if "git-commit" in declared and "git-commit" not in values:
        detected = _commit_value(checkout or repo_root(), allow_dirty)
        if detected:
            values["git-commit"] = detected
    _approval_from_settings(declared, values)
    resolved = {key: declared[key].default or "" for key in declared} | values
    labels = workflow_labels(pipeline, options, resolved.get("trigger", "manual"))
    labels[LABEL_MODEL] = resolved.get("model-name", options.model_name)
    if inline:
        spec = copy.deepcopy(template["spec"])
        spec["arguments"]["parameters"] = [{**p, "value": resolved[p["name"]]} for p in spec["arguments"]["parameters"]]
    else:
        spec = template_ref_spec(pipeline, values)
    return {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {"generateName": f"{pipeline.name}-", "namespace": options.namespace, "labels": labels},
        "spec": spec,
    }
