"""The spool: append-only segment files that hold every captured payload until the lake has it.

A capture is written (``os.write``, i.e. to the page cache) before the proxy answers, so a SIGKILL
loses nothing already answered; ``fsync`` runs on an interval from a background thread so the request
path never waits for the disk. The active segment is ``<id>.open``; sealing renames it ``<id>.seg``,
and only sealed segments go to the lake. Each frame carries a CRC, so a torn tail (power loss) is
detected, counted and skipped instead of poisoning the segment.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from driftloop.errors import ConflictError
from monitors.sidecar._metrics import SidecarMetrics

__all__ = ["Capture", "Spool", "read_segment"]

_HEADER = struct.Struct("<IIII")  # crc32(meta+request+response), len(meta), len(request), len(response)


@dataclass(frozen=True)
class Capture:
    """One request/response pair as the proxy saw it."""

    request_id: str
    ts: float  # arrival, seconds since the epoch (UTC)
    model_version: str
    status: int
    latency_ms: float
    content_type: str
    request: bytes
    response: bytes

    def encode(self) -> bytes:
        meta = json.dumps(
            [self.request_id, self.ts, self.model_version, self.status, self.latency_ms, self.content_type]
        ).encode()
        crc = zlib.crc32(self.response, zlib.crc32(self.request, zlib.crc32(meta)))
        return b"".join(
            (_HEADER.pack(crc, len(meta), len(self.request), len(self.response)), meta, self.request, self.response)
        )


def read_segment(path: Path) -> tuple[list[Capture], int]:
    """The captures of a segment and the number of trailing bytes that did not form a whole, valid frame."""
    data = path.read_bytes()
    captures, offset = [], 0
    while offset + _HEADER.size <= len(data):
        crc, meta_len, request_len, response_len = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        end = start + meta_len + request_len + response_len
        if end > len(data) or zlib.crc32(data[start:end]) != crc:
            break
        meta = json.loads(data[start : start + meta_len])
        request = data[start + meta_len : start + meta_len + request_len]
        response = data[start + meta_len + request_len : end]
        request_id, ts, model_version, status, latency_ms, content_type = meta
        captures.append(Capture(request_id, ts, model_version, status, latency_ms, content_type, request, response))
        offset = end
    return captures, len(data) - offset


def _flock_within(fd: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


class Spool:
    """Segment files in one directory, owned by one sidecar at a time (an flock guards it)."""

    def __init__(
        self,
        directory: Path,
        metrics: SidecarMetrics,
        *,
        max_bytes: int,
        segment_bytes: int,
        segment_age_s: float,
    ) -> None:
        self.directory = directory
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.segment_age_s = segment_age_s
        self._lock = threading.Lock()  # guards the active fd and the byte count across threads
        self._fd: int | None = None
        self._active: Path | None = None
        self._opened_at = 0.0
        self._active_bytes = 0
        self._sealed_bytes = 0
        self._sealed_count = 0
        self._dirty = False
        self._unsynced: list[int] = []  # fds of sealed segments still waiting for their fsync
        self._sequence = 0
        self.dropping = False  # the last append was refused for lack of room
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        if not _flock_within(self._lock_fd, 1.0):  # a shipper sealing orphans holds it for milliseconds
            os.close(self._lock_fd)
            raise ConflictError(
                f"the spool {directory} is in use by another sidecar",
                hint="give each sidecar its own --spool directory, or stop the other one first",
            ) from None
        self._recover()

    def _recover(self) -> None:
        """Seal segments a previous (possibly killed) process left open, so they are replayed to the lake."""
        for leftover in sorted(self.directory.glob("*.open")):
            leftover.rename(leftover.with_suffix(".seg"))
        segments = self.sealed()
        self._sealed_bytes = sum(path.stat().st_size for path in segments)
        self._sealed_count = len(segments)
        self._publish()

    def sealed(self) -> list[Path]:
        """Sealed segments, oldest first (ids sort by creation time)."""
        return sorted(self.directory.glob("*.seg"))

    @property
    def total_bytes(self) -> int:
        return self._sealed_bytes + self._active_bytes

    def append(self, capture: Capture) -> bool:
        """Write one capture before the response goes out; False when it was dropped (and counted)."""
        frame = capture.encode()
        with self._lock:
            if self.total_bytes + len(frame) > self.max_bytes:
                self.metrics.dropped.labels(reason="spool_full").inc()
                self.dropping = True
                return False
            self.dropping = False
            try:
                if self._fd is None or self._active_bytes + len(frame) > self.segment_bytes:
                    self._seal_locked()
                    self._open_locked()
                assert self._fd is not None
                os.write(self._fd, frame)
            except OSError:
                self.metrics.dropped.labels(reason="spool_error").inc()
                return False
            self._active_bytes += len(frame)
            self._dirty = True
        self.metrics.captured.inc()
        self.metrics.spooled_bytes.set(self.total_bytes)
        return True

    def seal_if_older_than(self, age_s: float | None = None) -> bool:
        """Seal the active segment once it is old enough, so the lake stays fresh under light traffic."""
        with self._lock:
            if self._fd is None or time.monotonic() - self._opened_at < (
                age_s if age_s is not None else self.segment_age_s
            ):
                return False
            self._seal_locked()
        self._publish()
        return True

    def sync(self) -> None:
        """fsync what changed since the last call; runs off the request path (a thread, on an interval)."""
        with self._lock:
            pending, self._unsynced = self._unsynced, []
            if self._fd is not None and self._dirty:
                pending.append(os.dup(self._fd))  # the dup survives a concurrent seal of the original
                self._dirty = False
        for fd in pending:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def forget(self, size: int) -> None:
        """Account for a sealed segment of ``size`` bytes that the lake writer wrote and deleted."""
        with self._lock:
            self._sealed_bytes = max(0, self._sealed_bytes - size)
            self._sealed_count = max(0, self._sealed_count - 1)
        self._publish()

    def rescan(self) -> None:
        """Recount sealed segments from disk: when another process (``driftloop ship``) deletes what it shipped."""
        sizes = []
        for path in self.sealed():
            with contextlib.suppress(FileNotFoundError):  # shipped (deleted) between the listing and the stat
                sizes.append(path.stat().st_size)
        with self._lock:
            self._sealed_bytes, self._sealed_count = sum(sizes), len(sizes)
        self._publish()

    def close(self) -> None:
        """Seal and fsync what is pending; the next start replays it if the lake did not get it."""
        with self._lock:
            self._seal_locked()
        self.sync()
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)

    def _open_locked(self) -> None:
        self._sequence += 1
        segment_id = f"{time.time_ns():020d}-{os.getpid()}-{self._sequence:06d}"
        self._active = self.directory / f"{segment_id}.open"
        self._fd = os.open(self._active, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
        self._opened_at = time.monotonic()

    def _seal_locked(self) -> None:
        if self._fd is None or self._active is None:
            return
        if self._dirty:
            self._unsynced.append(self._fd)  # fsync'd by the next sync(), never on the request path
            self._dirty = False
        else:
            os.close(self._fd)
        if self._active_bytes:
            self._active.rename(self._active.with_suffix(".seg"))
            self._sealed_count += 1
        else:
            self._active.unlink()
        self._sealed_bytes += self._active_bytes
        self._fd, self._active, self._active_bytes = None, None, 0

    def _publish(self) -> None:
        self.metrics.spooled_bytes.set(self.total_bytes)
        self.metrics.spool_segments.set(self._sealed_count)
