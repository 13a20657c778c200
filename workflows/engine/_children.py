"""What steps and DAG tasks share: ``when``, fan-out (withItems/withParam/withSequence), exit hooks, running
children in parallel under a limit, and resolving a steps/DAG template's declared outputs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar

from driftloop.errors import DriftloopError
from workflows.engine._calls import Call
from workflows.engine._hooks import step_hooks
from workflows.engine._io import UNRESOLVED_OUTPUT, BindError, expand_items, item_label, param_text
from workflows.engine._model import FAILED_PHASES
from workflows.engine._outputs import aggregate_scope, artifact_reference, result_scope, value_source
from workflows.engine._protocol import Executor
from workflows.engine.expressions import evaluate, evaluate_when
from workflows.engine.templating import substitute, substitute_obj

__all__ = ["ChildResult", "continues_on", "finish_composite", "item_scope", "run_child", "run_parallel"]

T = TypeVar("T")
log = logging.getLogger(__name__)
FAN_OUT_KEYS = ("withItems", "withParam", "withSequence")
CALL_KEYS = ("template", "templateRef", "inline")


@dataclass
class ChildResult:
    """A step/task after it ran: its node (the TaskGroup for a DAG fan-out) and its expanded children."""

    spec: dict[str, Any]
    node: dict[str, Any] | None
    children: list[dict[str, Any]]
    expanded: bool

    def scope(self, prefix: str) -> dict[str, Any]:
        if self.expanded:
            aggregated = aggregate_scope(prefix, self.children)
            if self.node is not None:
                aggregated.update({k: v for k, v in result_scope(prefix, self.node).items() if "outputs" not in k})
            return aggregated
        return result_scope(prefix, self.node or {})

    def nodes(self) -> list[dict[str, Any]]:
        return self.children if self.expanded else ([self.node] if self.node else [])


def continues_on(spec: dict[str, Any], phase: str) -> bool:
    flags = spec.get("continueOn") or {}
    return (phase == "Failed" and bool(flags.get("failed"))) or (phase == "Error" and bool(flags.get("error")))


MAX_CONCURRENT_CHILDREN = 64  # siblings run at once without a parallelism (a fan-out of 10,000 is 10,000 pods)


def run_parallel(
    jobs: Sequence[Callable[[], T]],
    limit: int | None,
    should_stop: Callable[[], bool] | None = None,
    collect: list[Any] | None = None,
) -> list[T]:
    """Run ``jobs`` on at most ``limit`` threads (default :data:`MAX_CONCURRENT_CHILDREN`), started in job
    order; results in job order. Once ``should_stop()`` is true no further job starts (as Argo creates no new
    node of a stopped workflow, or failFast stops a step group): those are left out of the result. ``collect``
    receives each result as it finishes, so ``should_stop`` can look at them."""
    if len(jobs) == 1 and not (should_stop and should_stop()):
        return [jobs[0]()]
    results: list[Any] = [None] * len(jobs)
    ran = [False] * len(jobs)
    width = min(len(jobs), limit or MAX_CONCURRENT_CHILDREN)
    if should_stop is not None and should_stop():
        return []
    next_index = iter(range(width, len(jobs)))
    take = threading.Lock()

    def worker(first: int) -> None:
        index: int | None = first  # the first `width` jobs start together, as Argo creates them in one pass
        while index is not None:
            results[index] = jobs[index]()
            ran[index] = True
            with take:
                if collect is not None:
                    collect.append(results[index])
                index = None if should_stop is not None and should_stop() else next(next_index, None)

    workers = [threading.Thread(target=worker, args=(i,), daemon=True, name=f"node-worker-{i}") for i in range(width)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return [result for result, done in zip(results, ran, strict=True) if done]


def item_scope(item: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {"item": item if isinstance(item, dict | list) else param_text(item)}

    def flatten(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                scope[f"{prefix}.{key}"] = inner if isinstance(inner, dict | list) else param_text(inner)
                flatten(f"{prefix}.{key}", inner)

    flatten("item", item)
    return scope


def run_child(
    ex: Executor, step: Call, scope: dict[str, Any], group_type: str | None, limit: int | None
) -> ChildResult:
    """Run one step/task (``step.spec`` is its raw spec): expand its items (each child its own node), check
    ``when``, run it, then its exit hooks. DAG fan-outs hang under a ``group_type`` node (TaskGroup)."""
    spec = step.spec
    try:
        fan_out = substitute_obj({k: spec[k] for k in FAN_OUT_KEYS if k in spec}, scope)
        _check_absent_optional(fan_out.get("withParam"))
        items = expand_items(fan_out) if fan_out else None
    except DriftloopError as exc:
        return ChildResult(spec, ex.error_node(step, exc.message), [], False)
    if items is None:
        return ChildResult(spec, _one(ex, step, scope), [], False)
    group = None
    if group_type is not None:
        group = step.create_node(ex.book, group_type, spec.get("template"), "Running")
    if not items:
        if group is not None:
            ex.book.finish(group, "Skipped", "Skipped, empty params")
            return ChildResult(spec, group, [], True)
        return ChildResult(spec, ex.skipped_node(step, "Skipped", "Skipped, empty params"), [], True)
    jobs = [
        partial(
            _one,
            ex,
            replace(
                step,
                node_name=f"{step.node_name}({i}:{item_label(item)})",
                display_name=f"{step.display_name}({i}:{item_label(item)})",
                parent_id=group["id"] if group is not None else step.parent_id,
            ),
            {**scope, **item_scope(item)},
        )
        for i, item in enumerate(items)
    ]
    children = run_parallel(jobs, limit, lambda: ex.shutdown_reason() is not None)
    if group is not None:
        failed = [c for c in children if c.get("phase") in FAILED_PHASES and not continues_on(spec, c["phase"])]
        phase = failed[0]["phase"] if failed else "Succeeded"
        message = f"child '{failed[0]['id']}' failed" if failed else None
        if len(children) < len(jobs) and not failed:  # stopped: the rest never started
            phase, message = "Failed", ex.shutdown_reason() or "stopped before every child started"
        ex.book.finish(group, phase, message)
    return ChildResult(spec, group, children, True)


def _check_absent_optional(text: Any) -> None:
    """A reference left to a skipped/omitted node's output (no default) is Argo's "absent optional"."""
    found = UNRESOLVED_OUTPUT.search(text) if isinstance(text, str) else None
    if found:
        raise BindError(
            f"unable to substitute {found.group(0)}: output is an absent optional (skipped/omitted node with no "
            "default)",
            hint="give the producer's output valueFrom.default, or guard the reference",
        )


def _one(ex: Executor, step: Call, scope: dict[str, Any]) -> dict[str, Any]:
    """One step/task instance; an unexpected engine failure becomes this node's Error, not a lost thread."""
    try:
        return _run_one(ex, step, scope)
    except Exception as exc:
        log.exception("engine error while running %s", step.node_name)
        node = ex.book.get(step.node_name) or step.create_node(ex.book, "Pod", step.spec.get("template"))
        return ex.book.finish(node, "Error", f"engine error: {exc!r} (see the engine log)")


