"""The one exceptions module: every error a user can see is a DriftloopError.

Each error carries a *hint* that says what to do next, because an operator reading it at 2 AM
should not have to open the source to find out.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConflictError",
    "DataContractError",
    "DriftloopError",
    "EngineError",
    "LintIssue",
    "MissingDependencyError",
    "NotFoundError",
    "SchemaMismatchError",
    "ServiceUnavailableError",
    "ValidationError",
]

from dataclasses import dataclass


class DriftloopError(Exception):
    """Base class: a message plus an actionable hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(DriftloopError):
    """A setting (usually a DRIFTLOOP_* variable) is missing or malformed."""

    exit_code = 2


@dataclass(frozen=True)
class LintIssue:
    """One finding of the linter, located as precisely as we can."""

    file: str
    path: str  # e.g. "spec.templates[train].container.resources"
    message: str
    check: str = "semantic"

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message} [{self.check}]"


class ValidationError(DriftloopError):
    """A manifest failed schema or semantic validation; `issues` lists every finding."""

    def __init__(self, issues: list[LintIssue], hint: str | None = None) -> None:
        self.issues = list(issues)
        lines = [f"{len(self.issues)} validation error(s):"] + [f"  {i}" for i in self.issues]
        super().__init__("\n".join(lines), hint)


class EngineError(DriftloopError):
    """The workflow engine could not do what was asked."""


class NotFoundError(DriftloopError):
    """A named object (workflow, template, model version…) does not exist."""


class ConflictError(DriftloopError):
    """The object exists already or is in a state that forbids the operation."""


class ServiceUnavailableError(DriftloopError):
    """A server we depend on (Argo, MLflow, Prometheus…) cannot be reached."""


class DataContractError(DriftloopError):
    """Data violates the contract derived from the Feast feature views."""

    def __init__(self, message: str, columns: list[str] | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.columns = list(columns or [])


class SchemaMismatchError(DataContractError):
    """A model's signature does not match the feature schema in force: promotion is refused."""


class MissingDependencyError(DriftloopError):
    """A binary or package that this command needs is not installed."""

    exit_code = 2
