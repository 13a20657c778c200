"""The payload sidecar: a reverse proxy in front of the model server that captures every scored payload.

Public API: :class:`SidecarConfig`, :class:`Sidecar` (``Sidecar(config).app()`` is an aiohttp app),
:func:`run_sidecar` (blocking; what ``driftloop sidecar`` runs), and :func:`read_segment` for tools
that inspect a spool. See docs/serving.md for the durability design.
"""

from __future__ import annotations

from monitors.sidecar._config import SidecarConfig
from monitors.sidecar._metrics import DROP_REASONS, SidecarMetrics
from monitors.sidecar._proxy import REQUEST_ID_HEADER, Sidecar
from monitors.sidecar._run import run_sidecar
from monitors.sidecar._spool import Capture, read_segment

__all__ = [
    "DROP_REASONS",
    "REQUEST_ID_HEADER",
    "Capture",
    "Sidecar",
    "SidecarConfig",
    "SidecarMetrics",
    "read_segment",
    "run_sidecar",
]
