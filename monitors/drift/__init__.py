"""Evidently-exact data drift, fast: the reference side is precomputed once per model version.

``build_profile`` reduces the reference data to a ``ReferenceProfile`` (saved next to the model);
``compute_drift`` then runs, per column, the stat test Evidently 0.7's ``DataDriftPreset`` would pick, with
its threshold and its score, touching only the current window. ``driftloop drift`` and ``driftloop monitor``
(``monitors.drift.cli``) are the commands on top. See docs/drift.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitors.drift._compute import ColumnDrift, DriftOptions, DriftResult, compute_drift
    from monitors.drift.reference import ColumnProfile, ReferenceProfile, build_profile, save_reference

__all__ = [
    "ColumnDrift",
    "ColumnProfile",
    "DriftOptions",
    "DriftResult",
    "ReferenceProfile",
    "build_profile",
    "compute_drift",
    "save_reference",
]

# Imported on first use: `driftloop drift --help` must not pay for pandas, numpy and scipy.
_HOMES = {
    "ColumnDrift": "_compute",
    "DriftOptions": "_compute",
    "DriftResult": "_compute",
    "compute_drift": "_compute",
    "ColumnProfile": "reference",
    "ReferenceProfile": "reference",
    "build_profile": "reference",
    "save_reference": "reference",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
