"""Lifecycle hooks other than ``exit`` (Argo's "Lifecycle-Hook"): ``hooks.<name>.expression`` on the workflow or
on a step/task runs the hook's template once, the first time the expression is true.

Expressions are checked on every node change (a :class:`StatusBook` watcher, under its lock), so a short-lived
phase such as ``Running`` is never missed and nothing polls; each fired hook runs in its own thread. The owner
(the workflow, or the step/task) waits for its fired hooks before it counts as done, as Argo does. A failed hook
node is shown Failed but does not change the owner's phase (Argo assesses the workflow from its entrypoint node).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from driftloop.errors import DriftloopError
from workflows.engine._calls import Call, Source
from workflows.engine._model import COMPLETED, node_id_for
from workflows.engine._outputs import result_scope
from workflows.engine._protocol import Executor
from workflows.engine.expressions import evaluate
from workflows.engine.templating import substitute

__all__ = ["HookSet", "step_hooks", "workflow_hooks"]

log = logging.getLogger(__name__)
EXIT_HOOK = "exit"
HOOK_KEYS = ("template", "templateRef", "inline")


@dataclass
class _Hook:
    name: str
    spec: dict[str, Any]
    node_name: str
    display_name: str


def _expression_hooks(hooks: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in (hooks or {}).items() if name != EXIT_HOOK and isinstance(spec, dict)}


class HookSet:
    """The expression hooks of one owner (the workflow, or one step/task), armed until they fire or it is done."""

    def __init__(
        self,
        ex: Executor,
        hooks: dict[str, dict[str, Any]],
        owner: tuple[str, str],
        scope: Callable[[], dict[str, Any]],
        boundary_id: str | None,
        source: Source,
    ) -> None:
        owner_name, owner_display = owner
        self.ex = ex
        self.scope = scope
        self.parent_id = node_id_for(ex.name, owner_name)
        self.boundary_id = boundary_id
        self.source = source
        self.pending = [
            _Hook(name, spec, f"{owner_name}.hooks.{name}", f"{owner_display}.hooks.{name}")
            for name, spec in hooks.items()
        ]
        self.threads: list[threading.Thread] = []
        with ex.book.lock:
            for hook in list(self.pending):
                existing = ex.book.get(hook.node_name)
                if existing is not None:  # fired before an engine restart: once only (re-run if interrupted)
                    self.pending.remove(hook)
                    if existing.get("phase") not in COMPLETED:
                        self._fire(hook, self.scope())
            ex.book.watch(self.check)
            self.check()

    def check(self) -> None:
        """Fire every pending hook whose expression is now true (called under the book's lock)."""
        if not self.pending or self.ex.shutdown_reason() is not None:
            return
        scope = self.scope()
        for hook in list(self.pending):
            if self._is_true(hook, scope):
                self.pending.remove(hook)
                self._fire(hook, scope)

    def finish(self) -> None:
        """The owner is done: a last check (its final phase), then wait for the hooks that fired."""
        with self.ex.book.lock:
            self.check()
            self.ex.book.unwatch(self.check)
            self.pending.clear()
        for thread in self.threads:
            thread.join()

    def _is_true(self, hook: _Hook, scope: dict[str, Any]) -> bool:
        expression = str(hook.spec.get("expression") or "")
        if not expression:
            return False
        try:
            return evaluate(substitute(expression, scope), scope) is True
        except DriftloopError:  # a step not started yet has no status: not true *yet*
            return False

    def _fire(self, hook: _Hook, scope: dict[str, Any]) -> None:
        thread = threading.Thread(target=self._run, args=(hook, scope), daemon=True, name=f"hook-{hook.name}")
        self.threads.append(thread)
        thread.start()

    def _run(self, hook: _Hook, scope: dict[str, Any]) -> None:
        call = Call(
            {k: hook.spec[k] for k in HOOK_KEYS if k in hook.spec},
            {},
            hook.node_name,
            hook.display_name,
            self.boundary_id,
            self.parent_id,
            self.source,
        )
        try:
            call.arguments = self.ex.bind_arguments(hook.spec.get("arguments") or {}, scope)
            node = self.ex.execute(call)
        except DriftloopError as exc:
            node = self.ex.error_node(call, exc.message)
        except Exception as exc:  # an engine bug: the hook errors, its owner still finishes
            log.exception("engine error while running hook %s", hook.node_name)
            node = self.ex.error_node(call, f"engine error: {exc!r} (see the engine log)")
        self.ex.book.link(self.parent_id, node["id"])
        self.ex.book.publish()


def workflow_hooks(ex: Executor, spec: dict[str, Any]) -> HookSet | None:
    """``spec.hooks`` (not ``exit``): expressions over ``workflow.*`` and every node as ``steps.X``/``tasks.X``."""
    hooks = _expression_hooks(spec.get("hooks"))
    if not hooks:
        return None

    def scope() -> dict[str, Any]:
        variables = ex.global_scope()
        variables.setdefault("workflow.status", "Running")
        for node in ex.book.all_nodes():
            display = node.get("displayName")
            if display and node.get("type") not in ("StepGroup", "TaskGroup"):
                variables.update(result_scope(f"steps.{display}", node))
                variables.update(result_scope(f"tasks.{display}", node))
        return variables

    return HookSet(ex, hooks, (ex.name, ex.name), scope, None, ex.source)


def step_hooks(ex: Executor, step: Call, base_scope: dict[str, Any]) -> HookSet | None:
    """A step's/task's ``hooks`` (not ``exit``): expressions over its own live node (``steps.X``/``tasks.X``)."""
    hooks = _expression_hooks(step.spec.get("hooks"))
    if not hooks:
        return None
    name = step.spec.get("name", "")

    def scope() -> dict[str, Any]:
        node = ex.book.get(step.node_name) or {}
        return {**base_scope, **result_scope(f"steps.{name}", node), **result_scope(f"tasks.{name}", node)}

    return HookSet(ex, hooks, (step.node_name, step.display_name), scope, step.boundary_id, step.source)
