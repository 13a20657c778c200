"""DAG task graph checks: unknown dependencies, malformed ``depends``, cycles, and who precedes whom.

The ``depends`` grammar lives in the Argo spec layer (``workflows.spec.depends``), which the engine runs with too,
so what lints clean is exactly what the engine can run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workflows.spec.depends import DependsSyntaxError, depends_task_names

__all__ = ["TaskGraph", "build_task_graph"]

Report = Callable[[str, str], None]  # (path, message)


@dataclass
class TaskGraph:
    """Edges `task -> tasks it waits for`, for the tasks of one DAG template."""

    parents: dict[str, set[str]] = field(default_factory=dict)

    def ancestors(self, task: str) -> set[str]:
        """Every task that finishes before `task` starts (transitively): the ones it may read outputs of."""
        seen: set[str] = set()
        stack = list(self.parents.get(task, ()))
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.parents.get(current, ()))
        return seen

    def find_cycle(self) -> list[str] | None:
        """One dependency cycle as `[a, b, ..., a]`, or None. Iterative, so deep DAGs cannot overflow."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for root in sorted(self.parents):
            if state.get(root):
                continue
            path: list[str] = [root]
            iterators = [iter(sorted(self.parents[root]))]
            state[root] = 1
            while iterators:
                nxt = next(iterators[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    iterators.pop()
                elif state.get(nxt) == 1:
                    return [*path[path.index(nxt) :], nxt]
                elif not state.get(nxt) and nxt in self.parents:
                    state[nxt] = 1
                    path.append(nxt)
                    iterators.append(iter(sorted(self.parents[nxt])))
        return None


def _task_parents(task: dict[str, Any], where: str, known: set[str], report: Report) -> set[str]:
    names: set[str] = set()
    depends, dependencies = task.get("depends"), task.get("dependencies")
    if depends is not None and dependencies is not None:
        report(where, "sets both 'depends' and 'dependencies'; Argo accepts only one of them (prefer 'depends')")
    if isinstance(dependencies, list):
        for name in dependencies:
            if str(name) not in known:
                report(f"{where}.dependencies", f"depends on unknown task '{name}'")
            names.add(str(name))
    if isinstance(depends, str):
        try:
            referenced = depends_task_names(depends)
        except DependsSyntaxError as exc:
            report(f"{where}.depends", str(exc))
            referenced = set()
        for name in sorted(referenced - known):
            report(f"{where}.depends", f"depends on unknown task '{name}' in {depends!r}")
        names |= referenced
    return names & known


def build_task_graph(tasks: list[tuple[str, dict[str, Any]]], prefix: str, report: Report) -> TaskGraph:
    """Check the dependencies of the named tasks and return their graph (unknown names dropped)."""
    known = {name for name, _ in tasks}
    graph = TaskGraph()
    for name, task in tasks:
        graph.parents[name] = _task_parents(task, f"{prefix}[{name}]", known, report)
    cycle = graph.find_cycle()
    if cycle:
        report(f"{prefix}[{cycle[0]}]", f"dependency cycle (each task waits for the next): {' -> '.join(cycle)}")
    return graph
