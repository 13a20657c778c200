"""Outputs: collecting a pod's parameters/artifacts/result, resolving a DAG's or steps' declared outputs, and the
``tasks.X.*`` / ``steps.X.*`` variables a finished node contributes to its siblings' scope."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from driftloop.errors import EngineError
from workflows.engine._artifacts import ArtifactRepository
from workflows.engine._io import param_text

__all__ = [
    "OutputsError",
    "aggregate_scope",
    "artifact_reference",
    "collect_pod_outputs",
    "declared_defaults",
    "result_scope",
    "value_source",
]

_ARTIFACT_REF = re.compile(r"^\{\{\s*([\w.\-\[\]'\"]+?)\s*\}\}$")


class OutputsError(EngineError):
    """A declared output could not be produced (missing file without default, bad expression…)."""


def value_source(parameter: dict[str, Any]) -> dict[str, Any]:
    """``valueFrom`` with Go's case-insensitive field matching (Argo decodes ``Parameter:`` as ``parameter``)."""
    source = parameter.get("valueFrom") or {}
    if not isinstance(source, dict):
        return {}
    return {key[:1].lower() + key[1:] if isinstance(key, str) else key: value for key, value in source.items()}


def declared_defaults(template: dict[str, Any]) -> dict[str, Any] | None:
    """Outputs of a Skipped/Omitted node: only the parameters that declare ``valueFrom.default``."""
    parameters = [
        {"name": p["name"], "value": param_text(p["valueFrom"]["default"])}
        for p in (template.get("outputs") or {}).get("parameters") or []
        if isinstance(p.get("valueFrom"), dict) and "default" in p["valueFrom"]
    ]
    return {"parameters": parameters} if parameters else None


def collect_pod_outputs(
    template: dict[str, Any],
    host_path: Callable[[str], Path],
    stdout: str,
    exit_code: int | None,
    repository: ArtifactRepository,
    key_prefix: str,
    evaluate: Callable[[str], Any],
) -> dict[str, Any]:
    """A finished pod's outputs, Argo-shaped: parameters, artifacts, result, exitCode."""
    declared = template.get("outputs") or {}
    outputs: dict[str, Any] = {}
    parameters = []
    for parameter in declared.get("parameters") or []:
        source = value_source(parameter)
        value: Any = None
        if "path" in source:
            file = host_path(str(source["path"]))
            if file.is_file():
                value = file.read_text(errors="replace").rstrip()
        elif "expression" in source:
            value = evaluate(str(source["expression"]))
        elif "value" in parameter:
            value = parameter["value"]
        if value is None and "default" in source:
            value = source["default"]
        if value is None:
            raise OutputsError(
                f"output parameter {parameter['name']!r}: {source.get('path') or 'its value'} was not produced",
                hint="write the file before the step exits, or give valueFrom a default",
            )
        entry = {"name": parameter["name"], "value": param_text(value)}
        if parameter.get("globalName"):
            entry["globalName"] = parameter["globalName"]
        parameters.append(entry)
    if parameters:
        outputs["parameters"] = parameters
    artifacts = []
    for artifact in declared.get("artifacts") or []:
        path = artifact.get("path")
        if not path:
            continue
        source_path = host_path(str(path))
        if not source_path.exists():
            if artifact.get("optional"):
                continue
            raise OutputsError(
                f"output artifact {artifact['name']!r}: {path} does not exist",
                hint="create it before the step exits, or mark the artifact optional: true",
            )
        declared_key = (artifact.get("s3") or {}).get("key")  # a key-only artifact names its own key
        suffix = "" if (artifact.get("archive") or {}).get("none") is not None else ".tgz"
        key = str(declared_key) if declared_key else f"{key_prefix}/{artifact['name']}{suffix}"
        location = repository.save(source_path, key, artifact.get("archive"))
        entry = {"name": artifact["name"], "path": path, **location}
        for key in ("globalName", "archive", "mode"):
            if key in artifact:
                entry[key] = artifact[key]
        artifacts.append(entry)
    if artifacts:
        outputs["artifacts"] = artifacts
    if "script" in template or "container" in template or "containerSet" in template:
        outputs["result"] = stdout[:-1] if stdout.endswith("\n") else stdout
    if exit_code is not None:
        outputs["exitCode"] = str(exit_code)
    return outputs


def artifact_reference(text: str, scope: Mapping[str, Any]) -> dict[str, Any] | None:
    """The artifact object named by ``{{steps.x.outputs.artifacts.y}}`` (or any scope key holding one)."""
    match = _ARTIFACT_REF.match(text.strip())
    if not match:
        return None
    found = scope.get(match.group(1))
    return found if isinstance(found, dict) else None


def result_scope(prefix: str, node: Mapping[str, Any]) -> dict[str, Any]:
    """The variables a finished node gives its siblings: ``<prefix>.status``, ``.outputs.result``, …"""
    scope: dict[str, Any] = {
        f"{prefix}.id": node.get("id", ""),
        f"{prefix}.status": node.get("phase", ""),
        f"{prefix}.startedAt": node.get("startedAt", ""),
        f"{prefix}.finishedAt": node.get("finishedAt", ""),
        f"{prefix}.hostNodeName": "localhost",
        f"{prefix}.ip": "127.0.0.1",  # the host network: a daemon is reached on this machine
    }
    outputs = node.get("outputs") or {}
    if "exitCode" in outputs:
        scope[f"{prefix}.exitCode"] = outputs["exitCode"]
    if "result" in outputs:
        scope[f"{prefix}.outputs.result"] = outputs["result"]
    for parameter in outputs.get("parameters") or []:
        scope[f"{prefix}.outputs.parameters.{parameter['name']}"] = parameter.get("value", "")
    for artifact in outputs.get("artifacts") or []:
        scope[f"{prefix}.outputs.artifacts.{artifact['name']}"] = artifact
    return scope


def aggregate_scope(prefix: str, nodes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Fan-out results as Argo aggregates them: JSON lists of each child's parameters and results."""
    parameter_maps: list[dict[str, str]] = []
    results: list[Any] = []
    by_name: dict[str, list[str]] = {}
    for node in nodes:
        outputs = node.get("outputs") or {}
        if node.get("phase") != "Succeeded":
            continue
        if outputs.get("parameters"):
            parameter_maps.append({p["name"]: p.get("value", "") for p in outputs["parameters"]})
            for p in outputs["parameters"]:
                by_name.setdefault(p["name"], []).append(p.get("value", ""))
        if "result" in outputs:
            try:
                results.append(json.loads(outputs["result"]))
            except ValueError:
                results.append(outputs["result"])
    scope: dict[str, Any] = {
        f"{prefix}.outputs.parameters": json.dumps(parameter_maps, separators=(",", ":")),
        f"{prefix}.outputs.result": json.dumps(results, separators=(",", ":")),
    }
    for name, values in by_name.items():
        scope[f"{prefix}.outputs.parameters.{name}"] = json.dumps(values, separators=(",", ":"))
    return scope
