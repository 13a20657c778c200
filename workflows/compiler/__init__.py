"""The pipeline compiler and the Argo linter.

    from workflows.compiler import build_manifests, lint_paths, submission_workflow

Exports load lazily: the linter must not pay for importing Hera (seconds), which only compiling needs.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Manifest",
    "build_manifests",
    "diff_manifests",
    "lint_documents",
    "lint_paths",
    "lint_text",
    "submission_workflow",
    "validate_manifests",
    "write_manifests",
]

_HOMES = {
    "Manifest": "_build",
    "build_manifests": "_build",
    "diff_manifests": "_build",
    "validate_manifests": "_build",
    "write_manifests": "_build",
    "lint_documents": "lint",
    "lint_paths": "lint",
    "lint_text": "lint",
    "submission_workflow": "submission",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
