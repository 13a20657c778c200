"""The pipeline compiler, and the Argo linter re-exported from the spec layer (``workflows.spec.lint``).

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
    "Manifest": f"{__name__}._build",
    "build_manifests": f"{__name__}._build",
    "diff_manifests": f"{__name__}._build",
    "validate_manifests": f"{__name__}._build",
    "write_manifests": f"{__name__}._build",
    "lint_documents": "workflows.spec.lint",  # the linter is the spec layer's (both compiler and engine use it)
    "lint_paths": "workflows.spec.lint",
    "lint_text": "workflows.spec.lint",
    "submission_workflow": f"{__name__}.submission",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
