"""What both sidecar servers share: their configuration, and the background chores each runs beside its requests.

The capturing proxy (``_proxy``, aiohttp) and the route-only router (``_route_only``, raw asyncio) are two servers for
one :class:`SidecarConfig`; ``capture`` picks which one ``driftloop sidecar`` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SidecarConfig", "cancel_all", "champion_version_of", "every"]

log = logging.getLogger("driftloop.sidecar")


@dataclass(frozen=True)
class SidecarConfig:
    """Everything a sidecar needs; the CLI fills it from flags, tests and benchmarks build it directly."""

    upstream: str
    lake_uri: str
    spool_dir: Path
    model: str
    model_version: str | None = None  # None: resolve models:/<model>@champion from mlflow_uri
    mlflow_uri: str | None = None
    capture_paths: tuple[str, ...] = ("/invocations",)
    max_spool_bytes: int = 1 << 30
    segment_bytes: int = 8 << 20
    segment_age_s: float = 5.0
    fsync_interval_s: float = 0.2
    max_body_bytes: int = 64 << 20  # larger requests get 413 from the sidecar
    max_capture_bytes: int = 4 << 20  # larger pairs are proxied but not captured (counted as dropped)
    max_inflight: int = 512  # beyond it: fast 503, so memory stays bounded
    upstream_timeout_s: float = 30.0
    connect_timeout_s: float = 1.0
    ready_path: str = "/ping"
    lake_poll_s: float = 0.25
    routes_file: Path | None = None  # written by `driftloop deployer`; overrides `upstream` while it exists
    routes_poll_s: float = 0.1
    capture: bool = True  # False: route only (the model servers capture in process: `driftloop scoring-server`)


async def every(interval_s: float, action: Any, first: float | None = None) -> None:
    """Run ``action()`` every ``interval_s`` (the first time after ``first``) until cancelled, logging failures."""
    await asyncio.sleep(interval_s if first is None else first)
    while True:
        try:
            await action()
        except Exception:  # a background chore must never die silently nor take the proxy down
            log.exception("sidecar background task failed; retrying in %.1fs", interval_s)
        await asyncio.sleep(interval_s)


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel background tasks and wait until each has stopped."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def champion_version_of(config: SidecarConfig) -> str | None:
    """The registered version ``config.model``'s champion alias points at in ``config.mlflow_uri`` (None: none yet)."""
    assert config.mlflow_uri
    from monitors.sidecar.champion import champion_version

    return await asyncio.to_thread(champion_version, config.mlflow_uri, config.model)
