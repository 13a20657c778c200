"""``/workflow-templates`` and ``/cron-workflows``: what can run, read-only.

The next scheduled time of a cron workflow comes from the engine's own scheduler rules (``_cron``: its
schedules, its timezone, croniter), so the console shows exactly when the engine will fire it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from driftloop.errors import DriftloopError
from workflows.engine._cron import _zone as zone_of
from workflows.engine._cron import schedules_of
from workflows.engine.console._html import esc, layout, markdown_inline, segment, shown_time, table
from workflows.engine.console._list import DESCRIPTION, TITLE
from workflows.engine.store import CLUSTER_WORKFLOW_TEMPLATE, CRON_WORKFLOW, WORKFLOW_TEMPLATE, Store
from workflows.spec.submit import CRON_LABEL

__all__ = ["crons_page", "next_run", "templates_page"]


def _described(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    text = esc(meta.get("name"))
    if annotations.get(TITLE):
        text += f'<div class="title">{markdown_inline(annotations[TITLE], limit=300)}</div>'
    if annotations.get(DESCRIPTION):
        text += f'<div class="description">{markdown_inline(annotations[DESCRIPTION], limit=600)}</div>'
    return text


def _entrypoint_and_params(spec: dict[str, Any]) -> tuple[str, str]:
    params = (spec.get("arguments") or {}).get("parameters") or []
    shown = ", ".join(f"{p.get('name')}={p.get('value', p.get('default', ''))}" for p in params[:12])
    return esc(spec.get("entrypoint") or "—"), esc(shown + (" …" if len(params) > 12 else "")) or "—"


def _runs_link(label_key: str, name: str) -> str:
    query = f"{label_key}={name}"
    return f'<a href="/workflows?label={esc(segment(query))}">runs</a>'


def templates_page(store: Store, namespace: str, csrf: str) -> str:
    rows = []
    for kind in (WORKFLOW_TEMPLATE, CLUSTER_WORKFLOW_TEMPLATE):
        for template in store.list(kind, namespace if kind == WORKFLOW_TEMPLATE else None):
            meta, spec = template.get("metadata") or {}, template.get("spec") or {}
            entry, params = _entrypoint_and_params(spec)
            label = "workflows.argoproj.io/" + ("workflow-template" if kind == WORKFLOW_TEMPLATE else
                                                "cluster-workflow-template")  # fmt: skip
            rows.append([
                _described(template), esc(kind), esc(meta.get("namespace") or "(cluster)"), entry, params,
                esc(len(spec.get("templates") or [])), shown_time(meta.get("creationTimestamp")),
                _runs_link(label, str(meta.get("name"))),
            ])  # fmt: skip
    headers = ["Name", "Kind", "Namespace", "Entrypoint", "Parameters", "Templates", "Created", ""]
    body = f"<h1>Workflow templates</h1>{table(headers, rows, empty='no workflow templates')}"
    return layout("Workflow templates", body, csrf=csrf, active="/workflow-templates")


def next_run(spec: dict[str, Any], now: datetime) -> datetime | None:
    """The earliest scheduled time after ``now`` across the cron's schedules (None when suspended or invalid)."""
    if spec.get("suspend"):
        return None
    zone = zone_of(spec)
    best: datetime | None = None
    for expression in schedules_of(spec):
        if not croniter.is_valid(expression):
            return None
        upcoming = croniter(expression, now.astimezone(zone)).get_next(datetime).astimezone(UTC)
        best = upcoming if best is None or upcoming < best else best
    return best


def crons_page(store: Store, namespace: str, csrf: str) -> str:
    now = datetime.now(UTC)
    rows = []
    for cron in store.list(CRON_WORKFLOW, namespace):
        meta, spec, status = cron.get("metadata") or {}, cron.get("spec") or {}, cron.get("status") or {}
        try:
            upcoming = next_run(spec, now)
            next_cell = (
                shown_time(upcoming.strftime("%Y-%m-%dT%H:%M:%SZ")) if upcoming else '<span class="muted">—</span>'
            )
        except DriftloopError as exc:
            next_cell = f'<span class="error">{esc(exc.message)}</span>'
        state = "❚❚ suspended" if spec.get("suspend") else "▶ active"
        rows.append([
            _described(cron), esc(meta.get("namespace")), f"<code>{esc('; '.join(schedules_of(spec)))}</code>",
            esc(spec.get("timezone") or "UTC"), esc(state), next_cell, shown_time(status.get("lastScheduledTime")),
            esc(spec.get("concurrencyPolicy") or "Allow"), _runs_link(CRON_LABEL,
                                                                     str(meta.get("name"))),
        ])  # fmt: skip
    headers = ["Name", "Namespace", "Schedule", "Timezone", "State", "Next run", "Last run", "Concurrency", ""]
    body = f"<h1>Cron workflows</h1>{table(headers, rows, empty='no cron workflows')}"
    return layout("Cron workflows", body, csrf=csrf, active="/cron-workflows")
