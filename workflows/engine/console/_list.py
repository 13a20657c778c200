"""``/workflows``: every run, newest first, filtered by phase, label and template, a page at a time.

Read straight from the store without node maps (a 1,000-run list parses 1,000 small bodies, not 1,000 graphs);
phase and labels are filtered in SQL/the store's selector, the template in Python. The page is live (refreshes
itself) while any run it shows is unfinished.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from driftloop.errors import EngineError
from workflows.engine._selectors import parse_label_selector
from workflows.engine.console._html import (
    RUNNING_PHASES,
    duration_of,
    esc,
    href,
    layout,
    markdown_inline,
    phase_badge,
    segment,
    shown_time,
    table,
)
from workflows.engine.store import WORKFLOW, Store

__all__ = ["PAGE_SIZE", "PHASES", "list_page", "template_of"]

PAGE_SIZE = 50
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Error")
TITLE = "workflows.argoproj.io/title"
DESCRIPTION = "workflows.argoproj.io/description"
LABEL_MODEL = "driftloop.io/model"
LABEL_TRIGGER = "driftloop.io/trigger"
_TEMPLATE_LABELS = ("workflows.argoproj.io/workflow-template", "workflows.argoproj.io/cluster-workflow-template")


def template_of(workflow: dict[str, Any]) -> str:
    """The WorkflowTemplate a run came from (``workflowTemplateRef`` or the label Argo sets), else ''."""
    ref = (workflow.get("spec") or {}).get("workflowTemplateRef") or {}
    if ref.get("name"):
        return str(ref["name"])
    labels = (workflow.get("metadata") or {}).get("labels") or {}
    return next((str(labels[key]) for key in _TEMPLATE_LABELS if labels.get(key)), "")


def _page_number(text: str) -> int:
    if not text:
        return 1
    if not text.isdigit() or not 0 < int(text) <= 100_000:
        raise EngineError(f"page {text[:20]!r} is not a page number", hint="use ?page=1, 2, …")
    return int(text)


def _filters(query: dict[str, str]) -> tuple[str, str, str]:
    phase, label, template = query.get("phase", ""), query.get("label", "").strip(), query.get("template", "").strip()
    if phase and phase not in PHASES:
        raise EngineError(f"phase {phase[:40]!r} is not a workflow phase", hint="one of " + ", ".join(PHASES))
    if label:
        parse_label_selector(label)  # a bad selector is a 400 that names it, before the store sees it
    return phase, label, template


def _filter_form(namespace: str, phase: str, label: str, template: str) -> str:
    options = "".join(
        f'<option value="{esc(p)}"{" selected" if p == phase else ""}>{esc(p or "any phase")}</option>'
        for p in ("", *PHASES)
    )
    action = "/workflows" + (f"/{segment(namespace)}" if namespace else "")
    return (
        f'<form class="filters" method="get" action="{esc(action)}" role="search">'
        f'<label>Phase <select name="phase">{options}</select></label>'
        f'<label>Labels <input name="label" value="{esc(label)}" placeholder="driftloop.io/model=credit-risk"></label>'
        f'<label>Template <input name="template" value="{esc(template)}" placeholder="training"></label>'
        '<button type="submit">Filter</button></form>'
    )


def _row(workflow: dict[str, Any], now: datetime) -> list[str]:
    meta, status = workflow.get("metadata") or {}, workflow.get("status") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    title = annotations.get(TITLE)
    description = annotations.get(DESCRIPTION)
    cell = f'<a href="/workflows/{esc(segment(namespace))}/{esc(segment(name))}">{esc(name)}</a>'
    if title:
        cell += f'<div class="title">{markdown_inline(title, limit=300)}</div>'
    if description:
        cell += f'<div class="description">{markdown_inline(description, limit=600)}</div>'
    tags = []
    for key in (LABEL_MODEL, LABEL_TRIGGER):
        if labels.get(key):
            tags.append(f'<span class="label">{esc(key.split("/")[1])}={esc(labels[key])}</span>')
    template = template_of(workflow)
    return [
        cell,
        phase_badge(status.get("phase")),
        esc(status.get("progress") or "—"),
        shown_time(status.get("startedAt") or meta.get("creationTimestamp")),
        esc(duration_of(status.get("startedAt"), status.get("finishedAt"), now)),
        " ".join(tags) or '<span class="muted">—</span>',
        esc(template) if template else '<span class="muted">—</span>',
        esc(namespace),
    ]


def _pager(page: int, pages: int, base: str, query: dict[str, str]) -> str:
    if pages <= 1:
        return ""
    keep = {k: query.get(k) for k in ("phase", "label", "template")}
    parts = []
    if page > 1:
        parts.append(f'<a rel="prev" href="{esc(href(base, **keep, page=page - 1))}">← newer</a>')
    parts.append(f"<span>page {page} of {pages}</span>")
    if page < pages:
        parts.append(f'<a rel="next" href="{esc(href(base, **keep, page=page + 1))}">older →</a>')
    return f'<nav class="pager" aria-label="pages">{" ".join(parts)}</nav>'


def list_page(store: Store, namespace: str, query: dict[str, str], csrf: str) -> str:
    phase, label, template = _filters(query)
    page = _page_number(query.get("page", ""))
    items = store.list(WORKFLOW, namespace, label_selector=label or None, phases=(phase,) if phase else None,
                       nodes=False)  # fmt: skip
    if template:
        items = [w for w in items if template_of(w) == template]
    items.reverse()  # newest first
    pages = max(1, -(-len(items) // PAGE_SIZE))
    shown = items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    now = datetime.now(UTC)
    live = any((w.get("status") or {}).get("phase", "") in RUNNING_PHASES for w in items)  # on any page
    base = "/workflows" + (f"/{segment(namespace)}" if namespace else "")
    headers = ["Name", "Phase", "Progress", "Started", "Duration", "Labels", "Template", "Namespace"]
    rows = table(headers, [_row(w, now) for w in shown], empty="no workflows match", caption="")
    body = (
        f"<h1>Workflows{esc(' in ' + namespace) if namespace else ''}</h1>"
        f"{_filter_form(namespace, phase, label, template)}"
        f'<section id="workflow-list" data-live aria-live="polite"><p class="count">{len(items)} workflow(s)'
        f"{' · refreshing while runs are unfinished' if live else ''}</p>{rows}"
        f"{_pager(page, pages, base, query)}</section>"
    )
    return layout("Workflows", body, csrf=csrf, live=live, active="/workflows")
