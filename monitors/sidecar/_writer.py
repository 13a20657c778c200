"""The background lake writer: sealed spool segments become parquet in the lake, then are deleted.

The work runs in a child process: converting captures to parquet is CPU-bound Python, and in a thread it
would hold the GIL while requests wait. The child only reports what it did; the parent keeps the metrics.

A segment is deleted only after its lake write succeeded, and the lake file is named after the segment
id, so a crash between the two steps replays the segment into the same file: no loss, no duplicate.
While the lake is down the writer retries with capped exponential backoff and the spool grows on disk.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitors.payloads import PayloadError, parse_predictions, parse_request
from monitors.sidecar._metrics import SidecarMetrics
from monitors.sidecar._spool import Capture, Spool, read_segment

if TYPE_CHECKING:
    from monitors.lake import LakeRow

__all__ = ["LakeWriter", "SegmentWritten", "rows_from_capture", "write_segment"]

log = logging.getLogger("driftloop.sidecar")

_RAW_LIMIT = 64 * 1024  # bytes of a malformed body kept in the lake, enough to see what went wrong


def rows_from_capture(capture: Capture) -> list[LakeRow]:
    """The lake rows of one capture: one per inference record, or one malformed row saying why."""
    from monitors.lake import LakeRow  # pandas/pyarrow load in the writer process only, not in the proxy

    ts = datetime.fromtimestamp(capture.ts, tz=UTC)
    make_row = functools.partial(
        LakeRow, capture.request_id, ts, capture.model_version, capture.status, capture.latency_ms
    )
    try:
        records = parse_request(capture.request, capture.content_type)
        if not records:
            raise PayloadError("request holds no records")
    except (PayloadError, RecursionError, MemoryError) as exc:  # never a poison segment that blocks the spool
        raw = capture.request[:_RAW_LIMIT].decode("utf-8", errors="replace")
        return [make_row(error=str(exc) or type(exc).__name__, raw=raw)]
    predictions: list[object] = []
    if 200 <= capture.status < 300:
        try:
            predictions = parse_predictions(capture.response)
        except (PayloadError, RecursionError):
            predictions = []
    if len(predictions) != len(records):
        predictions = [None] * len(records)
    return [
        make_row(row=i, inputs=record, prediction=prediction)
        for i, (record, prediction) in enumerate(zip(records, predictions, strict=True))
    ]


@dataclass(frozen=True)
class SegmentWritten:
    """What writing one segment did; the parent turns it into metrics and spool accounting."""

    segment: str
    size: int
    rows: int
    malformed: int
    torn_bytes: int
    seconds: float


def write_segment(segment: Path, lake_uri: str, model: str) -> SegmentWritten:
    """Segment -> lake parquet (named after the segment id), then delete the segment."""
    from monitors.lake import write_rows

    size = segment.stat().st_size
    captures, torn = read_segment(segment)
    rows = [row for capture in captures for row in rows_from_capture(capture)]
    started = time.perf_counter()
    if rows:
        write_rows(lake_uri, model, rows, part_id=segment.stem)
    seconds = time.perf_counter() - started
    with contextlib.suppress(FileNotFoundError):  # an orphaned writer of a killed sidecar may have raced us
        segment.unlink()
    malformed = sum(1 for row in rows if row.error is not None)
    return SegmentWritten(segment.name, size, len(rows) - malformed, malformed, torn, seconds)


def _writer_process(directory: str, lake_uri: str, model: str, poll_s: float, max_backoff_s: float, conn: Any) -> None:
    """The child's loop: it owns the CPU-heavy part (JSON parsing, parquet) so the proxy never waits on the GIL."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent decides when the writer stops
    with contextlib.suppress(OSError):
        os.nice(10)  # on a busy machine the request path gets the CPU first; the spool absorbs the lag
    import monitors.lake  # noqa: F401  (pandas + pyarrow: load now, not while the first traffic arrives)

    parent = os.getppid()
    backoff = poll_s
    while os.getppid() == parent and not conn.poll(0):
        segments = sorted(Path(directory).glob("*.seg"))
        try:
            for segment in segments:
                conn.send(write_segment(segment, lake_uri, model))
        except (BrokenPipeError, EOFError):
            return
        except Exception as exc:  # the lake is down or refuses writes: keep spooling, retry later
            conn.send(f"{type(exc).__name__}: {exc}")
            time.sleep(backoff)
            backoff = min(max_backoff_s, backoff * 2)
            continue
        backoff = poll_s
        if not segments:
            time.sleep(poll_s)


class LakeWriter:
    """Drains the spool into the lake from a child process; a parent thread applies what it reports."""

    def __init__(
        self,
        spool: Spool,
        lake_uri: str,
        model: str,
        metrics: SidecarMetrics,
        *,
        poll_s: float = 0.25,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.spool = spool
        self.lake_uri = lake_uri
        self.model = model
        self.metrics = metrics
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        self.last_error: str | None = None
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_writer_process,
            args=(str(spool.directory), lake_uri, model, poll_s, max_backoff_s, child_conn),
            name="driftloop-lake-writer",
            daemon=True,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="lake-writer-events", daemon=True)

    def start(self) -> None:
        self._process.start()
        self._thread.start()

    def stop(self, drain_s: float = 5.0) -> None:
        """Stop after trying, for at most ``drain_s``, to flush what is sealed; the rest waits in the spool."""
        deadline = time.monotonic() + drain_s
        while self.spool.sealed() and time.monotonic() < deadline and self.last_error is None:
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(timeout=max(1.0, drain_s))
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        self._stop.set()
        self._thread.join(timeout=5)

    def write_pending(self) -> int:
        """Write every sealed segment now, in this process; the number written. Raises the first lake error."""
        segments = self.spool.sealed()
        for segment in segments:
            self._apply(write_segment(segment, self.lake_uri, self.model))
        return len(segments)

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._conn.poll(0.2):
                    continue
                event = self._conn.recv()
            except (EOFError, OSError):
                return
            if isinstance(event, SegmentWritten):
                self._apply(event)
            else:
                self.metrics.lake_write_errors.inc()
                if self.last_error is None:
                    log.warning("lake write failed (%s); payloads stay in the spool and are retried", event)
                self.last_error = str(event)

    def _apply(self, written: SegmentWritten) -> None:
        self.last_error = None
        if written.torn_bytes:
            self.metrics.dropped.labels(reason="torn_frame").inc()
            log.warning(
                "segment %s ended with %d torn bytes (crash mid-write); skipped", written.segment, written.torn_bytes
            )
        self.metrics.lake_write_seconds.observe(written.seconds)
        self.metrics.lake_rows.inc(written.rows)
        self.metrics.malformed.inc(written.malformed)
        self.spool.forget(written.size)
