"""Durable state of the embedded engine: one SQLite database (WAL) under ``$DRIFTLOOP_HOME/engine``.

Every Argo object the engine knows (workflows, workflow templates, cluster workflow templates, cron
workflows) is one row: the full JSON body plus the columns we filter on; a workflow's nodes are rows of their
own (``_node_rows``), so that a running workflow's snapshot writes only the nodes that changed. Writes are short transactions
under ``BEGIN IMMEDIATE`` so concurrent threads *and* processes never corrupt the file; a crash (kill -9)
loses at most the write in flight, never an earlier one.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftloop.errors import ConflictError, NotFoundError, ServiceUnavailableError
from workflows.engine._node_rows import NODES_SCHEMA, attach_nodes, delete_nodes, split_nodes, write_nodes
from workflows.engine._selectors import matches_labels, parse_label_selector

__all__ = [
    "CLUSTER_WORKFLOW_TEMPLATE",
    "CRON_WORKFLOW",
    "KINDS",
    "WORKFLOW",
    "WORKFLOW_TEMPLATE",
    "Store",
    "db_path",
    "utc_now",
]

WORKFLOW = "Workflow"
WORKFLOW_TEMPLATE = "WorkflowTemplate"
CLUSTER_WORKFLOW_TEMPLATE = "ClusterWorkflowTemplate"
CRON_WORKFLOW = "CronWorkflow"
KINDS = (WORKFLOW, WORKFLOW_TEMPLATE, CLUSTER_WORKFLOW_TEMPLATE, CRON_WORKFLOW)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL,
    labels TEXT NOT NULL,
    phase TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL,
    created TEXT NOT NULL,
    finished TEXT,
    resource_version INTEGER NOT NULL,
    UNIQUE (kind, namespace, name)
);
CREATE INDEX IF NOT EXISTS objects_kind_phase ON objects (kind, phase);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_SCHEMA += ";" + NODES_SCHEMA


def utc_now() -> str:
    """Kubernetes-style timestamp (RFC 3339, second precision, Z)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def db_path(home: Path) -> Path:
    return home / "engine" / "engine.db"


def _scope_namespace(kind: str, namespace: str | None) -> str:
    """Cluster-scoped objects live in the '' namespace whatever the caller says."""
    return "" if kind == CLUSTER_WORKFLOW_TEMPLATE else (namespace or "")


