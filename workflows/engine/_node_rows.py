"""A workflow's ``status.nodes`` as rows of their own, one per node, beside the workflow's row.

Why: a running workflow changes a few nodes at a time, but a 10,000-node status is ~4 MB of JSON. Kept inside
the workflow's body, every snapshot re-wrote all of it and every read (even ``fields=status.phase``) parsed
all of it, so the engine's cost per node grew with the run. As rows, a snapshot upserts only the nodes that
changed (O(changes)), and a read that does not ask for the nodes never touches them (O(1)).

The workflow's body keeps ``"nodes": {}`` as a placeholder where the map sits; a reader that wants the nodes
puts the rows there, in the order the nodes were first written (``rowid``: an upsert keeps it). A body written
before this existed has its nodes inside and no rows: it is read as it is.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

__all__ = ["NODES_SCHEMA", "attach_nodes", "delete_nodes", "split_nodes", "wants_nodes", "write_nodes"]

NODES_SCHEMA = """
CREATE TABLE IF NOT EXISTS workflow_nodes (
    object_seq INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (object_seq, node_id)
)
"""


def split_nodes(obj: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
    """(the object with a placeholder for its nodes, the encoded nodes) — None when it has no node map."""
    status = obj.get("status")
    if not isinstance(status, dict) or not isinstance(status.get("nodes"), dict):
        return obj, None
    encoded = [(str(node_id), json.dumps(node)) for node_id, node in status["nodes"].items()]
    return {**obj, "status": {**status, "nodes": {}}}, encoded


def write_nodes(db: sqlite3.Connection, seq: int, encoded: Iterable[tuple[str, str]], *, replace: bool) -> None:
    """Upsert encoded nodes of the object ``seq``; ``replace``: they are all its nodes (drop the others)."""
    if replace:
        db.execute("DELETE FROM workflow_nodes WHERE object_seq = ?", (seq,))
    db.executemany(
        "INSERT INTO workflow_nodes(object_seq, node_id, body) VALUES (?, ?, ?) "
        "ON CONFLICT(object_seq, node_id) DO UPDATE SET body = excluded.body",
        ((seq, node_id, body) for node_id, body in encoded),
    )


def delete_nodes(db: sqlite3.Connection, seq: int) -> None:
    db.execute("DELETE FROM workflow_nodes WHERE object_seq = ?", (seq,))


def attach_nodes(db: sqlite3.Connection, seq: int, obj: dict[str, Any]) -> dict[str, Any]:
    """Put the object's node rows into its ``status.nodes`` (one JSON parse for all of them)."""
    rows = db.execute("SELECT node_id, body FROM workflow_nodes WHERE object_seq = ? ORDER BY rowid", (seq,)).fetchall()
    if rows:
        text = "{" + ", ".join(json.dumps(node_id) + ": " + body for node_id, body in rows) + "}"
        status = obj.get("status")
        if not isinstance(status, dict):
            status = obj["status"] = {}
        status["nodes"] = json.loads(text)
    return obj


def wants_nodes(fields: str | None, path: str) -> bool:
    """Does Argo's ``fields`` query parameter keep the node map at ``path`` (``status.nodes``,
    ``items.status.nodes``)? No fields, or an exclusion that does not name it: yes."""
    if not fields or not fields.strip():
        return True
    target = path.split(".")
    exclude = fields.strip().startswith("-")
    paths = [p.strip().split(".") for p in fields.strip().lstrip("-").split(",") if p.strip()]
    if exclude:
        return not any(target[: len(p)] == p for p in paths)
    return any(p[: len(target)] == target or target[: len(p)] == p for p in paths)
