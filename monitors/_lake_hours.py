"""Reading the hours of a window: each hour from one consistent set of its files, and, when every row is wanted,
several hours at once.

Why concurrent: an unbounded read of a day is ~24 compacted files whose decoding (pyarrow, outside the GIL) and page
faults overlap well: reading the 24 files of the bench's day three or four at a time took ~0.55 s against ~0.86 s one
after the other, on 2 cores (medians of 5, docs/benchmarks.md "Every row of a day"). A bounded read (``last_rows``)
stays sequential, newest hour first, so it stops early.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from driftloop.errors import ConfigError
from monitors._lake_partitions import Hour, LiveFile, live_files

__all__ = ["read_hours"]

_HOURS_AT_ONCE = 4  # an unbounded read's concurrent hour readers (threads; pyarrow releases the GIL)


def read_hours(
    fs: fsspec.AbstractFileSystem,
    hours: Iterable[Hour],
    last_rows: int | None,
    reader: Callable[[list[str]], pa.Table],
    concat: Callable[[list[pa.Table]], pa.Table],
) -> tuple[list[pa.Table], int]:
    """The hours' tables that hold rows, newest first, and how many files were read: with ``last_rows``, hour by hour
    until that many rows are in; without, every hour, several at once."""
    if last_rows is None:
        with ThreadPoolExecutor(max_workers=_HOURS_AT_ONCE, thread_name_prefix="lake-read") as pool:
            done = list(pool.map(lambda hour: _read_hour_consistently(fs, hour.folder, None, reader, concat), hours))
        return [table for table, _ in done if table is not None and table.num_rows], sum(read for _, read in done)
    tables: list[pa.Table] = []
    rows = files = 0
    for hour in hours:
        if rows >= last_rows:
            break
        table, read = _read_hour_consistently(fs, hour.folder, last_rows - rows, reader, concat)
        files += read
        if table is not None and table.num_rows:
            tables.append(table)
            rows += table.num_rows
    return tables, files


_NEWEST_FIRST_ABOVE = 64  # files in an hour beyond which a bounded read opens the newest files first
_CLOCK_SKEW_S = 30.0  # capture clocks (sidecars) versus the lake's modification times (a remote store's clock)
_RESOLVE_TRIES = 5  # a compaction that deletes files while we read them: resolve the hour again, this many times


def _read_hour_consistently(
    fs: fsspec.AbstractFileSystem,
    folder: str,
    needed: int | None,
    reader: Callable[[list[str]], pa.Table],
    concat: Callable[[list[pa.Table]], pa.Table],
) -> tuple[pa.Table | None, int]:
    """One hour (None: no live file), read from one resolution of its live files; a file deleted under us (a
    compaction published a manifest that supersedes it, or the hour was pruned) means a newer resolution exists:
    resolve again."""
    for attempt in range(_RESOLVE_TRIES):
        files = live_files(fs, folder)
        if not files:
            return None, 0
        try:
            return _read_hour(files, needed, reader, concat)
        except FileNotFoundError:
            if attempt == _RESOLVE_TRIES - 1:
                raise
        except OSError as exc:  # pyarrow reports a vanished file as a plain OSError on some paths
            if attempt == _RESOLVE_TRIES - 1 or not _vanished(fs, files):
                raise ConfigError(f"cannot read the lake partition {folder}: {exc}") from exc
    raise AssertionError("unreachable")


def _vanished(fs: fsspec.AbstractFileSystem, files: list[LiveFile]) -> bool:
    return any(not fs.exists(f.path) for f in files)


def _read_hour(
    files: list[LiveFile],
    needed: int | None,
    dataset: Callable[[list[str]], pa.Table],
    concat: Callable[[list[pa.Table]], pa.Table],
) -> tuple[pa.Table, int]:
    """One hour partition, and how many of its files were read.

    With ``needed`` (rows still wanted) and many small files (a short seal under steady traffic), files are read
    newest-modified first, in growing batches, until the rows captured after the oldest file read (minus a clock
    margin) are enough: a file holds only captures from before it was written, so the unread, older files cannot
    hold any of those newer rows. Without modification times (a store that lists none) the whole hour is read.
    """
    paths = [f.path for f in files]
    if needed is None or len(paths) <= _NEWEST_FIRST_ABOVE or any(f.mtime is None for f in files):
        return dataset(paths), len(paths)
    modified = {f.path: float(f.mtime or 0.0) for f in files}
    newest_first = sorted(paths, key=lambda path: modified[path], reverse=True)
    tables: list[pa.Table] = []
    done, batch = 0, _NEWEST_FIRST_ABOVE
    while done < len(newest_first):
        chosen = newest_first[done : done + batch]
        tables.append(dataset(chosen))
        done += len(chosen)
        batch *= 2
        oldest = datetime.fromtimestamp(modified[chosen[-1]] + _CLOCK_SKEW_S, tz=UTC)
        table = concat(tables)
        good = table.filter(pc.is_null(table["_error"]))
        newer = pc.sum(pc.greater(good["_ts"], pa.scalar(oldest, pa.timestamp("us", tz="UTC")))).as_py()
        if (newer or 0) >= needed:
            return table, done
    return concat(tables), done
