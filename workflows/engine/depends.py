"""Moved to ``workflows.spec.depends`` (the Argo spec layer, below the engine and the compiler); kept for importers."""

from __future__ import annotations

from workflows.spec.depends import (
    TASK_RESULTS,
    DependsExpr,
    DependsSyntaxError,
    TaskOutcome,
    dependencies_to_depends,
    depends_task_names,
    evaluate_depends,
    parse_depends,
)

__all__ = [
    "TASK_RESULTS",
    "DependsExpr",
    "DependsSyntaxError",
    "TaskOutcome",
    "dependencies_to_depends",
    "depends_task_names",
    "evaluate_depends",
    "parse_depends",
]
