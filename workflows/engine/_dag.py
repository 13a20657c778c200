"""``dag`` templates: tasks start when their ``depends``/``dependencies`` allow, honouring ``failFast``,
``target``, ``continueOn`` and template ``parallelism``; the DAG fails on an unhandled task failure."""

from __future__ import annotations

import logging
import threading
from typing import Any

from driftloop.errors import DriftloopError
from workflows.engine._calls import Call, Source
from workflows.engine._children import ChildResult, continues_on, finish_composite, run_child
from workflows.engine._model import FAILED_PHASES
from workflows.engine._protocol import Executor
from workflows.engine.templating import substitute
from workflows.spec.depends import (
    DependsSyntaxError,
    TaskOutcome,
    dependencies_to_depends,
    depends_task_names,
    evaluate_depends,
)

__all__ = ["run_dag"]

log = logging.getLogger(__name__)


def _depends_of(task: dict[str, Any]) -> str:
    if task.get("depends"):
        return str(task["depends"])
    return dependencies_to_depends(list(task.get("dependencies") or [])) if task.get("dependencies") else ""


def _wanted(tasks: dict[str, dict[str, Any]], targets: list[str], exprs: dict[str, str]) -> set[str]:
    """``target``: only the named tasks and everything they depend on."""
    if not targets:
        return set(tasks)
    wanted: set[str] = set()
    pending = [t for t in targets if t in tasks]
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(d for d in depends_task_names(exprs[name]) if d in tasks) if exprs[name] else None
    return wanted


