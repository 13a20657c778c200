"""The console's pure parts: the graph layout, the cron's next run, which actions a phase offers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from workflows.engine.console._catalog import next_run
from workflows.engine.console._graph import graph_svg, layers_of
from workflows.engine.console._workflow import actions_for, tail_lines


def _dag(tasks: int) -> dict[str, dict]:
    """A root with ``tasks`` pods in rows of 10, each the child of the node above it (a 10-wide, tasks/10-deep DAG)."""
    nodes: dict[str, dict] = {
        "root": {"id": "root", "type": "DAG", "phase": "Running", "children": [f"n{i}" for i in range(10)]}
    }
    for index in range(tasks):
        below = index + 10
        nodes[f"n{index}"] = {"id": f"n{index}", "displayName": f"task-{index}", "type": "Pod", "phase": "Succeeded",
                              "children": [f"n{below}"] if below < tasks else []}  # fmt: skip
    return nodes


def test_layers_follow_the_longest_path_and_keep_children_under_their_parents() -> None:
    nodes = _dag(200)
    layers = layers_of(nodes)
    assert layers[0] == ["root"] and len(layers) == 21 and all(len(layer) == 10 for layer in layers[1:])
    for depth, layer in enumerate(layers[1:]):
        assert layer == [f"n{depth * 10 + i}" for i in range(10)]  # the barycentre keeps each column straight
    # a node reachable by a short and a long path sits below the long one
    diamond = {"a": {"children": ["b", "c"]}, "b": {"children": ["c"]}, "c": {"children": []}}
    assert layers_of(diamond) == [["a"], ["b"], ["c"]]


def test_svg_has_a_link_per_node_escaped_labels_and_retries() -> None:
    nodes = _dag(20)
    nodes["n3"]["displayName"] = '<script>x</script>"'
    nodes["retry"] = {"id": "retry", "displayName": "flaky", "type": "Retry", "phase": "Succeeded",
                      "children": ["n5", "n6"]}  # fmt: skip
    svg = graph_svg(nodes, "/workflows/ns/wf", selected="n1")
    assert len(re.findall(r'<a href="/workflows/ns/wf\?node=', svg)) == len(nodes)
    assert "<script>" not in svg and "&lt;script&gt;x&lt;/script&gt;&quot;" in svg
    assert "retries 1" in svg and 'class="node phase-succeeded type-pod selected"' in svg


def test_next_run_uses_the_schedule_and_the_timezone() -> None:
    now = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)
    assert next_run({"schedule": "0 9 * * *"}, now) == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    paris = next_run({"schedule": "0 9 * * *", "timezone": "Europe/Paris"}, now)
    assert paris == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # 09:00 in Paris is 08:00 UTC in winter
    assert next_run({"schedules": ["0 12 * * *", "45 7 * * *"]}, now) == datetime(2026, 12, 2, 7, 45, tzinfo=UTC)
    assert next_run({"schedule": "*/5 * * * *", "suspend": True}, now) is None


def test_actions_fit_the_phase() -> None:
    assert actions_for({"status": {"phase": "Running"}}) == ["stop", "terminate", "suspend"]
    assert actions_for({"spec": {"suspend": True}, "status": {"phase": "Running"}})[-1] == "resume"
    assert actions_for({"status": {"phase": "Failed"}}) == ["retry", "resubmit"]
    assert actions_for({"status": {"phase": "Succeeded"}}) == ["resubmit"]


def test_log_tail_reads_only_the_end_of_a_big_log(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text("".join(f"line {i}\n" for i in range(300_000)))  # ~3.3 MB
    lines, cut = tail_lines(log, lines=5, max_bytes=64 * 1024)
    assert lines == [f"line {i}" for i in range(299_995, 300_000)] and cut
    log.write_text("a\nb\npartial")
    assert tail_lines(log) == (["a", "b", "partial"], False)
    assert tail_lines(tmp_path / "absent.log") == ([], False)
