"""The shipper as a child of the scoring server: one machine's stand-in for the pod's second container.

On a cluster the Rollout pod runs ``driftloop scoring-server`` and ``driftloop ship`` side by side on a shared
``emptyDir``, and the kubelet restarts either when it dies. On one machine (``driftloop stack up``, the deployer)
there is no kubelet, so ``driftloop scoring-server --ship`` starts the shipper itself, in the scoring server's process group
(a ``kill -TERM -<pgid>`` of the scoring server reaches both, as a pod's SIGTERM does), restarts it when it exits unexpectedly (with a backoff), and on
its way out stops it last, so the segment sealed at exit still reaches the lake. The child leaves with its parent
(``--exit-with-parent``): after a ``kill -9`` of the scoring server it drains the spool and exits, never orphaned.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter

__all__ = ["ShipperChild"]

log = logging.getLogger("driftloop.sidecar")


class ShipperChild:
    """``driftloop ship`` for one spool, supervised from a thread of the scoring server."""

    def __init__(self, spool_dir: Path, lake_uri: str | None, model: str | None, drain_timeout_s: float = 20.0):
        command = [sys.executable, "-m", "driftloop", "ship", "--spool", str(spool_dir), "--exit-with-parent",
                   "--drain-timeout", f"{drain_timeout_s:g}"]  # fmt: skip
        if lake_uri:
            command += ["--lake", lake_uri]
        if model:
            command += ["--model", model]
        self.command = command
        self.spool_dir, self.lake_uri, self.model = spool_dir, lake_uri, model
        self.drain_timeout_s = drain_timeout_s
        self.restarts = 0
        self._restarts_counter: Counter | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="shipper-child", daemon=True)

    def count_restarts_in(self, registry: CollectorRegistry) -> None:
        """Expose the restarts as ``driftloop_sidecar_shipper_restarts_total`` on the scoring server's /metrics.

        On a cluster the kubelet counts a shipper container's restarts; here nobody would, and a shipper that keeps
        dying shows up only later, as a growing spool and then drops (``DriftloopSidecarDroppingPayloads``)."""
        from prometheus_client import Counter

        self._restarts_counter = Counter(
            "driftloop_sidecar_shipper_restarts_total",
            "Times the scoring server restarted its shipper child after it failed (--ship, one machine).",
            registry=registry,
        )
        self._restarts_counter.inc(self.restarts)

    def start(self) -> ShipperChild:
        self._process = subprocess.Popen(self.command)
        self._thread.start()
        return self

    def _supervise(self) -> None:
        """Restart the shipper when it fails (a non-zero exit or a signal: a clean exit 0 is a drain on SIGTERM,
        which a pod's stop sends to both containers), after 1 s, doubling to 30 s while it keeps failing (the
        kubelet's CrashLoopBackOff): the spool only grows while nobody ships it, and a scoring server that keeps
        answering must not silently stop feeding the lake."""
        delay, started = 1.0, time.monotonic()
        while not self._stopping.wait(1.0):
            process = self._process
            if process is None or process.poll() is None:
                continue
            if process.returncode == 0:  # it drained and left on SIGTERM (the group's: this server is stopping too)
                return
            if time.monotonic() - started > 60:  # it had run for a minute: a new failure, not the same crash loop
                delay = 1.0
            if self._stopping.wait(delay):
                return
            delay = min(30.0, delay * 2)
            self.restarts += 1
            if self._restarts_counter is not None:
                self._restarts_counter.inc()
            log.warning("the shipper exited with %s; restarting it (restart %d)", process.returncode, self.restarts)
            self._process, started = subprocess.Popen(self.command), time.monotonic()

    def stop(self) -> int | None:
        """After the scoring server sealed and released its spool: SIGTERM (drain, then exit) and wait; then ship
        here whatever it left. A SIGTERM that lands while a (re)started shipper is still importing kills it before
        its handler exists, so the last segment would wait in the spool for the next start: this is the backstop."""
        self._stopping.set()
        self._thread.join(timeout=5)
        process = self._process
        if process is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            process.terminate()  # harmless when the group's SIGTERM already reached it
        try:
            code = process.wait(timeout=self.drain_timeout_s + 10)
        except subprocess.TimeoutExpired:
            log.warning("the shipper did not drain within %.0fs; killed", self.drain_timeout_s)
            process.kill()
            code = process.wait()
        if any(self.spool_dir.glob("*.seg")) or any(self.spool_dir.glob("*.open")):
            self._drain_here()
        return code

    def _drain_here(self) -> None:
        from driftloop.config import get_settings
        from monitors.sidecar.shipper import ship_leftovers

        settings = get_settings()
        lake_uri, model = self.lake_uri or settings.lake_uri, self.model or settings.model_name
        outcome = ship_leftovers(self.spool_dir, lake_uri, model, self.drain_timeout_s)
        if outcome is not None and not outcome[0]:  # None: another shipper took the spool over and ships the rest
            log.warning("segments left in %s (the lake is down?): the next start ships them", self.spool_dir)
