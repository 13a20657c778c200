"""A workflow's node tree drawn as SVG: layered top to bottom, every node a real link to its panel.

Argo records the graph in ``status.nodes``: each node lists its ``children`` (a DAG task's dependents, a steps
group's steps, a retry node's attempts). The layout is the classic layered one — a node's layer is its longest
path from a root, nodes in a layer are ordered by the mean position of their parents (one barycentre pass, which
untangles the usual fan-out/fan-in) — linear in nodes plus edges, so a 200-node DAG draws in milliseconds. The
exit handler (``<name>.onExit``) is a root of its own, drawn beside the main tree, as Argo's UI does.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from workflows.engine.console._html import PHASE_ICONS, duration_of, esc, href

__all__ = ["NODE_HEIGHT", "NODE_WIDTH", "graph_svg", "layers_of"]

NODE_WIDTH = 200
NODE_HEIGHT = 46
_GAP_X = 24
_GAP_Y = 40
_MARGIN = 12
_SMALL = {"StepGroup", "TaskGroup"}  # structural nodes: drawn as a small pill (Argo draws a dot)
_LABEL_CHARS = 26


def layers_of(nodes: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Node ids grouped by layer (longest path from a root), each layer ordered by the parents' positions."""
    children = {nid: [c for c in (node.get("children") or []) if c in nodes] for nid, node in nodes.items()}
    indegree = dict.fromkeys(nodes, 0)
    for kids in children.values():
        for kid in kids:
            indegree[kid] += 1
    order = sorted((nid for nid, d in indegree.items() if d == 0), key=lambda n: _start_key(nodes[n]))
    depth = dict.fromkeys(order, 0)
    queue = deque(order)
    remaining = dict(indegree)
    topo: list[str] = []
    while queue:
        nid = queue.popleft()
        topo.append(nid)
        for kid in children[nid]:
            depth[kid] = max(depth.get(kid, 0), depth[nid] + 1)
            remaining[kid] -= 1
            if remaining[kid] == 0:
                queue.append(kid)
    for nid in nodes:  # a cycle (never written by the engine): draw what is left on the last layer
        if nid not in depth:
            depth[nid] = max(depth.values(), default=-1) + 1
            topo.append(nid)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for nid in topo:
        layers[depth[nid]].append(nid)
    parents: dict[str, list[str]] = {nid: [] for nid in nodes}
    for nid, kids in children.items():
        for kid in kids:
            parents[kid].append(nid)
    position: dict[str, float] = {}
    for layer in layers:
        if position:
            layer.sort(key=lambda n: _mean([position[p] for p in parents[n] if p in position], len(position)))
        for index, nid in enumerate(layer):
            position[nid] = index
    return layers


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _start_key(node: dict[str, Any]) -> tuple[bool, str]:
    return (str(node.get("name", "")).endswith(".onExit"), str(node.get("startedAt") or ""))


def _label(node: dict[str, Any]) -> str:
    text = str(node.get("displayName") or node.get("name") or node.get("id") or "?")
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _detail(node: dict[str, Any], nodes: dict[str, dict[str, Any]]) -> str:
    phase = str(node.get("phase") or "Pending")
    parts = [phase, duration_of(node.get("startedAt"), node.get("finishedAt"))]
    if node.get("type") == "Retry":
        attempts = len([c for c in node.get("children") or [] if c in nodes])
        if attempts > 1:
            parts.append(f"retries {attempts - 1}")
    return " · ".join(parts)


def graph_svg(nodes: dict[str, dict[str, Any]], page: str, selected: str | None = None) -> str:
    """The SVG of ``nodes``; each node links to ``page?node=<id>`` (a URL one can paste), ``selected`` outlined."""
    if not nodes:
        return '<p class="muted">no nodes yet</p>'
    layers = layers_of(nodes)
    width = max(len(layer) for layer in layers) * (NODE_WIDTH + _GAP_X) - _GAP_X + 2 * _MARGIN
    height = len(layers) * (NODE_HEIGHT + _GAP_Y) - _GAP_Y + 2 * _MARGIN
    centre: dict[str, tuple[float, float]] = {}
    for row, layer in enumerate(layers):
        offset = (width - 2 * _MARGIN - (len(layer) * (NODE_WIDTH + _GAP_X) - _GAP_X)) / 2
        for column, nid in enumerate(layer):
            x = _MARGIN + offset + column * (NODE_WIDTH + _GAP_X) + NODE_WIDTH / 2
            centre[nid] = (x, _MARGIN + row * (NODE_HEIGHT + _GAP_Y) + NODE_HEIGHT / 2)
    edges = []
    for nid, node in nodes.items():
        x1, y1 = centre[nid]
        for kid in node.get("children") or []:
            if kid in centre:
                x2, y2 = centre[kid]
                top, bottom = y1 + NODE_HEIGHT / 2, y2 - NODE_HEIGHT / 2
                middle = (top + bottom) / 2
                edges.append(f'<path d="M{x1:.0f} {top:.0f} C{x1:.0f} {middle:.0f} {x2:.0f} {middle:.0f} '
                             f'{x2:.0f} {bottom:.0f}"/>')  # fmt: skip
    boxes = [_node_box(nid, nodes[nid], centre[nid], page, nid == selected, nodes) for layer in layers for nid in layer]
    return (
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="group" aria-label="workflow graph, {len(nodes)} nodes">'
        f'<g class="edges">{"".join(edges)}</g>{"".join(boxes)}</svg>'
    )


def _node_box(
    nid: str,
    node: dict[str, Any],
    centre: tuple[float, float],
    page: str,
    selected: bool,
    nodes: dict[str, dict[str, Any]],
) -> str:
    phase = str(node.get("phase") or "Pending")
    css = phase.lower() if phase in PHASE_ICONS else "unknown"
    kind = str(node.get("type") or "")
    small = kind in _SMALL
    w, h = (NODE_WIDTH * 0.6, NODE_HEIGHT * 0.6) if small else (NODE_WIDTH, NODE_HEIGHT)
    x, y = centre[0] - w / 2, centre[1] - h / 2
    icon = PHASE_ICONS.get(phase, "?")
    label, detail = _label(node), _detail(node, nodes)
    full = f"{node.get('displayName') or node.get('name')} ({kind}): {detail}"
    classes = f"node phase-{css} type-{esc(kind.lower())}" + (" selected" if selected else "")
    text = (
        f'<text x="{centre[0]:.0f}" y="{centre[1] + 4:.0f}" text-anchor="middle">{esc(label)}</text>'
        if small
        else f'<text x="{x + 10:.0f}" y="{y + 19:.0f}"><tspan class="icon">{icon}</tspan> {esc(label)}</text>'
        f'<text class="detail" x="{x + 10:.0f}" y="{y + 36:.0f}">{esc(detail)}</text>'
    )
    return (
        f'<a href="{esc(href(page, node=nid))}" class="{classes}" data-node="{esc(nid)}" data-phase="{esc(phase)}">'
        f"<title>{esc(full)}</title>"
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="{h / 2 if small else 6:.0f}"/>'
        f"{text}</a>"
    )
