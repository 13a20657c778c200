"""The SQLite store: CRUD, label selection, versions, and concurrent writers (threads and processes)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from driftloop.errors import ConflictError, NotFoundError
from workflows.engine.store import CLUSTER_WORKFLOW_TEMPLATE, WORKFLOW, Store, db_path


def _workflow(name: str, labels: dict[str, str] | None = None, phase: str = "") -> dict:
    body = {"kind": WORKFLOW, "metadata": {"name": name, "namespace": "ns", "labels": labels or {}}, "spec": {}}
    if phase:
        body["status"] = {"phase": phase}
    return body


def test_create_get_update_delete(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    created = store.create(_workflow("a", {"app": "x"}))
    assert created["metadata"]["uid"] and created["metadata"]["creationTimestamp"]
    with pytest.raises(ConflictError, match="already exists"):
        store.create(_workflow("a"))
    created["status"] = {"phase": "Succeeded", "finishedAt": "2026-01-01T00:00:00Z"}
    updated = store.update(created)
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert store.get(WORKFLOW, "ns", "a")["status"]["phase"] == "Succeeded"
    with pytest.raises(ConflictError, match="modified"):
        store.update(updated, expect_version=created["metadata"]["resourceVersion"])
    store.delete(WORKFLOW, "ns", "a")
    with pytest.raises(NotFoundError):
        store.get(WORKFLOW, "ns", "a")
    with pytest.raises(NotFoundError):
        store.delete(WORKFLOW, "ns", "a")


def test_list_filters_by_namespace_labels_and_phase(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.create(_workflow("a", {"app": "x", "tier": "1"}, "Running"))
    store.create(_workflow("b", {"app": "y"}, "Succeeded"))
    other = _workflow("c", {"app": "x"})
    other["metadata"]["namespace"] = "elsewhere"
    store.create(other)

    def names(**kwargs) -> list[str]:
        return [w["metadata"]["name"] for w in store.list(WORKFLOW, **kwargs)]

    assert names(namespace="ns") == ["a", "b"]
    assert names() == ["a", "b", "c"]
    assert names(namespace="ns", label_selector="app=x") == ["a"]
    assert names(label_selector="app notin (y),!tier") == ["c"]
    assert names(label_selector="tier") == ["a"]
    assert names(namespace="ns", phases=("Succeeded",)) == ["b"]


def test_cluster_scoped_objects_ignore_namespace(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.create({"kind": CLUSTER_WORKFLOW_TEMPLATE, "metadata": {"name": "t", "namespace": "ns"}, "spec": {}})
    found = store.get(CLUSTER_WORKFLOW_TEMPLATE, "whatever", "t")
    assert "namespace" not in found["metadata"]


def test_database_is_in_wal_mode_under_home(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    with sqlite3.connect(db_path(tmp_path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _create_many(home: str, prefix: str, count: int) -> None:
    store = Store.open(Path(home))
    for index in range(count):
        store.create(_workflow(f"{prefix}-{index}"))
        body = store.get(WORKFLOW, "ns", f"{prefix}-{index}")
        body["status"] = {"phase": "Succeeded"}
        store.update(body)
    store.close()


def test_concurrent_threads_and_processes_never_corrupt(tmp_path: Path) -> None:
    threads = [threading.Thread(target=_create_many, args=(str(tmp_path), f"t{i}", 15)) for i in range(4)]
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_create_many, args=(str(tmp_path), f"p{i}", 15)) for i in range(3)]
    for worker in [*threads, *processes]:
        worker.start()
    for thread in threads:
        thread.join(60)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    store = Store.open(tmp_path)
    workflows = store.list(WORKFLOW, "ns")
    assert len(workflows) == 7 * 15
    assert {w["status"]["phase"] for w in workflows} == {"Succeeded"}
    versions = [int(w["metadata"]["resourceVersion"]) for w in workflows]
    assert len(set(versions)) == len(versions)
    with sqlite3.connect(db_path(tmp_path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
