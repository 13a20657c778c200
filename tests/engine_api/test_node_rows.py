"""A workflow's nodes as rows (``_node_rows``): snapshots upsert only changed nodes, reads assemble them in
creation order, a read without ``status.nodes`` skips them, and update/delete keep rows and body in step."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from workflows.engine._node_rows import wants_nodes
from workflows.engine.store import WORKFLOW, Store, db_path


def _node(node_id: str, phase: str = "Running") -> dict:
    return {"id": node_id, "name": node_id, "type": "Pod", "phase": phase}


def _rows(home: Path) -> int:
    with sqlite3.connect(db_path(home)) as db:
        return int(db.execute("SELECT count(*) FROM workflow_nodes").fetchone()[0])


def test_snapshots_upsert_changed_nodes_and_reads_keep_their_order(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    nodes = {f"n{i}": _node(f"n{i}") for i in (3, 1, 2)}  # creation order, not sorted order
    created = store.create({"kind": WORKFLOW, "metadata": {"name": "w", "namespace": "ns"}, "spec": {},
                            "status": {"phase": "Running", "nodes": nodes}})  # fmt: skip
    assert created["status"]["nodes"] == nodes and _rows(tmp_path) == 3
    assert list(store.get(WORKFLOW, "ns", "w")["status"]["nodes"]) == ["n3", "n1", "n2"]

    rest = json.dumps({"kind": WORKFLOW, "spec": {}, "status": {"phase": "Running", "progress": "1/4", "nodes": {}}})
    changed = [("n1", json.dumps(_node("n1", "Succeeded"))), ("n4", json.dumps(_node("n4")))]
    meta = {"name": "w", "namespace": "ns"}
    assert store.write_workflow(WORKFLOW, "ns", "w", meta, rest, "Running", None, changed)
    got = store.get(WORKFLOW, "ns", "w")
    assert list(got["status"]["nodes"]) == ["n3", "n1", "n2", "n4"]  # an upsert keeps a node's place
    assert got["status"]["nodes"]["n1"]["phase"] == "Succeeded" and got["status"]["progress"] == "1/4"

    light = store.get(WORKFLOW, "ns", "w", nodes=False)
    assert light["status"]["nodes"] == {} and light["status"]["progress"] == "1/4"

    assert store.write_workflow(WORKFLOW, "ns", "w", meta, rest, "Running", None, changed[:1], all_nodes=True)
    assert list(store.get(WORKFLOW, "ns", "w")["status"]["nodes"]) == ["n1"]  # all_nodes: the others go

    got["status"]["nodes"] = {"x": _node("x")}
    store.update(got)
    assert list(store.list(WORKFLOW, "ns")[0]["status"]["nodes"]) == ["x"] and _rows(tmp_path) == 1
    store.delete(WORKFLOW, "ns", "w")
    assert _rows(tmp_path) == 0
    assert not store.write_workflow(WORKFLOW, "ns", "w", meta, rest, "Running", None, changed)
    assert _rows(tmp_path) == 0  # a late snapshot of a deleted workflow writes nothing
    store.close()


def test_a_body_stored_before_node_rows_is_read_as_it_is(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    body = {"kind": WORKFLOW, "metadata": {"name": "old", "namespace": "ns"}, "status": {"nodes": {"a": _node("a")}}}
    with sqlite3.connect(db_path(tmp_path)) as db:
        db.execute("INSERT INTO objects(kind, namespace, name, uid, labels, body, created, resource_version) "
                   "VALUES (?, 'ns', 'old', 'u', '{}', ?, '2026-01-01T00:00:00Z', 1)", (WORKFLOW, json.dumps(body)))  # fmt: skip
    assert Store.open(tmp_path).get(WORKFLOW, "ns", "old")["status"]["nodes"] == {"a": _node("a")}


def test_which_fields_need_the_nodes() -> None:
    assert wants_nodes(None, "status.nodes") and wants_nodes("", "status.nodes")
    assert wants_nodes("status", "status.nodes") and wants_nodes("status.nodes.x.phase", "status.nodes")
    assert not wants_nodes("status.phase,status.progress", "status.nodes")
    assert not wants_nodes("-status.nodes", "status.nodes") and wants_nodes("-metadata", "status.nodes")
    assert not wants_nodes("items.metadata.name", "items.status.nodes")
