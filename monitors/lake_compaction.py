"""Lake upkeep: compaction (an hour's many small parts -> a few files) and retention (old hours deleted).

Compaction of one hour, each step safe to crash after (a reader honours the manifest, ``monitors._lake_partitions``):

1. resolve the hour's live files (listing, then manifest); nothing new since the last compaction: only clean up;
2. read them into one table, sorted by capture time, and write it as ``compacted-<id>.parquet`` files, each under a
   ``.tmp-*`` name first (synced, then renamed: never half a file under a real name). The files keep the stored
   columns and, when the hour's features and predictions decode exactly (``monitors._lake_typed``), add them as typed
   columns;
3. **publish** the new manifest (written as ``.tmp-*``, then renamed over ``_compacted.json``): its ``sources`` are
   the old manifest's sources and files plus the parts just merged. Before this rename the old view is in force and
   the new files are orphans nobody reads; after it, the new one is;
4. delete what the manifest supersedes (and orphans of an earlier crash). A crash here leaves superseded files that
   readers skip and the next compaction deletes.

Running it twice changes nothing the second time. One compactor per model at a time: on a local lake a lock file
(``model=<m>/_compaction.lock``, ``flock``) makes a second one skip; on an object store run it from one place only
(the stack's monitor, or one ``driftloop lake compact`` cron). Pruning takes the same lock, renames an expired hour
out of the readers' sight (local lakes) and then deletes it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from monitors._lake_partitions import (
    COMPACTED_PREFIX,
    MANIFEST,
    PART_PREFIX,
    ROW_ORDER,
    Manifest,
    check_model,
    filesystem,
    hours,
    is_local,
    listing,
    read_manifest,
)
from monitors._lake_typed import compacted_write_options, with_typed_columns
from monitors.lake import STORED_SCHEMA

__all__ = ["CompactionReport", "HourCompacted", "PruneReport", "compact", "compact_hour", "prune"]

Fault = Callable[[str], None]  # called with a step name after each step (tests inject crashes here)
SETTLE_S = 300.0  # an hour is compacted once it ended this long ago (later writes are still handled correctly)
MAX_ROWS_PER_FILE = 1_000_000  # 100 req/s for an hour is 360,000 rows: one file
_ROW_GROUP = 65_536
_DEBRIS_AGE_S = 3600.0  # a .tmp-* file older than this is a crashed writer's, not one being written
LOCK_FILE = "_compaction.lock"


@dataclass(frozen=True)
class HourCompacted:
    folder: str
    inputs: int  # files merged
    rows: int
    outputs: int  # compacted files now holding the hour
    deleted: int  # superseded files and crash debris removed


@dataclass
class CompactionReport:
    model: str
    hours: list[HourCompacted] = field(default_factory=list)
    cleaned: int = 0  # files removed from hours that had nothing new to merge
    busy: bool = False  # another compactor held the lock: nothing done

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "files_merged": sum(h.inputs for h in self.hours)}


@dataclass
class PruneReport:
    model: str
    cutoff: str
    hours: list[str] = field(default_factory=list)
    busy: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compact(
    lake_uri: str,
    model: str,
    *,
    now: datetime | None = None,
    settle_s: float = SETTLE_S,
    max_rows_per_file: int = MAX_ROWS_PER_FILE,
    max_hours: int | None = None,
    fault: Fault | None = None,
) -> CompactionReport:
    """Compact every hour of ``model`` that ended at least ``settle_s`` ago, and in the hours still open the parts
    written at least ``settle_s`` ago (so a read of the current hour opens minutes of parts, not an hour's), newest
    first (the hours readers read most); with ``max_hours``, stop after merging that many (a backlog is then worked
    off over several passes). Idempotent."""
    fs, root = filesystem(lake_uri)
    report = CompactionReport(check_model(model))
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=settle_s)
    with _locked(fs, root, model) as held:
        if not held:
            report.busy = True
            return report
        for hour in hours(fs, root, model, newest_first=True):
            if max_hours is not None and len(report.hours) >= max_hours:
                break
            settled = None if hour.end <= cutoff else cutoff.timestamp()  # an open hour: only its settled parts
            done = compact_hour(
                fs, hour.folder, max_rows_per_file=max_rows_per_file, fault=fault, parts_written_before=settled
            )
            if isinstance(done, HourCompacted):
                report.hours.append(done)
            else:
                report.cleaned += done
    return report


def compact_hour(
    fs: fsspec.AbstractFileSystem,
    folder: str,
    *,
    max_rows_per_file: int = MAX_ROWS_PER_FILE,
    fault: Fault | None = None,
    parts_written_before: float | None = None,
) -> HourCompacted | int:
    """Compact one hour partition (the caller holds the lock); the files cleaned up when there was nothing to merge.

    With ``parts_written_before`` (seconds since the epoch), only parts last modified before then are merged (an open
    hour: a part written later is merged by a later run; one whose time the store does not say waits for the hour to
    end). Correctness does not depend on it: a part written after the listing is simply not in the manifest's
    sources and stays live."""
    step = fault or (lambda _name: None)
    listed = listing(fs, folder)
    names = list(listed)
    manifest = read_manifest(fs, folder) or Manifest(0, (), frozenset())
    new_parts = sorted(n for n in names if _is_part(n) and n not in manifest.sources)
    if parts_written_before is not None:
        new_parts = [n for n in new_parts if (listed[n] or math.inf) < parts_written_before]
    if not new_parts:  # compacted already (a second run, or nothing written): never rewrite, only tidy
        return _clean(fs, folder, names, manifest)
    inputs = [*manifest.files, *new_parts]
    table = ds.dataset([f"{folder}/{n}" for n in inputs], schema=STORED_SCHEMA, format="parquet", filesystem=fs)
    merged = table.to_table().sort_by([(name, "ascending") for name in ROW_ORDER])
    merged = with_typed_columns(merged)  # the hour's features and predictions as typed columns, when exact
    step("read")
    outputs = []
    for offset in range(0, max(merged.num_rows, 1), max_rows_per_file):
        name = f"{COMPACTED_PREFIX}{manifest.generation + 1:06d}-{uuid.uuid4().hex[:12]}.parquet"
        chunk = merged.slice(offset, max_rows_per_file)
        _publish(fs, folder, name, functools.partial(_write_parquet, chunk))
        outputs.append(name)
        step("written")
    sources = manifest.sources | set(manifest.files) | set(new_parts)
    published = Manifest(manifest.generation + 1, tuple(outputs), frozenset(sources))
    _publish(fs, folder, MANIFEST, lambda handle: handle.write(published.to_json().encode()))
    step("published")
    deleted = _clean(fs, folder, _names(fs, folder), published, step)
    return HourCompacted(folder, len(inputs), merged.num_rows, len(outputs), deleted)


def prune(
    lake_uri: str, model: str, retention_s: float, *, now: datetime | None = None, dry_run: bool = False
) -> PruneReport:
    """Delete the hour partitions of ``model`` whose every record is older than ``retention_s`` (then empty dates)."""
    if retention_s <= 0:
        raise ValueError("retention must be positive (0 means: keep everything, so do not prune)")
    fs, root = filesystem(lake_uri)
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=retention_s)
    report = PruneReport(check_model(model), cutoff.isoformat(timespec="seconds"))
    with _locked(fs, root, model) as held:
        if not held:
            report.busy = True
            return report
        expired = [hour for hour in hours(fs, root, model, newest_first=False) if hour.end <= cutoff]
        report.hours = [hour.folder for hour in expired]
        if dry_run:
            return report
        for hour in expired:
            _remove_tree(fs, hour.folder)
        base = f"{root}/model={model}"
        for date_folder in {hour.folder.rsplit("/", 1)[0] for hour in expired}:
            if not _names(fs, date_folder):
                with contextlib.suppress(FileNotFoundError, OSError):
                    fs.rmdir(date_folder)
        for debris in _names(fs, base):  # a prune that crashed between its rename and its delete
            if debris.startswith(".pruning-"):
                _remove_tree(fs, f"{base}/{debris}")
    return report


def _is_part(name: str) -> bool:
    return name.startswith(PART_PREFIX) and name.endswith(".parquet")


def _names(fs: fsspec.AbstractFileSystem, folder: str) -> list[str]:
    return list(listing(fs, folder))


def _clean(
    fs: fsspec.AbstractFileSystem, folder: str, names: list[str], manifest: Manifest, step: Fault | None = None
) -> int:
    """Remove what ``manifest`` supersedes, compacted files it does not list (orphans of a crashed compaction: only
    compactors write them, under the lock) and old ``.tmp-*`` debris."""
    keep = set(manifest.files)
    doomed = [n for n in names if n in manifest.sources and n not in keep]
    doomed += [n for n in names if n.startswith(COMPACTED_PREFIX) and n not in keep and n not in doomed]
    doomed += [n for n in names if n.startswith(".tmp-") and _age(fs, f"{folder}/{n}") > _DEBRIS_AGE_S]
    for index, name in enumerate(doomed):
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(f"{folder}/{name}")
        if step is not None and index == 0:
            step("deleting")
    return len(doomed)


def _age(fs: fsspec.AbstractFileSystem, path: str) -> float:
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return 0.0
    stamp = info.get("mtime", info.get("LastModified"))
    if stamp is None:
        return 0.0
    return time.time() - (stamp.timestamp() if isinstance(stamp, datetime) else float(stamp))


def _write_parquet(table: pa.Table, handle: IO[bytes]) -> None:
    pq.write_table(table, handle, row_group_size=_ROW_GROUP, **compacted_write_options(table.schema))


def _publish(fs: fsspec.AbstractFileSystem, folder: str, name: str, write: Callable[[IO[bytes]], Any]) -> None:
    """Write ``folder/name`` through a ``.tmp-*`` file and one rename (synced on a local disk, so a power cut
    cannot publish a name whose bytes are not on disk)."""
    temporary = f"{folder}/.tmp-{uuid.uuid4().hex}"
    if not is_local(fs):
        with fs.open(temporary, "wb") as handle:
            write(handle)
        fs.mv(temporary, f"{folder}/{name}")
        return
    with open(temporary, "wb") as local:
        write(local)
        local.flush()
        os.fsync(local.fileno())
    os.replace(temporary, f"{folder}/{name}")
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _remove_tree(fs: fsspec.AbstractFileSystem, folder: str) -> None:
    if is_local(fs) and not Path(folder).name.startswith(".pruning-"):
        hidden = f"{Path(folder).parent.parent}/.pruning-{Path(folder).parent.name}-{Path(folder).name}"
        hidden += f"-{uuid.uuid4().hex[:8]}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(folder, hidden)  # one atomic step out of the readers' sight, then the slow delete
            folder = hidden
    with contextlib.suppress(FileNotFoundError):
        fs.rm(folder, recursive=True)


@contextlib.contextmanager
def _locked(fs: fsspec.AbstractFileSystem, root: str, model: str) -> Iterator[bool]:
    """Hold the model's compaction lock (local lakes); yields False when another process holds it."""
    if not is_local(fs):
        yield True
        return
    import fcntl

    base = Path(root) / f"model={model}"
    if not base.is_dir():  # nothing written for this model: nothing to guard (and no folder made for a typo)
        yield True
        return
    with open(base / LOCK_FILE, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
