"""Reading the parquet inputs while the interpreter imports pandas: `driftloop drift` overlaps start-up and I/O.

A one-shot CLI process spends ~0.5 s importing pandas and ~0.4 s reading two 1M-row files. pyarrow decodes with
the GIL released, so a thread started before pandas is imported reads the files in that time (issue 10). Only
pyarrow is imported here; the tables become DataFrames in ``monitors.drift._inputs`` exactly as before. A read
that fails here is dropped silently: ``read_table`` then reads the file again and reports the error properly.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from monitors.drift._files import TEXT_SUFFIXES, is_profile_dir

__all__ = ["ParquetPrefetch"]


class ParquetPrefetch:
    """Starts reading each parquet file or directory in ``paths`` on a background thread; ``take`` waits for one."""

    def __init__(self, *paths: str | Path) -> None:
        self._wanted = [Path(path) for path in paths if _is_parquet(Path(path))]
        self._tables: dict[Path, Any] = {}
        self._thread = threading.Thread(target=self._read_all, name="parquet-prefetch", daemon=True)
        if self._wanted:
            self._thread.start()

    def _read_all(self) -> None:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            return
        for path in self._wanted:
            try:
                self._tables[path] = pq.read_table(path, use_pandas_metadata=True)
            except Exception:  # unreadable: read_table reads it again and says why
                continue

    def take(self, path: str | Path) -> Any | None:
        """The pyarrow Table read for ``path`` (handed over once: the caller may free its buffers), or None."""
        if not self._wanted:
            return None
        self._thread.join()
        return self._tables.pop(Path(path), None)


def _is_parquet(path: Path) -> bool:
    """What ``read_table`` would read as parquet (a saved profile directory is loaded, not read)."""
    if path.is_dir():
        return not is_profile_dir(path)
    return path.is_file() and path.suffix.lower() not in TEXT_SUFFIXES