class Store:
    """Thread-safe (one connection behind a lock) and process-safe (SQLite locking, busy timeout)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self.closed = False
        self._db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        with self._write() as db:
            for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                db.execute(statement)

    @classmethod
    def open(cls, home: Path) -> Store:
        return cls(db_path(home))

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._db.close()

    def _check_open(self) -> None:
        """After :meth:`close` (engine shutdown) say so, instead of sqlite3's 'closed database' traceback."""
        if self.closed:
            raise ServiceUnavailableError(
                "the engine is shutting down", hint="retry once it has restarted (`driftloop engine serve`)"
            )

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_open()
            yield self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: readers go on, writers (any process) queue on the file lock."""
        with self._lock:
            self._check_open()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _next_version(self, db: sqlite3.Connection) -> int:
        db.execute(
            "INSERT INTO counters(name, value) VALUES ('resource_version', 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1"
        )
        row = db.execute("SELECT value FROM counters WHERE name = 'resource_version'").fetchone()
        return int(row[0])

    # ---- writes -------------------------------------------------------------------------------------
    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Insert a new object (metadata.name must be set); ConflictError when the name is taken."""
        obj = copy.deepcopy(obj)
        kind = obj["kind"]
        meta = obj.setdefault("metadata", {})
        namespace = _scope_namespace(kind, meta.get("namespace"))
        if kind == CLUSTER_WORKFLOW_TEMPLATE:
            meta.pop("namespace", None)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", utc_now())
        stored, nodes = split_nodes(obj) if kind == WORKFLOW else (obj, None)
        with self._write() as db:
            if self._row(db, kind, namespace, meta["name"]) is not None:
                raise ConflictError(
                    f'{kind.lower()}s.argoproj.io "{meta["name"]}" already exists',
                    hint="pick another name, use generateName, or delete/update the existing object",
                )
            meta["resourceVersion"] = str(self._next_version(db))
            db.execute(
                "INSERT INTO objects(kind, namespace, name, uid, labels, phase, body, created, finished, "
                "resource_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    namespace,
                    meta["name"],
                    meta["uid"],
                    *self._columns(stored),
                    meta["creationTimestamp"],
                    self._finished(obj),
                    int(meta["resourceVersion"]),
                ),
            )
            if nodes is not None:
                seq = db.execute("SELECT last_insert_rowid()").fetchone()[0]
                write_nodes(db, int(seq), nodes, replace=True)
        return obj

    def update(self, obj: dict[str, Any], *, expect_version: str | None = None) -> dict[str, Any]:
        """Replace an object's body. With ``expect_version`` a concurrent change raises ConflictError.

        The caller's object is not changed (the result is a shallow copy with new metadata)."""
        obj = {**obj, "metadata": dict(obj["metadata"])}
        kind, meta = obj["kind"], obj["metadata"]
        namespace = _scope_namespace(kind, meta.get("namespace"))
        with self._write() as db:
            row = self._row(db, kind, namespace, meta["name"])
            if row is None:
                raise self._not_found(kind, meta["name"])
            if expect_version and str(row["resource_version"]) != str(expect_version):
                raise ConflictError(
                    f'the {kind} "{meta["name"]}" was modified since version {expect_version}',
                    hint="get the object again, re-apply your change and retry",
                )
            meta["uid"] = row["uid"]
            meta["creationTimestamp"] = row["created"]
            meta["resourceVersion"] = str(self._next_version(db))
            stored, nodes = split_nodes(obj) if kind == WORKFLOW else (obj, None)
            labels, phase, body = self._columns(stored)
            db.execute(
                "UPDATE objects SET labels = ?, phase = ?, body = ?, finished = ?, resource_version = ? WHERE seq = ?",
                (labels, phase, body, self._finished(obj), int(meta["resourceVersion"]), row["seq"]),
            )
            if kind == WORKFLOW:
                write_nodes(db, int(row["seq"]), nodes or [], replace=True)
        return obj

    def write_workflow(
        self,
        kind: str,
        namespace: str,
        name: str,
        meta: dict[str, Any],
        rest: str,
        phase: str,
        finished: str | None,
        nodes: Iterable[tuple[str, str]] = (),
        *,
        all_nodes: bool = False,
    ) -> bool:
        """Replace a running workflow's body from pre-serialised parts (``rest``: the JSON object without
        ``metadata``, its ``status.nodes`` an empty placeholder) and upsert the encoded ``nodes`` (id, JSON)
        that changed — ``all_nodes``: they are all of them — without parsing what is stored; False when the
        object no longer exists (deleted)."""
        with self._write() as db:
            row = db.execute(
                "SELECT seq, uid, created FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
                (kind, _scope_namespace(kind, namespace), name),
            ).fetchone()
            if row is None:
                return False
            seq, uid, created = row
            version = self._next_version(db)
            meta = {**meta, "uid": uid, "creationTimestamp": created, "resourceVersion": str(version)}
            inner = rest.strip()[1:-1].strip()
            body = '{"metadata": ' + json.dumps(meta) + (", " + inner if inner else "") + "}"
            labels = json.dumps(meta.get("labels") or {}, sort_keys=True)
            db.execute(
                "UPDATE objects SET labels = ?, phase = ?, body = ?, finished = ?, resource_version = ? WHERE seq = ?",
                (labels, phase, body, str(finished) if finished else None, version, seq),
            )
            write_nodes(db, int(seq), nodes, replace=all_nodes)
        return True

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        with self._write() as db:
            row = self._row(db, kind, _scope_namespace(kind, namespace), name)
            if row is None:
                raise self._not_found(kind, name)
            db.execute("DELETE FROM objects WHERE seq = ?", (row["seq"],))
            delete_nodes(db, int(row["seq"]))

    # ---- reads --------------------------------------------------------------------------------------
    def find(self, kind: str, namespace: str | None, name: str, *, nodes: bool = True) -> dict[str, Any] | None:
        """The object, or None; ``nodes=False``: a workflow without its node map (cheap for a big run)."""
        with self._read() as db:
            row = self._row(db, kind, _scope_namespace(kind, namespace), name)
            if row is None:
                return None
            obj = dict(json.loads(row["body"]))
            if kind == WORKFLOW and nodes:
                attach_nodes(db, int(row["seq"]), obj)
        return obj

    def get(self, kind: str, namespace: str | None, name: str, *, nodes: bool = True) -> dict[str, Any]:
        found = self.find(kind, namespace, name, nodes=nodes)
        if found is None:
            raise self._not_found(kind, name)
        return found

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        phases: tuple[str, ...] | None = None,
        nodes: bool = True,
    ) -> list[dict[str, Any]]:
        """Objects in creation order (oldest first); namespace None or '' means every namespace; ``nodes=False``:
        workflows without their node maps."""
        requirements = parse_label_selector(label_selector or "")
        sql = "SELECT seq, labels, body FROM objects WHERE kind = ?"
        args: list[Any] = [kind]
        scoped = _scope_namespace(kind, namespace)
        if scoped:
            sql += " AND namespace = ?"
            args.append(scoped)
        if phases is not None:
            sql += f" AND phase IN ({', '.join('?' for _ in phases)})"
            args.extend(phases)
        with self._read() as db:
            rows = db.execute(sql + " ORDER BY created, seq", args).fetchall()
            found = [
                (seq, json.loads(body))
                for seq, labels, body in rows
                if matches_labels(json.loads(labels), requirements)
            ]
            if kind == WORKFLOW and nodes:
                for seq, obj in found:
                    attach_nodes(db, int(seq), obj)
        return [obj for _, obj in found]

    # ---- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _row(db: sqlite3.Connection, kind: str, namespace: str, name: str) -> sqlite3.Row | None:
        db.row_factory = sqlite3.Row
        try:
            row: sqlite3.Row | None = db.execute(
                "SELECT seq, body, resource_version, uid, created FROM objects "
                "WHERE kind = ? AND namespace = ? AND name = ?",
                (kind, namespace, name),
            ).fetchone()
        finally:
            db.row_factory = None
        return row

    @staticmethod
    def _columns(obj: dict[str, Any]) -> tuple[str, str, str]:
        labels = obj.get("metadata", {}).get("labels") or {}
        phase = (obj.get("status") or {}).get("phase") or ""
        return json.dumps(labels, sort_keys=True), phase, json.dumps(obj)

    @staticmethod
    def _finished(obj: dict[str, Any]) -> str | None:
        finished = (obj.get("status") or {}).get("finishedAt")
        return str(finished) if finished else None

    @staticmethod
    def _not_found(kind: str, name: str) -> NotFoundError:
        return NotFoundError(
            f'{kind.lower()}s.argoproj.io "{name}" not found',
            hint="list what exists with `driftloop runs list` (workflows) or check the name and namespace",
        )
