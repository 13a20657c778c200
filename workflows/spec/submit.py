"""Workflows built from other objects, as Argo's ``submit --from`` and cron schedules build them."""

from __future__ import annotations

import copy
from typing import Any

from driftloop.errors import EngineError

__all__ = [
    "CLUSTER_TEMPLATE_LABEL",
    "CRON_LABEL",
    "TEMPLATE_LABEL",
    "apply_parameters",
    "apply_submit_options",
    "split_parameter",
    "workflow_from_cron",
    "workflow_from_template",
]

TEMPLATE_LABEL = "workflows.argoproj.io/workflow-template"
CLUSTER_TEMPLATE_LABEL = "workflows.argoproj.io/cluster-workflow-template"
CRON_LABEL = "workflows.argoproj.io/cron-workflow"


def _split_pair(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise EngineError(f"malformed {what} {text!r}", hint=f"write each {what} as name=value")
    return name.strip(), value


def split_parameter(text: str) -> tuple[str, str]:
    """``name=value`` -> (name, value), with an error that shows the expected form."""
    return _split_pair(text, "parameter")


def apply_parameters(spec: dict[str, Any], parameters: list[str]) -> None:
    """Override (or add) ``spec.arguments.parameters`` from ``name=value`` strings, in place."""
    if not parameters:
        return
    current = spec.setdefault("arguments", {}).setdefault("parameters", [])
    for text in parameters:
        name, value = _split_pair(text, "parameter")
        for parameter in current:
            if parameter.get("name") == name:
                parameter["value"] = value
                parameter.pop("valueFrom", None)
                break
        else:
            current.append({"name": name, "value": value})


def apply_submit_options(workflow: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Argo's SubmitOpts: name/generateName, entryPoint, parameters, labels, annotations, serviceAccount."""
    meta = workflow.setdefault("metadata", {})
    spec = workflow.setdefault("spec", {})
    if options.get("name"):
        meta["name"] = options["name"]
        meta.pop("generateName", None)
    elif options.get("generateName"):
        meta["generateName"] = options["generateName"]
    if options.get("entryPoint"):
        spec["entrypoint"] = options["entryPoint"]
    if options.get("serviceAccount"):
        spec["serviceAccountName"] = options["serviceAccount"]
    if options.get("podPriorityClassName"):
        spec["podPriorityClassName"] = options["podPriorityClassName"]
    for field, key in (("labels", "labels"), ("annotations", "annotations")):
        text = options.get(field) or ""
        pairs = dict(_split_pair(item, field[:-1]) for item in text.split(",") if item.strip())
        if pairs:
            meta.setdefault(key, {}).update(pairs)
    apply_parameters(spec, list(options.get("parameters") or []))
    return workflow


def _new_workflow(source_name: str, label: str, workflow_meta: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A Workflow named after its source, labelled with it, carrying the source's ``workflowMetadata``."""
    metadata: dict[str, Any] = {
        "generateName": f"{source_name}-",
        "labels": {**(workflow_meta.get("labels") or {}), label: source_name},
    }
    if workflow_meta.get("annotations"):
        metadata["annotations"] = dict(workflow_meta["annotations"])
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": metadata, "spec": spec}


def workflow_from_template(template: dict[str, Any], cluster: bool, options: dict[str, Any]) -> dict[str, Any]:
    """A Workflow that references the template (Argo keeps the reference, not a copy of the spec)."""
    name = template["metadata"]["name"]
    reference: dict[str, Any] = {"name": name, **({"clusterScope": True} if cluster else {})}
    workflow_meta = copy.deepcopy(template.get("spec", {}).get("workflowMetadata") or {})
    label = CLUSTER_TEMPLATE_LABEL if cluster else TEMPLATE_LABEL
    workflow = _new_workflow(name, label, workflow_meta, {"workflowTemplateRef": reference})
    return apply_submit_options(workflow, options)


def workflow_from_cron(cron: dict[str, Any], options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Workflow from a CronWorkflow's ``workflowSpec`` and ``workflowMetadata``."""
    spec = cron.get("spec", {})
    workflow_meta = copy.deepcopy(spec.get("workflowMetadata") or {})
    workflow_spec = copy.deepcopy(spec.get("workflowSpec") or {})
    workflow = _new_workflow(cron["metadata"]["name"], CRON_LABEL, workflow_meta, workflow_spec)
    return apply_submit_options(workflow, options or {})
