"""The linter: Argo's CRD schema plus the semantic checks of Argo's controller, for any YAML file.

issues = lint_paths([Path("manifests/workflows")])
for issue in issues: print(issue)     # file: spec.templates[train].tolerations: ... [semantic]
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path

from driftloop.errors import LintIssue
from workflows.spec._semantic import TEMPLATE_TYPES, build_index, check_semantics
from workflows.spec.schema import ARGO_KINDS, validate_structure
from workflows.spec.yamlio import Document, load_documents, load_file

__all__ = ["TEMPLATE_TYPES", "UNCHECKED_KINDS", "expand_paths", "lint_documents", "lint_paths", "lint_text"]

_YAML_SUFFIXES = (".yaml", ".yml")
# Kubernetes kinds that ship next to workflows (Argo's own examples have the first three): accepted, not checked.
# Any other kind is an error, so `kind: Workfow` or a wrong folder can never lint green.
UNCHECKED_KINDS = frozenset(
    {
        "ConfigMap",
        "PersistentVolumeClaim",
        "ResourceQuota",
        "Secret",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "LimitRange",
    }
)


def _unknown_kind(document: Document, kind: str) -> LintIssue:
    known = sorted(ARGO_KINDS) + sorted(UNCHECKED_KINDS)
    close = difflib.get_close_matches(kind, known, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return LintIssue(
        document.label,
        "kind",
        f"unknown kind {kind!r}: {guess}driftloop lint checks {', '.join(sorted(ARGO_KINDS))} "
        f"and accepts unchecked {', '.join(sorted(UNCHECKED_KINDS))}",
        "schema",
    )


def _check_shape(document: Document) -> list[LintIssue]:
    data = document.data
    if not isinstance(data, dict):
        return [LintIssue(document.label, "(document)", "not a Kubernetes object (expected a mapping)", "yaml")]
    if not isinstance(data.get("kind"), str) or not isinstance(data.get("apiVersion"), str):
        return [
            LintIssue(document.label, "(document)", "not a Kubernetes object: 'apiVersion' or 'kind' missing", "yaml")
        ]
    if data["kind"] in ARGO_KINDS and not str(data["apiVersion"]).startswith("argoproj.io/"):
        return [
            LintIssue(document.label, "apiVersion", f"a {data['kind']} needs apiVersion argoproj.io/v1alpha1", "schema")
        ]
    if data["kind"] not in ARGO_KINDS and data["kind"] not in UNCHECKED_KINDS:
        return [_unknown_kind(document, data["kind"])]
    return []


def lint_documents(
    documents: Sequence[Document],
    *,
    shared_dir: Path | None = None,
    strict_templates: bool = False,
    context: Iterable[Document] = (),
) -> list[LintIssue]:
    """Every finding for `documents`; `context` adds WorkflowTemplates that references may resolve to."""
    index = build_index([*context, *documents])
    issues: list[LintIssue] = []
    for document in documents:
        issues += document.issues
        if document.data is None:
            continue
        shape = _check_shape(document)
        if shape:
            issues += shape
            continue
        issues += validate_structure(document.data, document.label, shared_dir)
        issues += check_semantics(document, index, strict_templates)
    return issues


def lint_text(
    text: str,
    source: str = "<text>",
    *,
    shared_dir: Path | None = None,
    strict_templates: bool = False,
    context: Iterable[Document] = (),
) -> list[LintIssue]:
    """Lint YAML (or JSON) given as a string: for tests, and for the engine's API before it accepts a workflow."""
    documents = load_documents(text, source)
    return lint_documents(documents, shared_dir=shared_dir, strict_templates=strict_templates, context=context)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders as their ``*.yaml``/``*.yml`` files (recursively, sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in _YAML_SUFFIXES and p.is_file())
        else:
            files.append(path)
    return files


def lint_paths(
    paths: Iterable[Path], *, shared_dir: Path | None = None, strict_templates: bool = False
) -> list[LintIssue]:
    """Lint files and folders together, so a templateRef may resolve to a WorkflowTemplate in another file.

    A folder without YAML files and a file without documents (empty, only ``---`` or comments) are findings:
    a CI job pointed at the wrong path must not pass.
    """
    documents: list[Document] = []
    missing: list[LintIssue] = []
    for path in paths:
        if path.is_dir() and not expand_paths([path]):
            missing.append(LintIssue(str(path), "(folder)", "no *.yaml or *.yml file in this folder", "yaml"))
    for file in expand_paths(paths):
        loaded = load_file(file)
        if not loaded:
            missing.append(LintIssue(str(file), "(file)", "no YAML document in this file (empty, or only ---)", "yaml"))
        documents += loaded
    return missing + lint_documents(documents, shared_dir=shared_dir, strict_templates=strict_templates)