class _DagRun:
    def __init__(
        self, ex: Executor, node: dict[str, Any], template: dict[str, Any], source: Source, scope: dict[str, Any]
    ) -> None:
        self.ex, self.node, self.template, self.source = ex, node, template, source
        dag = template.get("dag") or {}
        self.tasks = {t["name"]: t for t in dag.get("tasks") or []}
        self.exprs = {name: _depends_of(task) for name, task in self.tasks.items()}
        targets = substitute(str(dag.get("target") or ""), scope).replace(",", " ").split()
        self.wanted = _wanted(self.tasks, targets, self.exprs)
        self.fail_fast = dag.get("failFast", True) not in (False, "false")
        self.limit = int(template["parallelism"]) if template.get("parallelism") else None
        self.scope = dict(scope)
        self.results: dict[str, ChildResult] = {}
        self.outcomes: dict[str, TaskOutcome] = {}
        self.started: set[str] = set()
        self.running = 0
        self.failed: list[str] = []
        self.cond = ex.book.changed

    def run(self) -> dict[str, Any]:
        self.ex.book.update(self.node, phase="Running")
        with self.cond:
            while True:
                progressed = self._schedule()
                if self.running == 0 and not progressed:
                    break
                if not progressed:
                    self.cond.wait(0.2)
        return self._finish()

    def _dependents(self, name: str) -> list[str]:
        return [d for d, expr in self.exprs.items() if expr and name in depends_task_names(expr)]

    def _unhandled(self, name: str, finished_only: bool) -> bool:
        """A failed task is handled once a task depending on it ran (``C.Failed`` logic), as Argo's DAG
        assessment treats it; while its dependents are undecided it is unhandled only if ``finished_only``."""
        dependents = [d for d in self._dependents(name) if d in self.wanted]
        if any(d in self.results and (self.results[d].node or {}).get("phase") != "Omitted" for d in dependents):
            return False
        if finished_only:
            return True
        return all(d in self.results for d in dependents)

    def _blocked_by_fail_fast(self, name: str) -> bool:
        """failFast: once a failure is certainly unhandled, no new task starts (except its own handlers)."""
        if not (self.fail_fast and self.failed):
            return False
        referenced = depends_task_names(self.exprs[name]) if self.exprs[name] else set()
        if referenced & set(self.failed):
            return False
        return any(self._unhandled(failed, finished_only=False) for failed in self.failed)

    def _schedule(self) -> bool:
        progressed = False
        for name in self.tasks:
            if name in self.started or name not in self.wanted:
                continue
            if self.ex.shutdown_reason() is not None or self._blocked_by_fail_fast(name):
                continue
            if self.limit is not None and self.running >= self.limit:
                break
            try:
                decision = evaluate_depends(self.exprs[name], self.outcomes) if self.exprs[name] else True
            except (DependsSyntaxError, DriftloopError) as exc:
                self.started.add(name)
                call = Call(self.tasks[name], {}, self._name(name), name, self.node["id"], self.node["id"], self.source)
                self._record(name, ChildResult(self.tasks[name], self.ex.error_node(call, str(exc)), [], False))
                progressed = True
                continue
            if decision is None:
                continue
            self.started.add(name)
            progressed = True
            if decision is False:
                call = Call(self.tasks[name], {}, self._name(name), name, self.node["id"], None, self.source)
                omitted = self.ex.skipped_node(call, "Omitted", "omitted: depends condition not met")
                self._link_from_dependencies(name, omitted)
                self._record(name, ChildResult(self.tasks[name], omitted, [], False))
                continue
            self.running += 1
            threading.Thread(
                target=self._run_task, args=(name, dict(self.scope)), daemon=True, name=f"task-{name}"
            ).start()
        return progressed

    def _name(self, task: str) -> str:
        return f"{self.node['name']}.{task}"

    def _run_task(self, name: str, scope: dict[str, Any]) -> None:
        task = self.tasks[name]
        parent = None if self.exprs[name] else self.node["id"]
        step = Call(task, {}, self._name(name), name, self.node["id"], parent, self.source)
        try:
            result = run_child(self.ex, step, scope, "TaskGroup", self.limit)
        except Exception as exc:  # an engine bug: the task errors, the DAG still finishes
            log.exception("engine error while running task %s", step.node_name)
            result = ChildResult(task, self.ex.error_node(step, f"engine error: {exc!r}"), [], False)
        with self.cond:
            self.running -= 1
            if result.node is not None:
                self._link_from_dependencies(name, result.node)
            self._record(name, result)
            self.cond.notify_all()

    def _link_from_dependencies(self, name: str, node: dict[str, Any]) -> None:
        referenced = depends_task_names(self.exprs[name]) if self.exprs[name] else set()
        for dependency in referenced:
            done = self.results.get(dependency)
            if done is not None and done.node is not None:
                self.ex.book.link(done.node["id"], node["id"])

    def _record(self, name: str, result: ChildResult) -> None:
        self.results[name] = result
        node = result.node or {}
        flags = self.tasks[name].get("continueOn") or {}
        self.outcomes[name] = TaskOutcome(
            phase="Daemoned" if node.get("daemoned") and node.get("phase") == "Running" else node.get("phase", "Error"),
            children_phases=tuple(c.get("phase", "") for c in result.children),
            continue_on_failed=bool(flags.get("failed")),
            continue_on_error=bool(flags.get("error")),
        )
        self.scope.update(result.scope(f"tasks.{name}"))
        if node.get("phase") in FAILED_PHASES and not continues_on(self.tasks[name], node["phase"]):
            self.failed.append(name)

    def _finish(self) -> dict[str, Any]:
        phase, message = "Succeeded", None
        for name in self.failed:
            if self._unhandled(name, finished_only=True):
                node = self.results[name].node or {}
                phase, message = node.get("phase", "Failed"), f"child '{node.get('id')}' failed"
                if str(self.template.get("failFast")).lower() == "true":  # operator.checkParallelism
                    phase, message = "Failed", "template has failed or errored children and failFast enabled"
                break
        self.ex.daemons.stop_within(self.node["id"])
        unstarted = [n for n in self.wanted if n not in self.started]
        if phase == "Succeeded" and unstarted and (self.failed or self.ex.shutdown_reason()):
            phase, message = "Failed", self.ex.shutdown_reason() or f"not run after a failure: {', '.join(unstarted)}"
        return finish_composite(self.ex, self.node, self.template, self.scope, phase, message)


def run_dag(
    ex: Executor, node: dict[str, Any], template: dict[str, Any], source: Source, scope: dict[str, Any]
) -> dict[str, Any]:
    return _DagRun(ex, node, template, source, scope).run()
