"""Evidently-exact data drift, fast: the reference side is precomputed once per model version.

``build_profile`` reduces the reference data to a ``ReferenceProfile`` (saved next to the model);
``compute_drift`` then runs, per column, the stat test Evidently 0.7's ``DataDriftPreset`` would pick, with
its threshold and its score, touching only the current window. ``driftloop drift`` and ``driftloop monitor``
(``monitors.drift.cli``) are the commands on top. See docs/drift.md.
"""

from __future__ import annotations

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
