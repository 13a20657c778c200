"""``steps`` templates: sequential groups of parallel steps, as Argo runs them (StepGroup nodes ``[i]``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from workflows.engine._calls import Call, Source
from workflows.engine._children import ChildResult, continues_on, finish_composite, run_child, run_parallel
from workflows.engine._model import FAILED_PHASES
from workflows.engine._protocol import Executor

__all__ = ["FAIL_FAST_MESSAGE", "run_steps"]

FAIL_FAST_MESSAGE = "template has failed or errored children and failFast enabled"


def _group_stops(ex: Executor, finished: list[ChildResult | None], fail_fast: bool) -> bool:
    """No further step of the group starts once the workflow is stopping, or (failFast) a started one failed."""
    return ex.shutdown_reason() is not None or (fail_fast and _any_unhandled(finished))


def _any_unhandled(finished: list[ChildResult | None]) -> bool:
    """failFast: has a finished step of the group failed without ``continueOn``?"""
    return any(
        child.get("phase") in FAILED_PHASES and not continues_on(result.spec, child["phase"])
        for result in finished
        if result is not None
        for child in result.nodes()
    )


def run_steps(
    ex: Executor, node: dict[str, Any], template: dict[str, Any], source: Source, scope: dict[str, Any]
) -> dict[str, Any]:
    ex.book.update(node, phase="Running")
    limit = int(template["parallelism"]) if template.get("parallelism") else None
    fail_fast = str(template.get("failFast")).lower() == "true"
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
        started: list[ChildResult | None] = []
        should_stop = partial(_group_stops, ex, started, fail_fast)
        results: list[ChildResult] = run_parallel(jobs, limit, should_stop, collect=started)
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
            # Argo's executeSteps: a failed *or errored* child makes the step group, and so the steps node, Failed;
            # a template with failFast says so (operator.checkParallelism marks the leaf group and the node)
            failed_node = failed[0][1]
            message = FAIL_FAST_MESSAGE if fail_fast else f"child '{failed_node['id']}' failed"
            ex.book.finish(group_node, "Failed", message)
            phase = "Failed"
            break
        ex.book.finish(group_node, "Succeeded")
    ex.daemons.stop_within(node["id"])
    return finish_composite(ex, node, template, step_scope, phase, message)
