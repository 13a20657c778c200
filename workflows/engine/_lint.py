"""What the API checks before it accepts an object: the project's linter, plus what only the store knows.

The linter (``workflows.spec.lint``: Argo's CRD schema + the controller's semantic checks) reports every
problem at once; on top of it we check that a ``workflowTemplateRef`` names a template the engine has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from driftloop.config import get_settings
from driftloop.errors import LintIssue, ValidationError
from workflows.engine._names import metadata_problems
from workflows.spec.lint import lint_text

__all__ = ["check_workflow", "lint_object"]

TemplateResolver = Callable[[str, str], "dict[str, Any] | None"]


def _linter_issues(obj: dict[str, Any]) -> list[LintIssue]:
    meta = obj.get("metadata") or {}
    label = str(meta.get("name") or meta.get("generateName") or "<body>")
    return lint_text(json.dumps(obj), label, shared_dir=get_settings().shared_dir)


def _reference_issues(obj: dict[str, Any], resolve_template: TemplateResolver | None) -> list[LintIssue]:
    """A ``workflowTemplateRef`` must name a template the engine knows (the linter cannot see the store)."""
    spec = obj.get("spec") or {}
    reference = spec.get("workflowTemplateRef") if isinstance(spec, dict) else None
    if not reference or resolve_template is None:
        return []
    scope = "ClusterWorkflowTemplate" if reference.get("clusterScope") else "WorkflowTemplate"
    if resolve_template(scope, reference.get("name", "")) is not None:
        return []
    where = (obj.get("metadata") or {}).get("name") or "<body>"
    return [LintIssue(where, "spec.workflowTemplateRef", f"{scope} {reference.get('name')!r} not found")]


def lint_object(obj: dict[str, Any], resolve_template: TemplateResolver | None = None) -> list[LintIssue]:
    """Every issue found in one Argo object."""
    meta = obj.get("metadata")
    where = str(meta.get("name") or "<body>") if isinstance(meta, dict) else "<body>"
    names = [LintIssue(where, "metadata", problem, "names") for problem in metadata_problems(obj)]
    if meta is not None and not isinstance(meta, dict):
        return names  # the linter itself cannot read such an object
    return names + _linter_issues(obj) + _reference_issues(obj, resolve_template)


_POD_SPEC = re.compile(r"\.(container|script|containerSet|initContainers|sidecars)\b")
_TEMPLATE_KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate")


def _checked_at_create(obj: dict[str, Any], issue: LintIssue) -> bool:
    """Argo's server validates a (Cluster)WorkflowTemplate's templates but not the pod spec inside them:
    Kubernetes rejects that only when the pod is created, and the workflow then ends Error ("error in entry
    template execution: …"). So schema findings inside a template's containers do not block its creation."""
    return not (obj.get("kind") in _TEMPLATE_KINDS and issue.check == "schema" and _POD_SPEC.search(issue.path))


def check_workflow(obj: dict[str, Any], resolve_template: TemplateResolver | None = None) -> None:
    """Raise ValidationError listing every issue (the API turns it into HTTP 400 with the linter's message)."""
    issues = [issue for issue in lint_object(obj, resolve_template) if _checked_at_create(obj, issue)]
    if issues:
        raise ValidationError(issues, hint="fix the manifest; `driftloop lint FILE` shows the same findings")
