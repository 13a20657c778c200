"""The pipeline compiler: Hera pipelines -> Argo YAML, checked by the spec layer's linter (``workflows.spec.lint``).

    from workflows.compiler import build_manifests, submission_workflow

Exports load lazily: importing the package must not pay for importing Hera (seconds) before a name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Manifest",
    "build_manifests",
    "diff_manifests",
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
    "submission_workflow": "submission",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
