"""Writing a running workflow's status to the store: one writer thread per run, changes coalesced.

Why not one write per node change: a write serialises the whole workflow, so a run of n nodes (about three
changes each) costs O(n²) — 1,000 nodes took 103 s, and writes from many threads landed out of order (a GET
showed 2,765 nodes, then 1,622). Here every change only sets a flag; the writer wakes, waits a short interval
(longer when writes get expensive: at most a tenth of the time goes to writing), serialises one consistent
snapshot under the book's lock — the workflow without its nodes, and only the nodes changed since the last
snapshot (the store keeps nodes as rows, ``_node_rows``) — and stores it in one transaction. Snapshots are taken in order by one thread, so what a GET shows
only ever grows. A kill -9 loses at most the changes of the last interval: the nodes that finished in it run
again, as pods whose completion the Argo controller had not recorded do.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from workflows.engine.store import WORKFLOW, Store

__all__ = ["MAX_INTERVAL_SECONDS", "MIN_INTERVAL_SECONDS", "RunPersister"]

log = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS = 0.1
MAX_INTERVAL_SECONDS = 1.0
WRITE_SHARE = 0.1  # at most this share of the wall time goes to writing snapshots
PHASE_LABEL = "workflows.argoproj.io/phase"
COMPLETED_LABEL = "workflows.argoproj.io/completed"
_FINISHED = ("Succeeded", "Failed", "Error")
REQUEUED_MESSAGE = "the engine was stopped while this pod ran; it runs again when the engine restarts"


class RunPersister:
    """The store's view of one run; ``changed`` is cheap and may be called from any thread."""

    def __init__(self, store: Store, control: Any = None) -> None:
        self.store = store
        self.control = control
        self.book: Any = None
        self._dirty = threading.Event()
        self._stopped = threading.Event()
        self._write_lock = threading.Lock()
        self._forgotten = False
        self._interval = MIN_INTERVAL_SECONDS
        self._thread: threading.Thread | None = None
        self._wrote_all = False  # has a snapshot written every node (after which changed ones suffice)?

    # ---- wiring -------------------------------------------------------------------------------------
    def attach(self, book: Any) -> None:
        """Called by the runner with the run's StatusBook; starts the writer thread."""
        self.book = book
        name = book.workflow["metadata"]["name"]
        self._thread = threading.Thread(target=self._loop, name=f"persist:{name}", daemon=True)
        self._thread.start()

    def changed(self) -> None:
        self._dirty.set()

    # ---- control ------------------------------------------------------------------------------------
    @property
    def forgotten(self) -> bool:
        return self._forgotten

    def flush(self, *, interrupted: bool = False, full: bool = False) -> None:
        """Write the current state now (no-op once closed, or before the runner attached). ``interrupted``:
        the engine is stopping and kills the running pods; they are stored Pending, to run again. ``full``:
        encode every node afresh (the last write of a run: nothing may rest on the change tracking)."""
        with self._write_lock:
            if self._forgotten or self.book is None:
                return
            self._dirty.clear()
            started = time.monotonic()
            parts, nodes, all_nodes = self._serialize(interrupted, full or interrupted or not self._wrote_all)
            self._wrote_all = False  # until this write is known to have landed: else the next writes them all
            self.store.write_workflow(*parts, nodes, all_nodes=all_nodes)
            self._wrote_all = True
            cost = time.monotonic() - started
        self._interval = min(MAX_INTERVAL_SECONDS, max(MIN_INTERVAL_SECONDS, cost / WRITE_SHARE))

    def forget(self) -> None:
        """The workflow was deleted: never write it again (a late write must not resurrect it)."""
        self._close_for_good()

    def close(self, *, final: bool = True, interrupted: bool = False) -> None:
        """Write the last state (``final``), then stop writing for good."""
        if final:
            self.flush(interrupted=interrupted, full=True)
        self._close_for_good()

    def _close_for_good(self) -> None:
        with self._write_lock:
            self._forgotten = True
        self._stopped.set()
        self._dirty.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    # ---- internals ----------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._dirty.wait()
            if self._stopped.wait(self._interval):
                return
            try:
                self.flush()
            except Exception:  # never let the writer die silently: the next change tries again
                if self._stopped.is_set() or self.store.closed:
                    return  # shutting down: the next start resumes from the last write
                log.exception("writing the status of a workflow failed")

    def _serialize(
        self, interrupted: bool, full: bool
    ) -> tuple[tuple[str, str, str, dict[str, Any], str, str, str | None], list[tuple[str, str]], bool]:
        """One consistent snapshot: ((kind, namespace, name, metadata, rest JSON, phase, finishedAt), nodes,
        all nodes?). ``rest`` is the object without metadata, its ``status.nodes`` a placeholder, spec.shutdown
        set as Argo sets it; ``nodes`` the (id, JSON) of the nodes changed since the last snapshot (``full``:
        of all of them). Under the book's lock, so the run is held up only for what changed."""
        book = self.book
        with book.lock:
            book.refresh_progress()
            workflow = book.workflow
            status = workflow.get("status") or {}
            nodes = status.get("nodes") or {}
            changed = book.take_dirty_nodes()
            source = _requeue_running_pods(nodes) if interrupted else nodes
            wanted = source.keys() if full else changed
            encoded = [(node_id, json.dumps(source[node_id])) for node_id in wanted if node_id in source]
            meta = dict(workflow.get("metadata") or {})
            phase = str(status.get("phase") or "")
            labels = dict(meta.get("labels") or {})
            if phase:
                labels[PHASE_LABEL] = phase
            labels[COMPLETED_LABEL] = "true" if phase in _FINISHED else "false"
            meta["labels"] = labels
            rest = {k: v for k, v in workflow.items() if k not in ("metadata", "status")}
            shutdown = self._shutdown()
            if shutdown:
                rest["spec"] = {**(rest.get("spec") or {}), "shutdown": shutdown}
            rest["status"] = {**{k: v for k, v in status.items() if k != "nodes"}, "nodes": {}}
            rest_json = json.dumps(rest)
            finished = status.get("finishedAt")
        namespace, name = str(meta.get("namespace") or ""), str(meta["name"])
        return (WORKFLOW, namespace, name, meta, rest_json, phase, finished), encoded, full

    def _shutdown(self) -> str | None:
        control = self.control
        if control is None:
            return None
        if control.terminate_message:
            return "Terminate"
        if control.stop_message:
            return "Stop"
        return None


def _requeue_running_pods(nodes: dict[str, Any]) -> dict[str, Any]:
    """Running pods as Pending (the runner re-runs Pending pods after a restart, errors Running ones)."""
    return {
        node_id: {**node, "phase": "Pending", "message": REQUEUED_MESSAGE}
        if node.get("type") == "Pod" and node.get("phase") == "Running"
        else node
        for node_id, node in nodes.items()
    }