def _run_one(ex: Executor, step: Call, scope: dict[str, Any]) -> dict[str, Any]:
    spec = step.spec
    # globalName outputs published since this steps/DAG template started (an earlier step, a loop iteration)
    scope = {**scope, **{k: v for k, v in ex.global_scope().items() if k.startswith("workflow.outputs.")}}
    call = replace(step, spec=substitute_obj({k: spec[k] for k in CALL_KEYS if k in spec}, scope))
    existing = ex.book.get(call.node_name)
    if existing is not None and existing.get("phase") in ("Skipped", "Omitted"):
        return existing
    try:
        if spec.get("when") not in (None, ""):
            condition = substitute(str(spec["when"]), scope)
            _check_absent_optional(condition)
            if not evaluate_when(condition):
                return ex.skipped_node(call, "Skipped", f"when '{condition}' evaluated false")
        call.arguments = ex.bind_arguments(spec.get("arguments") or {}, scope)
        for artifact in call.arguments.get("artifacts") or []:
            for value in artifact.values() if isinstance(artifact, dict) else ():
                _check_absent_optional(value)
    except DriftloopError as exc:
        return ex.error_node(call, exc.message)
    hooks = step_hooks(ex, step, scope)
    node = ex.execute(call)
    if hooks is not None:
        hooks.finish()
    hook_scope = {
        **scope,
        **result_scope("steps." + spec.get("name", ""), node),
        **result_scope("tasks." + spec.get("name", ""), node),
    }
    ex.run_hooks(spec, node, hook_scope, call.source, call.boundary_id)
    return node


def finish_composite(
    ex: Executor,
    node: dict[str, Any],
    template: dict[str, Any],
    scope: dict[str, Any],
    phase: str,
    message: str | None,
) -> dict[str, Any]:
    """Resolve a steps/DAG template's outputs from its final scope, then finish its node."""
    declared = template.get("outputs") or {}
    outputs: dict[str, Any] = {}
    try:
        parameters = []
        for parameter in declared.get("parameters") or []:
            source = value_source(parameter)
            value: Any = None
            if "parameter" in source:
                value = substitute(str(source["parameter"]), scope)
                if "{{" in value:
                    value = None
            elif "expression" in source:
                value = _evaluate_or_none(str(source["expression"]), scope)
            elif "value" in parameter:
                value = substitute(str(parameter["value"]), scope)
            if value is None:
                value = source.get("default")
            if value is None:
                if phase == "Succeeded":
                    raise BindError(
                        f"output parameter {parameter['name']!r} of {template.get('name')!r} has no value",
                        hint="check valueFrom.parameter/expression, or give it a default",
                    )
                continue
            entry = {"name": parameter["name"], "value": param_text(value)}
            if parameter.get("globalName"):
                entry["globalName"] = parameter["globalName"]
            parameters.append(entry)
        artifacts = []
        for artifact in declared.get("artifacts") or []:
            found = None
            if artifact.get("from"):
                found = artifact_reference(str(artifact["from"]), scope)
            elif artifact.get("fromExpression"):
                found = _evaluate_or_none(str(artifact["fromExpression"]), scope)
            if isinstance(found, dict):
                entry = {**found, "name": artifact["name"]}
                entry.pop("globalName", None)
                if artifact.get("globalName"):
                    entry["globalName"] = artifact["globalName"]
                artifacts.append(entry)
        if parameters:
            outputs["parameters"] = parameters
        if artifacts:
            outputs["artifacts"] = artifacts
        ex.publish_globals(outputs)
    except DriftloopError as exc:
        phase, message = "Error", exc.message
    return ex.book.finish(node, phase, message, **({"outputs": outputs} if outputs else {}))


def _evaluate_or_none(expression: str, scope: dict[str, Any]) -> Any:
    try:
        return evaluate(expression, scope)
    except DriftloopError:
        return None
