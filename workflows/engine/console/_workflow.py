"""``/workflows/<namespace>/<name>``: one run — its graph, parameters, exit handler, actions and a node's panel.

``?node=<id>`` selects a node (every node in the graph is a link to that URL), whose panel shows its inputs,
outputs, artifacts (download links), exit code, message and logs. While the run is unfinished the page is live:
console.js re-fetches it every two seconds and swaps the graph, the summary and the panel, so the graph changes
phase and the logs follow without a reload and without any JSON API of the console's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driftloop.errors import EngineError, NotFoundError
from workflows.engine._logs import log_file
from workflows.engine.console._approval import approval_form, approval_gate
from workflows.engine.console._graph import graph_svg
from workflows.engine.console._html import (
    RUNNING_PHASES,
    duration_of,
    esc,
    field_list,
    href,
    json_text,
    layout,
    markdown_inline,
    phase_badge,
    segment,
    shown_time,
    table,
)
from workflows.engine.console._list import DESCRIPTION, LABEL_MODEL, TITLE, template_of

__all__ = ["LOG_LINES", "actions_for", "tail_lines", "workflow_page"]

LOG_LINES = 2000  # the panel shows the last lines; the whole log is at the API's /log
LOG_TAIL_BYTES = 512 * 1024
_ACTION_HINTS = {
    "retry": "Rerun the failed and errored steps",
    "resubmit": "Run it again as a new workflow",
    "stop": "Stop: no new steps, exit handlers run",
    "terminate": "Terminate: stop now, no exit handlers",
    "suspend": "Suspend: pause before the next step",
    "resume": "Resume a suspended run (approve a suspend gate)",
}


def actions_for(workflow: dict[str, Any]) -> list[str]:
    """The actions that make sense for a run in its current phase (the controller still checks each)."""
    status = workflow.get("status") or {}
    phase = status.get("phase") or ""
    if phase in RUNNING_PHASES:
        nodes = status.get("nodes") or {}
        waiting = any(n.get("type") == "Suspend" and n.get("phase") == "Running" for n in nodes.values())
        paused = bool((workflow.get("spec") or {}).get("suspend"))
        if approval_gate(workflow) is not None and not paused:
            return ["stop", "terminate"]  # plus the Approve / Reject form: a bare Resume would record no decision
        return ["stop", "terminate", "resume" if (paused or waiting) else "suspend"]
    return (["retry"] if phase in {"Failed", "Error"} else []) + ["resubmit"]


def _actions(workflow: dict[str, Any], base: str, csrf: str) -> str:
    forms = []
    for action in actions_for(workflow):
        forms.append(
            f'<form method="post" action="{esc(base)}/{action}"><input type="hidden" name="csrf" value="{esc(csrf)}">'
            f'<button type="submit" name="action" value="{action}" title="{esc(_ACTION_HINTS[action])}">'
            f"{action.capitalize()}</button></form>"
        )
    if approval_gate(workflow) is not None and not (workflow.get("spec") or {}).get("suspend"):
        forms.append(approval_form(base, csrf))
    return f'<div class="actions" role="group" aria-label="actions">{"".join(forms)}</div>'


def _parameters(params: list[dict[str, Any]] | None) -> list[list[str]]:
    rows = []
    for param in params or []:
        value = param.get("value", param.get("default", ""))
        rows.append([esc(param.get("name")), f"<code>{json_text(value)}</code>"])
    return rows


def _artifact_rows(artifacts: list[dict[str, Any]] | None, base: str, node_id: str) -> list[list[str]]:
    rows = []
    for artifact in artifacts or []:
        name = str(artifact.get("name", ""))
        key = (artifact.get("s3") or {}).get("key")
        if key:
            link = f'<a href="{esc(base)}/artifacts/{esc(segment(node_id))}/{esc(segment(name))}" download>download</a>'
        elif artifact.get("raw") is not None:
            link = f"<code>{json_text((artifact.get('raw') or {}).get('data', ''), 300)}</code>"
        else:
            link = '<span class="muted">not in the local repository</span>'
        rows.append([esc(name), esc(artifact.get("path", "")), link])
    return rows


def tail_lines(path: Path, lines: int = LOG_LINES, max_bytes: int = LOG_TAIL_BYTES) -> tuple[list[str], bool]:
    """The last ``lines`` lines of a log file, reading at most its last ``max_bytes`` (a 1 GB log costs what a
    small one does, every two seconds while it is followed); (lines, whether earlier ones were left out)."""
    if not path.exists():
        return [], False
    size = path.stat().st_size
    with open(path, "rb") as handle:
        handle.seek(max(0, size - max_bytes))
        text = handle.read().decode("utf-8", errors="replace")
    found = text.split("\n")
    if found and found[-1] == "":
        found.pop()
    cut = size > max_bytes
    if cut and found:
        found.pop(0)  # the first line read is probably a partial one
    return found[-lines:], cut or len(found) > lines


def _logs(workflow: dict[str, Any], home: Path, node: dict[str, Any]) -> str:
    if node.get("type") not in {"Pod", "Container"}:
        return '<p class="muted">only steps that run a container have logs</p>'
    lines, cut = tail_lines(log_file(home, str(workflow["metadata"]["name"]), str(node["id"])))
    note = (
        f'<p class="muted">the last {len(lines)} lines (the whole log: <code>driftloop runs logs</code>)</p>'
        if cut
        else ""
    )
    following = node.get("phase") in RUNNING_PHASES
    state = "following (updates while it runs)" if following else f"{len(lines)} line(s)"
    return (
        f'{note}<p class="muted">{esc(state)}</p>'
        f'<pre class="logs" tabindex="0" aria-label="logs of {esc(node.get("displayName"))}">{esc(chr(10).join(lines))}</pre>'
    )


def _node_panel(workflow: dict[str, Any], node: dict[str, Any], home: Path, base: str) -> str:
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    outputs, inputs = node.get("outputs") or {}, node.get("inputs") or {}
    exit_code = outputs.get("exitCode")
    facts = [
        ("Name", esc(node.get("name"))),
        ("Type", esc(node.get("type"))),
        ("Template", esc(node.get("templateName") or (node.get("templateRef") or {}).get("template") or "—")),
        ("Phase", phase_badge(node.get("phase"))),
        ("Started", shown_time(node.get("startedAt"))),
        ("Finished", shown_time(node.get("finishedAt"))),
        ("Duration", esc(duration_of(node.get("startedAt"), node.get("finishedAt")))),
        ("Exit code", esc(exit_code) if exit_code is not None else '<span class="muted">—</span>'),
        ("Message", esc(node.get("message")) or '<span class="muted">—</span>'),
    ]
    if node.get("type") == "Retry":
        attempts = [c for c in node.get("children") or [] if c in nodes]
        links = ", ".join(
            f'<a href="{esc(href(base, node=c))}">{esc(nodes[c].get("displayName"))}</a> ({esc(nodes[c].get("phase"))})'
            for c in attempts
        )
        facts.append(("Attempts", links or "—"))
    node_id = str(node["id"])
    return (
        f'<section id="node-panel" class="panel" data-live aria-labelledby="node-title">'
        f'<h2 id="node-title">Node {esc(node.get("displayName"))}</h2>{field_list(facts)}'
        f"<h3>Inputs</h3>{table(['Parameter', 'Value'], _parameters(inputs.get('parameters')))}"
        f"{table(['Artifact', 'Path', ''], _artifact_rows(inputs.get('artifacts'), base, node_id), empty='')}"
        f"<h3>Outputs</h3>{table(['Parameter', 'Value'], _parameters(outputs.get('parameters')))}"
        f"<h3>Artifacts</h3>{table(['Artifact', 'Path', 'Download'], _artifact_rows(outputs.get('artifacts'), base, node_id))}"
        f'<h3 id="logs">Logs</h3>{_logs(workflow, home, node)}</section>'
    )


def _exit_handler(workflow: dict[str, Any], base: str) -> str:
    handler = (workflow.get("spec") or {}).get("onExit")
    if not handler:
        return '<span class="muted">none</span>'
    name = workflow["metadata"]["name"]
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    node = next((n for n in nodes.values() if n.get("name") == f"{name}.onExit"), None)
    if node is None:
        return f"<code>{esc(handler)}</code> · not run yet"
    return f'<code>{esc(handler)}</code> · <a href="{esc(href(base, node=node["id"]))}">{phase_badge(node.get("phase"))}</a>'


def _summary(workflow: dict[str, Any], base: str) -> str:
    meta, status = workflow.get("metadata") or {}, workflow.get("status") or {}
    labels = meta.get("labels") or {}
    shown_labels = " ".join(
        f'<span class="label">{esc(k)}={esc(v)}</span>' for k, v in sorted(labels.items()) if "argoproj.io" not in k
    )
    model = labels.get(LABEL_MODEL)
    facts = [
        ("Phase", phase_badge(status.get("phase"))),
        ("Progress", esc(status.get("progress") or "—")),
        ("Started", shown_time(status.get("startedAt"))),
        ("Finished", shown_time(status.get("finishedAt"))),
        ("Duration", esc(duration_of(status.get("startedAt"), status.get("finishedAt")))),
        ("Message", esc(status.get("message")) or '<span class="muted">—</span>'),
        ("Template", esc(template_of(workflow)) or '<span class="muted">—</span>'),
        ("Exit handler", _exit_handler(workflow, base)),
        ("Labels", shown_labels or '<span class="muted">—</span>'),
    ]
    if model:
        facts.append(("Model", f'<a href="/models/{esc(segment(str(model)))}">{esc(model)}</a>'))
    return f'<section id="summary" data-live>{field_list(facts)}</section>'


def workflow_page(workflow: dict[str, Any], home: Path, query: dict[str, str], csrf: str) -> str:
    meta, status, spec = workflow.get("metadata") or {}, workflow.get("status") or {}, workflow.get("spec") or {}
    namespace, name = str(meta["namespace"]), str(meta["name"])
    base = f"/workflows/{segment(namespace)}/{segment(name)}"
    nodes = status.get("nodes") or {}
    selected = query.get("node") or None
    if selected is not None and (len(selected) > 253 or not selected.isprintable()):
        raise EngineError(f"node {selected[:60]!r} is not a node id", hint="click a node in the graph")
    if selected is not None and selected not in nodes:
        raise NotFoundError(f"workflow {name} has no node {selected[:80]!r}", hint=f"open {base} and pick a node")
    annotations = meta.get("annotations") or {}
    heading = f"<h1>{esc(name)} {phase_badge(status.get('phase'))}</h1>"
    if annotations.get(TITLE):
        heading += f'<p class="title">{markdown_inline(annotations[TITLE], limit=300)}</p>'
    if annotations.get(DESCRIPTION):
        heading += f'<p class="description">{markdown_inline(annotations[DESCRIPTION])}</p>'
    params = table(["Parameter", "Value"], _parameters((spec.get("arguments") or {}).get("parameters")))
    panel = (
        _node_panel(workflow, nodes[selected], home, base)
        if selected
        else '<section id="node-panel" class="panel" data-live><p class="muted">Select a node in the graph to see '
        "its inputs, outputs, artifacts and logs.</p></section>"
    )
    body = (
        f'<nav class="crumbs" aria-label="breadcrumb"><a href="/workflows">Workflows</a> / '
        f'<a href="/workflows/{esc(segment(namespace))}">{esc(namespace)}</a> / {esc(name)}</nav>'
        f'<div id="heading" data-live>{heading}</div>{_actions_section(workflow, base, csrf)}{_summary(workflow, base)}'
        f"<h2>Parameters</h2>{params}"
        f'<h2>Graph</h2><div id="graph" class="graph-box" data-live>{graph_svg(nodes, base, selected)}</div>{panel}'
    )
    live = (status.get("phase") or "") in RUNNING_PHASES
    return layout(
        name,
        body,
        csrf=csrf,
        live=live,
        active="/workflows",
        model=str((meta.get("labels") or {}).get(LABEL_MODEL) or ""),
    )


def _actions_section(workflow: dict[str, Any], base: str, csrf: str) -> str:
    return f'<div id="actions" data-live>{_actions(workflow, base, csrf)}</div>'
