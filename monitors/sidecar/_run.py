"""Run a sidecar in the foreground until SIGTERM/SIGINT, then flush what it can and exit cleanly."""

from __future__ import annotations

import asyncio
import errno
import logging

from aiohttp import web

from driftloop.errors import ConfigError
from monitors.sidecar._config import SidecarConfig
from monitors.sidecar._proxy import Sidecar
from monitors.sidecar._route_only import serve_route_only

__all__ = ["new_loop", "run_sidecar"]

log = logging.getLogger("driftloop.sidecar")


def run_sidecar(config: SidecarConfig, host: str, port: int, *, announce: bool = True) -> None:
    """Serve until a signal; on exit the spool is sealed, fsync'd and drained to the lake for a few seconds.

    Route only (``capture=False``) runs the lean router of ``_route_only`` (the requests in flight finish first).
    """
    if announce:
        capture = (
            f"  lake:  {config.lake_uri} (model={config.model})\n  spool: {config.spool_dir}\n"
            if config.capture
            else "  capture: none here (route only; the model servers capture in process)\n"
        )
        print(
            f"sidecar starting on http://{host}:{port} -> {config.upstream}\n{capture}"
            f"  metrics: http://{host}:{port}/metrics   health: /healthz   ready: /readyz",
            flush=True,
        )
    try:
        if config.capture:
            web.run_app(Sidecar(config).app(), host=host, port=port, access_log=None, print=None, loop=new_loop())
        else:
            serve_route_only(config, host, port, new_loop())
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="pick a free port with --listen HOST:PORT (is another sidecar already running there?)",
        ) from exc


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (about half the per-request CPU of the proxy), else the standard loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
