"""Structural validation against Argo's own CRD schemas (``openAPIV3Schema``), the way the API server checks.

The CRDs are Kubernetes "structural schemas", not plain JSON Schema: ``x-kubernetes-int-or-string`` and
``nullable`` need translating for python-jsonschema, and unknown fields are rejected here (as ``kubectl
--validate=strict`` does) because Hera and hand-written YAML lose typos silently otherwise. Translating a
2.8 MB CRD takes about a second, so the result is cached as JSON under ``$DRIFTLOOP_HOME/compiler/``,
keyed by the CRD's content hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from driftloop.config import get_settings
from driftloop.errors import ConfigError, LintIssue

__all__ = ["ARGO_KINDS", "crd_dir", "schema_for", "translate_schema", "validate_structure"]

# kind -> CRD file in <shared>/argo-workflows/crds/
ARGO_KINDS: dict[str, str] = {
    "Workflow": "argoproj.io_workflows.yaml",
    "WorkflowTemplate": "argoproj.io_workflowtemplates.yaml",
    "ClusterWorkflowTemplate": "argoproj.io_clusterworkflowtemplates.yaml",
    "CronWorkflow": "argoproj.io_cronworkflows.yaml",
    "WorkflowEventBinding": "argoproj.io_workfloweventbindings.yaml",
}
_MAX_ISSUES_PER_DOCUMENT = 25
_DROPPED_KEYS = {"description", "format", "x-kubernetes-validations", "x-kubernetes-list-type"}
_DROPPED_KEYS |= {"x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-embedded-resource"}


def crd_dir(shared_dir: Path | None = None) -> Path:
    """Where Argo's CRDs live; a clear error when the shared reference data is missing."""
    folder = (shared_dir or get_settings().shared_dir) / "argo-workflows" / "crds"
    if not folder.is_dir():
        raise ConfigError(
            f"Argo's CRDs are not at {folder}",
            hint="point DRIFTLOOP_SHARED_DIR at the shared reference folder (it holds argo-workflows/crds/)",
        )
    return folder


def translate_schema(node: Any) -> Any:
    """Turn a Kubernetes structural schema into plain JSON Schema (strict about unknown fields)."""
    if isinstance(node, list):
        return [translate_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or key in {"nullable", "x-kubernetes-int-or-string"}:
            continue
        if key == "properties":
            out[key] = {name: translate_schema(sub) for name, sub in value.items()}
        elif key == "x-kubernetes-preserve-unknown-fields":
            continue
        else:
            out[key] = translate_schema(value)
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def _cache_dir() -> Path:
    return get_settings().home / "compiler" / "schema-cache"


def _load_translated(crd_path: Path, cache_dir: Path) -> dict[str, Any]:
    raw = crd_path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:16]
    cached = cache_dir / f"{crd_path.stem}-{digest}.json"
    if cached.exists():
        try:
            return json.loads(cached.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass  # a torn or corrupt cache file: rebuild it below
    loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(raw, Loader=loader)
    version = next(v for v in crd["spec"]["versions"] if v.get("storage", True))
    schema = translate_schema(version["schema"]["openAPIV3Schema"])
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cache_dir, delete=False, suffix=".tmp", encoding="utf-8") as tmp:
            tmp.write(json.dumps(schema))  # json.dump streams through the pure-Python encoder: seconds slower
        os.replace(tmp.name, cached)
    except OSError:
        pass  # a read-only home only costs speed
    return schema


@functools.lru_cache(maxsize=16)
def _validator(crd_path: Path) -> jsonschema.protocols.Validator:
    """One validator per CRD per process, whatever DRIFTLOOP_HOME later says (tests change it often)."""
    schema = _load_translated(crd_path, _cache_dir())
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return validator_class(schema)


def schema_for(kind: str, shared_dir: Path | None = None) -> dict[str, Any]:
    """The translated JSON Schema of an Argo kind (cached)."""
    return _validator(crd_dir(shared_dir) / ARGO_KINDS[kind]).schema


def render_path(data: Any, parts: list[Any]) -> str:
    """``spec.templates[train].container`` rather than ``spec/templates/3/container``: name list items."""
    text = ""
    node = data
    for part in parts:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and isinstance(node[part], dict) else None
            text += f"[{name}]" if name else f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return text or "(document)"


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(str(key) for key in error.instance if key not in allowed)
        return f"unknown field(s) {', '.join(map(repr, unknown))} (not in Argo's schema: a typo or the wrong level?)"
    if error.validator == "anyOf" and error.context:
        return "; ".join(sorted({sub.message for sub in error.context}))
    return error.message


def validate_structure(data: Any, label: str, shared_dir: Path | None = None) -> list[LintIssue]:
    """Schema findings for one Argo document; unknown kinds are not this function's business."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(kind, str) or kind not in ARGO_KINDS:
        return []
    validator = _validator(crd_dir(shared_dir) / ARGO_KINDS[kind])
    issues = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        issues.append(LintIssue(label, render_path(data, list(error.absolute_path)), _message(error), "schema"))
        if len(issues) >= _MAX_ISSUES_PER_DOCUMENT:
            break
    return issues
