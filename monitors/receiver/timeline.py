"""The alerting hops of one drift incident, as timestamps from each server's own API (for ``make demo``).

Every time comes from the server that owns the hop — Prometheus's alert ``activeAt``, Alertmanager's ``startsAt``
and ``updatedAt``, the receiver's decision record, the Argo Server's workflow status, MLflow's version — so the
timeline is what happened, not what a poller noticed.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx

from driftloop.config import Settings
from monitors.receiver._auth import resolve_token

__all__ = ["alertmanager_alert", "decision_for", "parse_time", "prometheus_alert"]


def parse_time(text: str | None) -> float | None:
    if not text or text.startswith("0001-"):
        return None
    # Go prints nanoseconds; Python parses up to microseconds
    text = re.sub(r"\.(\d{1,6})\d*", r".\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


def _get(url: str, **params: str) -> Any:
    try:
        return httpx.get(url, params=params, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return None


def prometheus_alert(settings: Settings, alertname: str, model: str) -> dict[str, Any] | None:
    answer = _get(f"{settings.prometheus_url}/api/v1/alerts") or {}
    for alert in answer.get("data", {}).get("alerts", []):
        if alert["labels"].get("alertname") == alertname and alert["labels"].get("model") == model:
            return dict(alert)
    return None


def alertmanager_alert(settings: Settings, alertname: str, model: str) -> dict[str, Any] | None:
    alerts = _get(f"{settings.alertmanager_url}/api/v2/alerts", filter=f'alertname="{alertname}"') or []
    active = [a for a in alerts if a["labels"].get("model") == model and a["status"]["state"] == "active"]
    return dict(active[0]) if active else None


def decision_for(settings: Settings, fingerprint: str) -> dict[str, Any] | None:
    """The receiver's first decision on this fingerprint that is not a duplicate (else its latest)."""
    try:
        answer = httpx.get(f"{settings.trigger_url}/triggers", params={"limit": "5000"},
                           headers={"Authorization": f"Bearer {resolve_token(settings)}"}, timeout=5).json()  # fmt: skip
    except (httpx.HTTPError, ValueError):
        return None
    rows = [row for row in answer.get("decisions", []) if row["fingerprint"] == fingerprint]
    acting = [row for row in rows if row["decision"] != "duplicate"]
    return (acting or rows or [None])[-1]
