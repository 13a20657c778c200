"""``memoize``: a persistent step-output cache in SQLite (``<home>/engine/memo.sqlite``), keyed like Argo's
ConfigMap caches by (cache name, key), with ``maxAge`` checked at lookup."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["MemoCache"]


class MemoCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS memo (cache TEXT, key TEXT, outputs TEXT, node_id TEXT, created REAL,"
            " PRIMARY KEY (cache, key))"
        )

    def get(self, cache: str, key: str, max_age_seconds: float | None) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT outputs, created FROM memo WHERE cache=? AND key=?", (cache, key)).fetchone()
        if row is None:
            return None
        if max_age_seconds is not None and time.time() - row[1] > max_age_seconds:
            return None
        outputs: dict[str, Any] = json.loads(row[0])
        return outputs

    def put(self, cache: str, key: str, outputs: dict[str, Any], node_id: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO memo VALUES (?, ?, ?, ?, ?)",
                (cache, key, json.dumps(outputs), node_id, time.time()),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
