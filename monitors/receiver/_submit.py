"""Submitting the retraining Workflow for one incident, through the one Argo client (Hera, settings' URL + token).

The Workflow is the compiled ``manifests/workflows/<pipeline>.retrain.workflow.yaml`` with ``trigger=drift`` (or
``quality``, for the live-quality alert: its ``trigger`` label) and
``trigger-ref=<fingerprint>``, ``drifted-features=<JSON list>`` (which the register step records on the new model
version), and a *name derived from the incident key*: if the receiver dies after the Argo
Server created the run but before the store recorded it, the retry on restart gets AlreadyExists and records
the existing run instead of starting a second one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from driftloop.config import Settings, repo_root
from driftloop.errors import ConfigError, ConflictError
from monitors.receiver._rules import DRIFTED_FEATURES_ANNOTATION, QUALITY_TRIGGER

__all__ = [
    "LABEL_FINGERPRINT",
    "LABEL_INCIDENT",
    "RETRAIN_TRIGGERS",
    "RetrainSubmitter",
    "alert_trigger",
    "drifted_features",
    "incident_key",
    "retrain_manifest",
    "workflow_name",
]

LABEL_MODEL = "driftloop.io/model"
LABEL_TRIGGER = "driftloop.io/trigger"
LABEL_FINGERPRINT = "driftloop.io/alert-fingerprint"
LABEL_INCIDENT = "driftloop.io/incident"
ANNOTATION_PREFIX = "driftloop.io/"
log = logging.getLogger("driftloop.trigger")
_ACTIVE_PHASES = {"", "Pending", "Running"}
RETRAIN_TRIGGERS = ("drift", QUALITY_TRIGGER)  # what an alert may start (a subset of registry_contract.TRIGGERS)


def alert_trigger(labels: dict[str, str]) -> str:
    """The retrain's ``trigger``: the alert's ``trigger`` label (the live-quality rule sets ``quality``), else drift."""
    return labels.get("trigger") or "drift"


def incident_key(model: str, fingerprint: str, starts_at: str) -> str:
    return f"{model}/{fingerprint}/{starts_at}"


def workflow_name(model: str, key: str) -> str:
    """A valid Kubernetes name, stable for the incident: ``<model>-retrain-<sha256(key)[:10]>``."""
    stem = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")[:40] or "model"
    return f"{stem}-retrain-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def retrain_manifest(folder: Path | None = None) -> dict[str, Any]:
    path = (folder or repo_root() / "manifests" / "workflows") / "training.retrain.workflow.yaml"
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


class RetrainSubmitter:
    """What the receiver needs from Argo: is a drift retrain of this model running, and submit one."""

    def __init__(self, settings: Settings, manifest: dict[str, Any] | None = None) -> None:
        from workflows.client import ArgoClient

        self.settings = settings
        self.client = ArgoClient(settings, autostart=False)
        self.manifest = manifest or retrain_manifest()
        self.extra_parameters()  # a malformed setting fails at start, not at the first incident

    def extra_parameters(self) -> dict[str, str]:
        """DRIFTLOOP_TRIGGER_PARAMETERS as a dict (the trigger's own three always win)."""
        out = {}
        for item in filter(None, (part.strip() for part in self.settings.trigger_parameters.split(","))):
            name, sep, value = item.partition("=")
            if not sep or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
                raise ConfigError(
                    f"DRIFTLOOP_TRIGGER_PARAMETERS item {item!r} is not name=value",
                    hint="e.g. DRIFTLOOP_TRIGGER_PARAMETERS=dataset=baseline,epochs=4",
                )
            out[name] = value
        return out

    def in_flight(self, model: str) -> str | None:
        """The name of an alert-started retrain (drift or quality) of ``model`` still Pending/Running, or None."""
        selector = f"{LABEL_MODEL}={model},{LABEL_TRIGGER} in ({','.join(RETRAIN_TRIGGERS)})"
        for workflow in self.client.list_workflows(label_selector=selector):
            if (workflow.get("status") or {}).get("phase", "") in _ACTIVE_PHASES:
                return str(workflow["metadata"]["name"])
        return None

    def phase(self, name: str) -> str:
        return str((self.client.get_workflow(name).get("status") or {}).get("phase", ""))

    def build(self, incident: str, model: str, alert: dict[str, Any], features: list[str]) -> dict[str, Any]:
        workflow = copy.deepcopy(self.manifest)
        metadata = workflow.setdefault("metadata", {})
        metadata.pop("generateName", None)
        metadata["name"] = workflow_name(model, incident)
        metadata["namespace"] = self.settings.namespace
        fingerprint = alert["fingerprint"]
        trigger = alert_trigger(alert["labels"])
        metadata["labels"] = {
            **(metadata.get("labels") or {}),
            LABEL_MODEL: model,
            LABEL_TRIGGER: trigger,
            LABEL_FINGERPRINT: fingerprint,
            LABEL_INCIDENT: hashlib.sha256(incident.encode()).hexdigest()[:16],
        }
        alertmanager = alert.get("external_url") or self.settings.alertmanager_url
        matcher = quote('{{alertname="{}",model="{}"}}'.format(alert["labels"].get("alertname", ""), model), safe="")
        metadata["annotations"] = {
            **(metadata.get("annotations") or {}),
            ANNOTATION_PREFIX + "alert-generator-url": alert.get("generator_url", ""),
            ANNOTATION_PREFIX + "alertmanager-url": f"{alertmanager}/#/alerts?filter={matcher}",
            ANNOTATION_PREFIX
            + "trigger-url": f"{self.settings.trigger_url}/triggers?incident={quote(incident, safe='')}",
            ANNOTATION_PREFIX + "incident": incident,
            ANNOTATION_PREFIX + "alert-labels": json.dumps(alert["labels"], sort_keys=True),
            ANNOTATION_PREFIX + "drifted-features": ",".join(features),
        }
        # the same rule as `driftloop submit` (DRIFTLOOP_APPROVAL_*): a retrain into production waits for a person.
        # Always sent: the retrain references the training template, which declares both (a Workflow that names
        # the template carries only the arguments it overrides, so "declared here" would never see them)
        approval = {
            "approval": "required" if "production" in self.settings.approval_environments else "not-required",
            "approval-timeout": self.settings.approval_timeout,
        }
        values = {
            **approval,
            **self.extra_parameters(),
            "model-name": model,
            "trigger": trigger,
            "trigger-ref": fingerprint,
            "drifted-features": json.dumps(features, separators=(",", ":")),
        }
        parameters = workflow.setdefault("spec", {}).setdefault("arguments", {}).setdefault("parameters", [])
        for parameter in parameters:
            if parameter["name"] in values:
                parameter["value"] = values.pop(parameter["name"])
        parameters += [{"name": k, "value": v} for k, v in values.items()]
        return workflow

    def submit(self, incident: str, model: str, alert: dict[str, Any], features: list[str]) -> str:
        """Create the run; an existing run of that name (a crash before we recorded it) counts as submitted."""
        workflow = self.build(incident, model, alert, features)
        try:
            created = self.client.create_workflow(workflow)
        except ConflictError:
            return str(workflow["metadata"]["name"])
        return str(created["metadata"]["name"])


def _feature_names(names: Iterable[str]) -> list[str]:
    """Sorted, unique, valid feature names, cut to what the register step accepts (it records them as a tag)."""
    from workflows.steps.register import DRIFTED_FEATURES_MAX_CHARS, FEATURE_NAME

    kept: list[str] = []
    for name in sorted({n.strip() for n in names} - {""}):
        if not FEATURE_NAME.fullmatch(name):
            log.warning("ignoring drifted feature %r: not a feature name", name[:40])
            continue
        if len(json.dumps([*kept, name], separators=(",", ":"))) > DRIFTED_FEATURES_MAX_CHARS:
            log.warning("more drifted features than a model-version tag holds; keeping the first %d", len(kept))
            break
        kept.append(name)
    return kept


def drifted_features(alert: dict[str, Any], prometheus_url: str, model: str) -> list[str]:
    """The features that drifted: from the alert's ``drifted_features`` annotation (rendered by Prometheus when the
    rule fired), else what Prometheus sees now for ``model`` (best effort: [] when it cannot say)."""
    import httpx

    annotation = (alert.get("annotations") or {}).get(DRIFTED_FEATURES_ANNOTATION)
    if annotation is not None:
        return _feature_names(annotation.split(","))
    query = 'max by (feature) (driftloop_feature_drifted{{model="{}"}}) == 1'.format(model.replace('"', ""))
    try:
        answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=3).json()
        return _feature_names(str(item["metric"]["feature"]) for item in answer["data"]["result"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return []
