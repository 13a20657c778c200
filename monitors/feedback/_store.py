"""The outcome store (SQLite, WAL, synchronous=FULL) beside the lake: ``<home>/feedback/outcomes.db``.

One table of outcomes keyed by ``(request_id, row)`` — the first outcome for a record wins and a later one is a
*duplicate*, so an outcome is never counted twice — plus the *counts* of every result (accepted, duplicate, late,
unknown, malformed) and the ``batches`` a client named with an idempotency key. One ingest is ONE transaction:
rows, counts and the batch key commit together or not at all, so a crash mid-ingest loses nothing the client was
told is stored (no 2xx was sent, the client re-sends) and a re-sent batch counts nothing twice (its key is known).
The monitor joins captured payloads to these rows by request id (``outcomes_for``).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["RESULTS", "FeedbackStore", "IngestResult", "OutcomeRow", "feedback_store"]

RESULTS = ("accepted", "duplicate", "late", "unknown", "malformed")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    request_id TEXT NOT NULL, row INTEGER NOT NULL, outcome INTEGER NOT NULL, observed_at REAL NOT NULL,
    received_at REAL NOT NULL, batch TEXT, PRIMARY KEY (request_id, row)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outcomes_by_received ON outcomes (received_at);
CREATE TABLE IF NOT EXISTS counts (result TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS batches (key TEXT PRIMARY KEY, received_at REAL NOT NULL, summary TEXT NOT NULL);
"""
_CHUNK = 500  # request ids per IN (...) query: below SQLite's variable limit


@dataclass(frozen=True)
class OutcomeRow:
    """One validated outcome: the captured record it labels (request id + row in the request), 0/1, when."""

    request_id: str
    outcome: int
    observed_at: float  # unix seconds
    row: int = 0


@dataclass
class IngestResult:
    """What one ingest did; ``replayed`` when its idempotency key was seen before (nothing counted again)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    problems: list[dict[str, Any]] = field(default_factory=list)  # the malformed rows: index and reason
    replayed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "problems": self.problems[:20], "replayed": self.replayed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestResult:
        return cls(dict(data["counts"]), list(data.get("problems", [])), True)


def feedback_store(settings: Any) -> FeedbackStore:
    """The one store of outcomes: ``<home>/feedback/outcomes.db`` (beside the lake under the home)."""
    return FeedbackStore(settings.home / "feedback" / "outcomes.db")


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    def ingest(
        self,
        rows: Iterable[OutcomeRow],
        *,
        malformed: list[dict[str, Any]] | None = None,
        key: str | None = None,
        late_after_s: float = float("inf"),
        known: set[str] | None = None,
        now: float | None = None,
    ) -> IngestResult:
        """Store ``rows`` and count every result in one transaction.

        ``malformed`` are the rows validation refused (counted, not stored). ``known`` (when given) is the set of
        request ids captured in the lake: an outcome for another id is stored (its payload may land later) and
        counted ``unknown``. An outcome observed more than ``late_after_s`` before ``now`` is stored and counted
        ``late``. With ``key``, a batch already ingested returns its first result and changes nothing.
        """
        moment = time.time() if now is None else now
        result = IngestResult(problems=list(malformed or []))
        result.counts["malformed"] = len(result.problems)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                if key is not None:
                    seen = db.execute("SELECT summary FROM batches WHERE key = ?", (key,)).fetchone()
                    if seen is not None:
                        db.execute("ROLLBACK")
                        return IngestResult.from_dict(json.loads(seen[0]))
                for row in rows:
                    inserted = db.execute(
                        "INSERT OR IGNORE INTO outcomes (request_id, row, outcome, observed_at, received_at, batch)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (row.request_id, row.row, row.outcome, row.observed_at, moment, key),
                    ).rowcount
                    if not inserted:
                        result.counts["duplicate"] += 1
                        continue
                    result.counts["accepted"] += 1
                    if moment - row.observed_at > late_after_s:
                        result.counts["late"] += 1
                    if known is not None and row.request_id not in known:
                        result.counts["unknown"] += 1
                for name, n in result.counts.items():
                    if n:
                        db.execute(
                            "INSERT INTO counts (result, n) VALUES (?, ?) ON CONFLICT (result) DO UPDATE SET n = n + ?",
                            (name, n, n),
                        )
                if key is not None:
                    db.execute(
                        "INSERT INTO batches (key, received_at, summary) VALUES (?, ?, ?)",
                        (key, moment, json.dumps(result.to_dict())),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return result

    def counts(self) -> dict[str, int]:
        """Every result counted since the store was created (what the receiver exports as counters)."""
        with self._connect() as db:
            found = dict(db.execute("SELECT result, n FROM counts").fetchall())
        return {name: int(found.get(name, 0)) for name in RESULTS}

    def stored(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0])

    def outcomes_for(self, request_ids: Iterable[str]) -> pd.DataFrame:
        """The outcomes of these request ids: columns ``_request_id``, ``_row``, ``outcome``, ``observed_at``."""
        ids = list(dict.fromkeys(str(i) for i in request_ids))
        found: list[tuple[str, int, int, float]] = []
        with self._connect() as db:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                found += db.execute(
                    f"SELECT request_id, row, outcome, observed_at FROM outcomes WHERE request_id IN ({marks})", chunk
                ).fetchall()
        return pd.DataFrame(found, columns=["_request_id", "_row", "outcome", "observed_at"]).astype(
            {"_request_id": object, "_row": "int64", "outcome": "int64", "observed_at": "float64"}
        )
