"""DAG ``dependencies`` and enhanced ``depends`` logic, with Argo's semantics.

Argo expands every bare task name to ``(t.Succeeded || t.Skipped || t.Daemoned)`` (plus ``t.Errored`` /
``t.Failed`` when that task sets ``continueOn``), waits until every referenced task is fulfilled, then
evaluates the boolean expression: true runs the task, false marks it Omitted. We parse once into a small
tree so the linter can list references and the runner can evaluate many times cheaply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

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

TASK_RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed")

# Phases after which a dependency counts as fulfilled. A daemoned task is fulfilled while it runs.
_FULFILLED_PHASES = frozenset({"Succeeded", "Failed", "Error", "Errored", "Skipped", "Omitted", "Daemoned"})

_TOKEN = re.compile(r"\s*(?:(?P<op>&&|\|\||!|\(|\))|(?P<ref>[A-Za-z0-9_][-A-Za-z0-9_]*(?:\.[A-Za-z]\w*)?)|(?P<bad>\S))")


class DependsSyntaxError(ValueError):
    """A ``depends`` expression that cannot be parsed; the message names the expression."""


@dataclass(frozen=True)
class TaskOutcome:
    """What ``depends`` may know about one referenced task.

    ``phase`` is the task node's phase ("Daemoned" while a daemon task runs); ``children_phases`` the phases of a
    fan-out task's children (for ``.AnySucceeded`` / ``.AllFailed``). ``continue_on_failed`` / ``continue_on_error``
    mirror the *referenced* task's ``continueOn``, which widens what its bare name accepts, as in Argo.
    """

    phase: str
    children_phases: tuple[str, ...] = ()
    continue_on_failed: bool = False
    continue_on_error: bool = False

    @property
    def fulfilled(self) -> bool:
        return self.phase in _FULFILLED_PHASES

    def result(self, name: str | None) -> bool:
        """The truth of ``task.<name>``; ``None`` means the bare task name."""
        phase = self.phase
        if name is None:
            return (
                phase in ("Succeeded", "Skipped", "Daemoned")
                or (self.continue_on_failed and phase == "Failed")
                or (self.continue_on_error and phase in ("Error", "Errored"))
            )
        if name == "AnySucceeded":
            return any(child == "Succeeded" for child in self.children_phases)
        if name == "AllFailed":
            return bool(self.children_phases) and all(child == "Failed" for child in self.children_phases)
        if name == "Errored":
            return phase in ("Error", "Errored")
        return phase == name


@dataclass(frozen=True)
class Ref:
    """``task`` or ``task.Result``."""

    task: str
    result: str | None = None

    def evaluate(self, outcomes: Mapping[str, TaskOutcome]) -> bool:
        return outcomes[self.task].result(self.result)

    def __str__(self) -> str:
        return self.task if self.result is None else f"{self.task}.{self.result}"


@dataclass(frozen=True)
class Not:
    operand: DependsExpr

    def evaluate(self, outcomes: Mapping[str, TaskOutcome]) -> bool:
        return not self.operand.evaluate(outcomes)

    def __str__(self) -> str:
        return f"!{_wrap(self.operand)}"


@dataclass(frozen=True)
class BoolOp:
    """``left && right`` or ``left || right``."""

    op: str
    left: DependsExpr
    right: DependsExpr

    def evaluate(self, outcomes: Mapping[str, TaskOutcome]) -> bool:
        if self.op == "&&":
            return self.left.evaluate(outcomes) and self.right.evaluate(outcomes)
        return self.left.evaluate(outcomes) or self.right.evaluate(outcomes)

    def __str__(self) -> str:
        return f"{_wrap(self.left)} {self.op} {_wrap(self.right)}"


@dataclass(frozen=True)
class Always:
    """An empty ``depends``: nothing to wait for."""

    def evaluate(self, outcomes: Mapping[str, TaskOutcome]) -> bool:
        return True

    def __str__(self) -> str:
        return ""


DependsExpr = Ref | Not | BoolOp | Always


def _wrap(node: DependsExpr) -> str:
    return f"({node})" if isinstance(node, BoolOp) else str(node)


def _walk(node: DependsExpr) -> list[Ref]:
    if isinstance(node, Ref):
        return [node]
    if isinstance(node, Not):
        return _walk(node.operand)
    if isinstance(node, BoolOp):
        return _walk(node.left) + _walk(node.right)
    return []


class _Parser:
    """Recursive descent: ``||`` binds loosest, then ``&&``, then ``!``, then parentheses."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._tokenize(text)
        self.pos = 0

    def _error(self, why: str) -> DependsSyntaxError:
        return DependsSyntaxError(f"invalid depends expression {self.text!r}: {why}")

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup or ""
            value = match.group(kind)
            if kind == "bad":
                raise self._error(f"unexpected character {value!r} at offset {match.start(kind)}")
            tokens.append((kind, value))
        return tokens

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def parse(self) -> DependsExpr:
        if not self.tokens:
            return Always()
        node = self._logic()
        if self.pos != len(self.tokens):
            raise self._error(f"unexpected {self._peek()!r}")
        return node

    def _logic(self, op: str = "||") -> DependsExpr:
        """A chain of ``op``; the operands of ``||`` are ``&&`` chains."""
        operand = (lambda: self._logic("&&")) if op == "||" else self._not
        node = operand()
        while self._peek() == op:
            self.pos += 1
            node = BoolOp(op, node, operand())
        return node

    def _not(self) -> DependsExpr:
        if self._peek() == "!":
            self.pos += 1
            return Not(self._not())
        return self._atom()

    def _atom(self) -> DependsExpr:
        if self.pos >= len(self.tokens):
            raise self._error("unexpected end of expression")
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if value == "(":
            node = self._logic()
            if self._peek() != ")":
                raise self._error("missing ')'")
            self.pos += 1
            return node
        if kind != "ref":
            raise self._error(f"unexpected {value!r}")
        task, _, result = value.partition(".")
        if result and result not in TASK_RESULTS:
            raise self._error(f"unknown task result {result!r} of task {task!r}; use one of {', '.join(TASK_RESULTS)}")
        return Ref(task, result or None)


@lru_cache(maxsize=4096)
def parse_depends(expr: str) -> DependsExpr:
    """Parse a ``depends`` string; raise :class:`DependsSyntaxError` naming it when malformed."""
    try:
        return _Parser(expr).parse()
    except RecursionError:
        raise DependsSyntaxError(f"invalid depends expression {expr!r}: it nests too deeply") from None


def depends_task_names(expr: str) -> set[str]:
    """The task names an expression refers to (what the task must wait for)."""
    return {ref.task for ref in _walk(parse_depends(expr))}


def dependencies_to_depends(dependencies: list[str]) -> str:
    """The legacy ``dependencies: [a, b]`` list as the equivalent ``depends`` string ``a && b``."""
    return " && ".join(dependencies)


def evaluate_depends(expr: str, results: Mapping[str, TaskOutcome]) -> bool | None:
    """True: run the task; False: it is Omitted; None: some referenced task is not fulfilled yet.

    Like Argo, we wait for *every* referenced task to be fulfilled before deciding, even when the
    answer is already known (``a || b`` with ``a`` Succeeded still waits for ``b``).
    """
    tree = parse_depends(expr)
    for ref in _walk(tree):
        outcome = results.get(ref.task)
        if outcome is None or not outcome.fulfilled:
            return None
    return tree.evaluate(results)
