"""Errors of the expression languages, kept apart so every private module can raise them."""

from __future__ import annotations

from driftloop.errors import EngineError

__all__ = ["ExpressionError", "ExpressionSyntaxError", "UndefinedName"]


class ExpressionError(EngineError):
    """An expression is malformed, uses something unsupported, or fails at evaluation; names the expression."""

    def __init__(self, expression: str, why: str, hint: str | None = None) -> None:
        super().__init__(
            f"cannot evaluate expression {expression!r}: {why}",
            hint or "check the expression against Argo's documentation (docs/variables.md); quote strings with '…'",
        )
        self.expression = expression
        self.why = why
        self.missing: tuple[str, ...] = ()  # references that were absent or nil when it failed


class UndefinedName(ExpressionError):
    """The expression refers to a variable the scope does not (yet) hold."""

    def __init__(self, expression: str, name: str) -> None:
        super().__init__(
            expression,
            f"unknown name {name!r}",
            hint=f"{name!r} is not defined at this point of the workflow; check its spelling and that the step "
            "or task it comes from has run",
        )
        self.name = name


class ExpressionSyntaxError(ExpressionError):
    """The expression cannot be parsed, or uses syntax this engine does not support."""
