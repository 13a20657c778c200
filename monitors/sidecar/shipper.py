"""The shipper: sealed spool segments written by another process (the in-process capture) go to the lake.

It is the sidecar container of the in-process mode, sharing the spool directory with the scoring process the
way a log shipper shares an ``emptyDir``. The segment-to-lake step is the reverse proxy's own
(:func:`write_segment`: the lake file is named after the segment id and the segment is deleted only after the
write), so a crash of either process, or a lake outage, loses and duplicates nothing. Segments a killed scoring
process left open are sealed here once nobody holds the spool's lock (or by the scoring process when it restarts).
What it did is counted in :class:`ShipperMetrics` (the lake half of the proxy's series, same names), served by
``driftloop ship --metrics-listen``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from driftloop.errors import ConflictError
from monitors.sidecar._metrics import ShipperMetrics
from monitors.sidecar._writer import SegmentWritten, write_segment

__all__ = ["Shipper", "ship_leftovers"]

log = logging.getLogger("driftloop.sidecar")


class Shipper:
    """One per spool directory (its own flock, ``.ship.lock``); ``run`` loops until ``stop`` is set."""

    def __init__(
        self,
        spool_dir: Path,
        lake_uri: str,
        model: str,
        *,
        poll_s: float = 0.25,
        max_backoff_s: float = 5.0,
        metrics: ShipperMetrics | None = None,
    ):
        self.spool_dir = spool_dir
        self.lake_uri = lake_uri
        self.model = model
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        self.stop = threading.Event()
        self.last_error: str | None = None
        self.shipped_rows = 0
        self.metrics = metrics or ShipperMetrics()
        spool_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(spool_dir / ".ship.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise ConflictError(
                f"the spool {spool_dir} is already shipped by another process",
                hint="run one `driftloop ship` per spool directory",
            ) from None

    @contextlib.contextmanager
    def _writer_gone(self) -> Iterator[bool]:
        """True (holding the scoring process's flock ``.lock``) when no scoring process owns the spool right now."""
        fd = os.open(self.spool_dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False  # a live writer owns the spool
                return
            try:  # held briefly; a scoring process starting meanwhile waits for it (Spool retries its flock)
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def seal_orphans(self) -> int:
        """Seal ``.open`` segments when no scoring process holds the spool (it was killed and is not back)."""
        if not any(self.spool_dir.glob("*.open")):
            return 0
        with self._writer_gone() as gone:
            if not gone:
                return 0  # a live writer owns them and seals them itself
            leftovers = sorted(self.spool_dir.glob("*.open"))
            for leftover in leftovers:
                leftover.rename(leftover.with_suffix(".seg"))
            return len(leftovers)

    def ship_pending(self) -> list[SegmentWritten]:
        """Write every sealed segment to the lake, oldest first; raises the first lake error."""
        self.seal_orphans()
        written = []
        for segment in sorted(self.spool_dir.glob("*.seg")):
            try:
                done = write_segment(segment, self.lake_uri, self.model)
            except Exception:
                self.metrics.lake_write_errors.inc()
                raise
            if done.torn_bytes:
                self.metrics.torn.inc()
                log.warning("segment %s ended with %d torn bytes (crash mid-write); skipped", done.segment,
                            done.torn_bytes)  # fmt: skip
            self.metrics.lake_write_seconds.observe(done.seconds)
            self.metrics.lake_rows.inc(done.rows)
            self.metrics.malformed.inc(done.malformed)
            self.shipped_rows += done.rows + done.malformed
            written.append(done)
        return written

    def run(self) -> None:
        """Ship until ``stop``; while the lake is down, back off (capped) and leave segments in the spool."""
        backoff = self.poll_s
        while not self.stop.is_set():
            try:
                shipped = self.ship_pending()
            except Exception as exc:  # the lake is down or refuses writes: the spool holds the payloads
                if self.last_error is None:
                    log.warning("lake write failed (%s); segments stay in the spool and are retried", exc)
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.stop.wait(backoff)
                backoff = min(self.max_backoff_s, backoff * 2)
                continue
            self.last_error, backoff = None, self.poll_s
            if not shipped:
                self.stop.wait(self.poll_s)

    def drain(self, timeout_s: float) -> bool:
        """After ``stop``: wait for the scoring process to exit (releasing the spool), then ship what is left.

        Kubernetes sends SIGTERM to both containers of a pod at once, and the spool is an ``emptyDir`` that dies
        with the pod: without this, the segment the scoring process seals on its way out (up to ``--segment-age``
        of traffic, on every rollout) would never reach the lake. True when the spool is empty and no scoring
        process holds it; False at the deadline (it is still running, or the lake is down): the rest stays spooled.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.ship_pending()  # seals the open segment as soon as no scoring process holds the spool
            except Exception as exc:  # the lake is down: keep trying until the deadline
                self.last_error = f"{type(exc).__name__}: {exc}"
            with self._writer_gone() as gone:
                if gone and not any(self.spool_dir.glob("*.open")) and not any(self.spool_dir.glob("*.seg")):
                    return True
            if time.monotonic() >= deadline:
                log.warning("drain: gave up after %.0fs; segments left in %s (%s)", timeout_s, self.spool_dir,
                            self.last_error or "the scoring process still holds the spool")  # fmt: skip
                return False
            time.sleep(min(self.poll_s, 0.1))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)


def ship_leftovers(spool_dir: Path, lake_uri: str, model: str, timeout_s: float) -> tuple[bool, int] | None:
    """Ship what a stopped or killed writer left in ``spool_dir``: (drained, rows shipped), or None when another
    process ships this spool (it holds the lock, so it ships the rest).

    The one way the deployer (a stopped model server), ``scoring-server --ship`` (a shipper child that died
    before draining) and the route-only sidecar (a capturing run's old spool) empty a spool they do not run.
    ``drained`` is False at the deadline (the lake is down, or a writer still holds the spool): the rest stays.
    """
    try:
        shipper = Shipper(spool_dir, lake_uri, model)
    except ConflictError:
        return None
    try:
        return shipper.drain(timeout_s), shipper.shipped_rows
    finally:
        shipper.close()
