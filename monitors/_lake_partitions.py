"""The lake's folders and which files of an hour partition are live: shared by the reader, compaction and pruning.

An hour partition holds the writers' ``part-<id>.parquet`` files and, once compacted, ``compacted-<id>.parquet``
files listed in the partition's manifest ``_compacted.json``::

    {"version": 1, "generation": 3, "files": ["compacted-….parquet"], "sources": ["part-seg-1.parquet", …]}

``files`` hold exactly the rows of every name in ``sources`` (writers' parts and earlier compacted files), so the
live files of an hour are ``files`` plus the parts *not* in ``sources``. A reader lists the folder **first** and
reads the manifest **second**: a compaction that publishes in between supersedes parts the reader listed (they are
then skipped, their rows are in ``files``), and one that publishes later leaves the reader a consistent older view
whose files it may find deleted — :func:`monitors.lake.read_window` then resolves the hour again. A part rewritten
after it was compacted (a writer replaying a segment after a crash) is in ``sources`` and stays superseded: a row is
never read twice. Compacted files not in the manifest (a compaction that crashed before publishing) and ``.tmp-*``
files are never read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import fsspec

from driftloop.errors import ConfigError

__all__ = [
    "COMPACTED_PREFIX",
    "MANIFEST",
    "ROW_ORDER",
    "Hour",
    "Manifest",
    "check_model",
    "filesystem",
    "hours",
    "is_local",
    "listing",
    "live_files",
    "partition",
    "read_manifest",
]

MANIFEST = "_compacted.json"
COMPACTED_PREFIX = "compacted-"
PART_PREFIX = "part-"
ROW_ORDER = ("_ts", "_request_id", "_row")  # the order of a window's records, and of a compacted hour's rows
_DATE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_HOUR = re.compile(r"^hour=(\d{2})$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Hour:
    """One hour partition: ``<lake>/model=<m>/date=<date>/hour=<hour>``."""

    date: str
    hour: str
    folder: str

    @property
    def start(self) -> datetime:
        return datetime.strptime(f"{self.date} {self.hour}", "%Y-%m-%d %H").replace(tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=1)


@dataclass(frozen=True)
class Manifest:
    generation: int
    files: tuple[str, ...]  # compacted file names (in the partition folder)
    sources: frozenset[str]  # every name whose rows the files hold

    def to_json(self) -> str:
        body = {"version": 1, "generation": self.generation, "files": list(self.files)}
        return json.dumps({**body, "sources": sorted(self.sources)}, indent=0)


@dataclass(frozen=True)
class LiveFile:
    path: str
    mtime: float | None  # seconds since the epoch; None when the listing did not say


def filesystem(lake_uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    if not lake_uri:
        raise ConfigError("no lake URI given", hint="pass --lake DIR_OR_URI or set DRIFTLOOP_LAKE_URI")
    try:
        fs, root = fsspec.core.url_to_fs(lake_uri)
    except (ImportError, ValueError) as exc:
        raise ConfigError(
            f"cannot open the lake {lake_uri!r}: {exc}",
            hint="use a local directory or an fsspec URI whose filesystem package is installed (e.g. s3fs for s3://)",
        ) from exc
    return fs, str(root).rstrip("/")


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return bool({"file", "local"} & set(protocol))


def check_model(model: str) -> str:
    if not SAFE_NAME.match(model):
        raise ConfigError(f"model name {model!r} cannot name a lake partition", hint="use letters, digits, . _ -")
    return model


def partition(root: str, model: str, ts: datetime) -> str:
    utc = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    return f"{root}/model={model}/date={utc:%Y-%m-%d}/hour={utc:%H}"


def _names(fs: fsspec.AbstractFileSystem, folder: str) -> list[str]:
    try:
        return [str(path).rstrip("/").rsplit("/", 1)[-1] for path in fs.ls(folder, detail=False)]
    except FileNotFoundError:
        return []


def hours(
    fs: fsspec.AbstractFileSystem, root: str, model: str, *, since: datetime | None = None, newest_first: bool = True
) -> list[Hour]:
    """The hour partitions of ``model`` that can hold records at or after ``since``: one listing per date folder
    (not per file), so the cost grows with the days kept, not with the files written."""
    base = f"{root}/model={check_model(model)}"
    found: list[Hour] = []
    for date_name in _names(fs, base):
        date = _DATE.match(date_name)
        if not date:
            continue
        day_end = datetime.strptime(date.group(1), "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)
        if since is not None and day_end <= since:
            continue
        for hour_name in _names(fs, f"{base}/{date_name}"):
            hour = _HOUR.match(hour_name)
            if hour:
                candidate = Hour(date.group(1), hour.group(1), f"{base}/{date_name}/{hour_name}")
                if since is None or candidate.end > since:
                    found.append(candidate)
    return sorted(found, key=lambda h: (h.date, h.hour), reverse=newest_first)


def read_manifest(fs: fsspec.AbstractFileSystem, folder: str) -> Manifest | None:
    try:
        with fs.open(f"{folder}/{MANIFEST}", "rb") as handle:
            body = json.loads(handle.read())
    except FileNotFoundError:
        return None
    return Manifest(int(body["generation"]), tuple(body["files"]), frozenset(body["sources"]))


def _mtime(entry: dict[str, Any]) -> float | None:
    stamp = entry.get("mtime", entry.get("LastModified"))
    if stamp is None:
        return None
    return stamp.timestamp() if isinstance(stamp, datetime) else float(stamp)


def listing(fs: fsspec.AbstractFileSystem, folder: str) -> dict[str, float | None]:
    """The names in ``folder`` and when each was last modified (None when the store does not say); empty when the
    folder does not exist."""
    try:
        entries = fs.ls(folder, detail=True)
    except FileNotFoundError:
        return {}
    return {str(e["name"]).rstrip("/").rsplit("/", 1)[-1]: _mtime(e) for e in entries}


def live_files(fs: fsspec.AbstractFileSystem, folder: str) -> list[LiveFile]:
    """The files of one hour that hold its rows, each row in exactly one (see the module's docstring)."""
    listed = listing(fs, folder)
    if not listed:
        return []  # pruned, or never written
    manifest = read_manifest(fs, folder)  # after the listing: see the module's docstring
    superseded = manifest.sources if manifest else frozenset()
    live = [LiveFile(f"{folder}/{name}", listed.get(name)) for name in (manifest.files if manifest else ())]
    parts = sorted(n for n in listed if n.startswith(PART_PREFIX) and n.endswith(".parquet") and n not in superseded)
    return live + [LiveFile(f"{folder}/{name}", listed[name]) for name in parts]
