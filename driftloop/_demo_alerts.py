"""Stages 4-6, 9 and 10 of `make demo`, the alerting half: baseline traffic raises no alert and starts no retrain; the
drift alert starts exactly one retraining workflow, whose new model version names the alert (each hop printed with its
time); schema-change traffic fires the schema alert, which pages and starts no retrain; concept drift (outcomes joined
to the served predictions) fires the live-quality alert, which starts exactly one retrain with trigger=quality.

Every time comes from the server that owns the hop (monitors/receiver/timeline.py). Argo's timestamps (the workflow's
``creationTimestamp``, ``startedAt``, ``finishedAt``) are RFC 3339 in whole seconds, so they may print up to 1 s
before the receiver's decision (milliseconds) that caused them.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx

from driftloop._demo_support import MODEL, SETTINGS, DemoStopped, driftloop, wait_for
from driftloop.config import get_settings
from monitors.receiver._auth import resolve_token
from monitors.receiver._submit import LABEL_MODEL, LABEL_TRIGGER
from monitors.receiver.timeline import alertmanager_alert, parse_time, prometheus_alert
from workflows.engine.console import console_url

__all__ = [
    "ALERT",
    "QUALITY_ALERT",
    "alert_retrains",
    "drift_alert_retrains",
    "quiet_after_baseline",
    "retrain_workflows",
    "schema_change_pages_no_retrain",
]

ALERT = "DriftloopFeatureDrift"
QUALITY_ALERT = "DriftloopLiveQualityDropped"


def retrain_workflows(since: float, trigger: str = "drift") -> list[dict[str, Any]]:
    """``trigger``-started workflows of our model created at or after ``since`` (Argo's whole-second timestamps)."""
    from workflows.client import ArgoClient

    client = ArgoClient(get_settings(), autostart=False)  # now: the engine wrote its token after import
    listed = client.list_workflows(label_selector=f"{LABEL_TRIGGER}={trigger},{LABEL_MODEL}={MODEL}")
    return [w for w in listed if (parse_time(w["metadata"].get("creationTimestamp")) or 0) >= int(since)]


def decisions(since: float, fingerprint: str | None = None) -> list[dict[str, Any]]:
    """The receiver's decisions recorded at or after ``since`` (for ``fingerprint``), oldest first."""
    try:
        answer = httpx.get(f"{SETTINGS.trigger_url}/triggers", params={"limit": "5000"},
                           headers={"Authorization": f"Bearer {resolve_token(SETTINGS)}"}, timeout=5).json()  # fmt: skip
    except (httpx.HTTPError, ValueError):
        return []
    rows = [row for row in answer.get("decisions", []) if (parse_time(row["time"]) or 0) >= since]
    rows = [row for row in rows if fingerprint is None or row["fingerprint"] == fingerprint]
    return sorted(rows, key=lambda row: row["time"])


def quiet_after_baseline(since: float) -> None:
    """Baseline traffic: no drift alert in Alertmanager (a previous run's resolves within seconds), no retrain."""
    wait_for(f"no active {ALERT} alert after baseline traffic",
             lambda: True if alertmanager_alert(SETTINGS, ALERT, MODEL) is None else None, 60)  # fmt: skip
    started = retrain_workflows(since)
    if started:
        raise DemoStopped(f"baseline traffic started a retrain: {started[0]['metadata']['name']}")
    print(f"   no {ALERT} alert in Alertmanager, no retraining workflow since the baseline burst")


def drift_alert_retrains(shifted_from: float) -> None:
    """Stage 6: the drift incident, hop by hop, relative to the first drifted request."""
    alert_retrains(shifted_from, ALERT, "drift", "first drifted request sent")


def alert_retrains(shifted_from: float, name: str, trigger: str, first_hop: str) -> None:
    """Follow the incident of alert ``name`` through each hop and print when each one happened, relative to
    ``shifted_from``: exactly one retrain with ``trigger``, whose model version names the alert."""
    from mlflow.tracking import MlflowClient

    from workflows.client import ArgoClient

    print(f"   waiting for Alertmanager ({SETTINGS.alertmanager_url}) to hold the {name} alert…", flush=True)
    alert = wait_for(f"the {name} alert in Alertmanager", lambda: alertmanager_alert(SETTINGS, name, MODEL), 180)
    fingerprint = alert["fingerprint"]

    def acting() -> dict[str, Any] | None:
        rows = [row for row in decisions(shifted_from, fingerprint) if row["decision"] != "duplicate"]
        return rows[0] if rows else None

    decision = wait_for("the receiver's decision", acting, 60)
    print(f"$ driftloop trigger history   →  {decision['decision']}: {decision['reason']}")
    timeline: list[tuple[str, float | None]] = [(first_hop, shifted_from)]
    rule = prometheus_alert(SETTINGS, name, MODEL) or {}
    timeline.append(("Prometheus: rule true (pending)", parse_time(rule.get("activeAt"))))
    timeline.append(("Alertmanager: alert firing (startsAt)", parse_time(alert.get("startsAt"))))
    timeline.append(("receiver: decision recorded", parse_time(decision["time"])))
    if decision["decision"] == "submit":
        client = ArgoClient(get_settings(), autostart=False)  # now: the engine wrote its token after import
        workflow = decision["workflow"]
        print(
            f"   retraining workflow {workflow} (trigger={trigger}, trigger-ref={fingerprint}); waiting for it…",
            flush=True,
        )
        final = client.wait(workflow, timeout=1800, poll_seconds=2)
        status = final.get("status") or {}
        timeline.append(
            ("workflow: created (Argo, whole seconds)", parse_time(final["metadata"].get("creationTimestamp")))
        )
        timeline.append(("workflow: started", parse_time(status.get("startedAt"))))
        timeline.append((f"workflow: {status.get('phase')}", parse_time(status.get("finishedAt"))))
        versions = MlflowClient(SETTINGS.mlflow_uri).search_model_versions(f"name='{MODEL}'")
        mine = [
            v for v in versions if v.tags.get("trigger_ref") == fingerprint and v.tags.get("workflow_name") == workflow
        ]
        if not mine:
            raise DemoStopped(f"no model version has trigger_ref={fingerprint}; see `driftloop runs get {workflow}`")
        version = mine[0]
        if version.tags.get("trigger") != trigger:
            raise DemoStopped(f"models:/{MODEL}/{version.version} has trigger={version.tags.get('trigger')}, "
                              f"expected {trigger}")  # fmt: skip
        timeline.append((f"MLflow: version {version.version} registered", version.creation_timestamp / 1000))
        print(f"   models:/{MODEL}/{version.version}: trigger={version.tags.get('trigger')} "
              f"trigger_ref={version.tags.get('trigger_ref')} (the alert's fingerprint in Alertmanager) "
              f"drifted_features={version.tags.get('drifted_features', '[]')}")  # fmt: skip
        print(f"   console: {console_url(SETTINGS.argo_server, 'workflows', SETTINGS.namespace, workflow)} (the run), "
              f"{console_url(SETTINGS.argo_server, 'models', MODEL)} (the model)")  # fmt: skip
    else:
        print(f"   no new retrain this time ({decision['decision']}): {decision['reason']}")
    exactly_once(shifted_from, fingerprint, expected=1 if decision["decision"] == "submit" else 0, trigger=trigger)
    print(f"   timeline (seconds after the {first_hop.removesuffix(' sent')}):")
    for label, moment in timeline:
        print(f"     {'-' if moment is None else f'{moment - shifted_from:+7.1f}'}  {label}")


def exactly_once(since: float, fingerprint: str, expected: int, trigger: str = "drift") -> None:
    """However often Alertmanager re-sent the incident, the receiver submitted ``expected`` workflows for it."""
    started = retrain_workflows(since, trigger)
    kinds = Counter(row["decision"] for row in decisions(since))
    notified = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    print(f"   {sum(kinds.values())} decisions since then ({notified}); "
          f"{trigger}-triggered workflows: {len(started)} (expected {expected})")  # fmt: skip
    if len(started) != expected:
        names = ", ".join(w["metadata"]["name"] for w in started)
        raise DemoStopped(
            f"expected {expected} retraining workflow(s) for {fingerprint}, found {len(started)}: {names}"
        )


SCHEMA_ALERT = "DriftloopPayloadSchemaMismatch"


def schema_change_pages_no_retrain(traffic: list[str]) -> None:
    """Renamed columns in served payloads: the schema alert pages a human; the receiver records it and never retrains."""
    since = time.time()
    driftloop("traffic", "--scenario", "schema-change", *traffic)
    print(f"   waiting for Alertmanager to hold the {SCHEMA_ALERT} alert…", flush=True)
    alert = wait_for(f"the {SCHEMA_ALERT} alert", lambda: alertmanager_alert(SETTINGS, SCHEMA_ALERT, MODEL), 120)
    fingerprint = alert["fingerprint"]
    rows = wait_for("the receiver's record of it", lambda: decisions(since, fingerprint) or None, 60)
    kinds = sorted({row["decision"] for row in rows})
    print(f"   {SCHEMA_ALERT} fired at {alert['startsAt']} (fingerprint {fingerprint}, severity "
          f"{alert['labels'].get('severity')}); the receiver: {', '.join(kinds)} — {rows[0]['reason']}")  # fmt: skip
    if kinds != ["ignored"]:
        raise DemoStopped(f"the receiver acted on {SCHEMA_ALERT}: {kinds} (it must only record it)")
    started = retrain_workflows(since)
    if started:
        raise DemoStopped(f"schema-change traffic started a retrain: {started[0]['metadata']['name']}")
    print("   no retraining workflow: retraining on a renamed column is the wrong fix")
