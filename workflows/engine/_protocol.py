"""What the template walkers need from the run's executor: the interface between ``_execute`` and the walkers.

The steps and DAG walkers (``_steps``, ``_dag``), the child runner they share (``_children``) and the hooks
(``_hooks``) are called by the executor (``_execute.Execution``) and call back into it: to run a child template,
to record a node that could not start, to read the run's scope. They see the executor only through
:class:`Executor`, so they import ``_calls`` and this module, never ``_execute``; the executor imports them and
dispatches each node kind through a table (``_execute.NODE_RUNNERS``). The import graph is one-directional
(tests/core/test_layers.py), as Hera's ``protocol.py`` gives its template classes one interface.
"""

from __future__ import annotations

from typing import Any, Protocol

from workflows.engine._calls import Call, Source
from workflows.engine._daemon import Daemons
from workflows.engine._model import StatusBook

__all__ = ["Executor"]


class Executor(Protocol):
    """One workflow run, as a walker sees it (``_execute.Execution`` is the one implementation)."""

    name: str  # the workflow's name (node ids derive from it)
    book: StatusBook  # the run's nodes; every node a walker creates or finishes goes through it
    daemons: Daemons  # daemoned pods, stopped when their steps/DAG boundary finishes
    source: Source  # the workflow's own templates (workflow-level hooks resolve against them)

    def shutdown_reason(self) -> str | None:
        """Why no new node may start (stop, terminate, deadline), or None."""
        ...

    def global_scope(self) -> dict[str, Any]:
        """The workflow-wide variables (``workflow.*``, published ``globalName`` outputs)."""
        ...

    def publish_globals(self, outputs: dict[str, Any]) -> None:
        """Make the ``globalName`` outputs of a finished template visible workflow-wide."""
        ...

    def execute(self, call: Call) -> dict[str, Any]:
        """Run one template invocation (any kind) to its end; returns its finished node."""
        ...

    def error_node(self, call: Call, message: str) -> dict[str, Any]:
        """A node that ended Error before it ran (its template or arguments were rejected)."""
        ...

    def skipped_node(self, call: Call, phase: str, message: str) -> dict[str, Any]:
        """A Skipped (``when`` false) or Omitted (``depends`` false) node."""
        ...

    def bind_arguments(self, arguments: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
        """A step's/task's arguments resolved in ``scope``."""
        ...

    def run_hooks(
        self, step: dict[str, Any], node: dict[str, Any], scope: dict[str, Any], source: Source, boundary_id: str | None
    ) -> dict[str, Any] | None:
        """A step's/task's exit hook, after its node finished."""
        ...
