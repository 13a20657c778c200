"""``steps`` templates: sequential groups of parallel steps, as Argo runs them (StepGroup nodes ``[i]``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from workflows.engine._children import ChildResult, continues_on, finish_composite, run_child, run_parallel
from workflows.engine._execute import Call, Execution, Source
from workflows.engine._model import FAILED_PHASES

__all__ = ["run_steps"]


def run_steps(
    ex: Execution, node: dict[str, Any], template: dict[str, Any], source: Source, scope: dict[str, Any]
) -> dict[str, Any]:
    ex.book.update(node, phase="Running")
    limit = int(template["parallelism"]) if template.get("parallelism") else None
    step_scope = dict(scope)
    previous = [node["id"]]
    phase, message = "Succeeded", None
    for index, group in enumerate(template.get("steps") or []):
        steps = [group] if isinstance(group, dict) else list(group or [])
        group_node = ex.book.create(
            f"{node['name']}[{index}]",
            display_name=f"[{index}]",
            node_type="StepGroup",
            template_name=template.get("name"),
            boundary_id=node["id"],
            parent_id=None,
            phase="Running",
        )
        for parent in previous:
            ex.book.link(parent, group_node["id"])
        reason = ex.shutdown_reason()
        if reason is not None:
            ex.book.finish(group_node, "Failed", reason)
            phase, message = "Failed", reason
            break
        jobs = [
            partial(
                run_child,
                ex,
                Call(
                    step, {}, f"{group_node['name']}.{step['name']}", step["name"], node["id"], group_node["id"], source
                ),
                step_scope,
                None,
                limit,
            )
            for step in steps
        ]
        results: list[ChildResult] = run_parallel(jobs, limit, lambda: ex.shutdown_reason() is not None)
        for result in results:
            step_scope.update(result.scope(f"steps.{result.spec['name']}"))
        failed = [
            (result.spec, child)
            for result in results
            for child in result.nodes()
            if child.get("phase") in FAILED_PHASES and not continues_on(result.spec, child["phase"])
        ]
        previous = [child["id"] for result in results for child in result.nodes()] or [group_node["id"]]
        reason = ex.shutdown_reason()
        if reason is not None and not failed:  # stopped while the group ran: its unstarted steps never will
            ex.book.finish(group_node, "Failed", reason)
            phase, message = "Failed", reason
            break
        if failed:
            failed_node = failed[0][1]
            ex.book.finish(group_node, failed_node["phase"], f"child '{failed_node['id']}' failed")
            phase, message = failed_node["phase"], f"child '{failed_node['id']}' failed"
            break
        ex.book.finish(group_node, "Succeeded")
    ex.daemons.stop_within(node["id"])
    return finish_composite(ex, node, template, step_scope, phase, message)
