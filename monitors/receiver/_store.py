"""The receiver's decision store (SQLite, WAL, synchronous=FULL): what makes a re-sent alert a duplicate.

Two tables. ``incidents`` has one row per incident key (model + fingerprint + startsAt) under a UNIQUE primary
key: the row that wins the INSERT is the one decision that can submit, whatever the concurrency; it also carries
the submission's state (``pending`` → ``submitted`` → ``finished``), so a crash between deciding and submitting is
finished on restart. ``decisions`` is the append-only log of every alert seen, with its decision and reason.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["DecisionStore", "Incident", "Outcome"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, fingerprint TEXT NOT NULL, starts_at TEXT NOT NULL,
    decided_at REAL NOT NULL, decision TEXT NOT NULL, reason TEXT NOT NULL,
    state TEXT NOT NULL, workflow TEXT, attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT, phase TEXT, alert TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_by_model ON incidents (model, decision, decided_at);
CREATE INDEX IF NOT EXISTS incidents_by_state ON incidents (state);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, model TEXT, incident TEXT, fingerprint TEXT,
    status TEXT, decision TEXT NOT NULL, reason TEXT NOT NULL, group_key TEXT
);
"""


@dataclass(frozen=True)
class Outcome:
    decision: str  # ignored | duplicate | cooldown | in-flight | submit
    reason: str
    incident: str | None = None


@dataclass(frozen=True)
class Incident:
    key: str
    model: str
    fingerprint: str
    workflow: str
    attempts: int
    alert: dict[str, Any]


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DecisionStore:
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
            db.row_factory = sqlite3.Row
            yield db
        finally:
            db.close()

    def healthy(self) -> bool:
        try:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
            return True
        except sqlite3.Error:
            return False

    def known(self, key: str) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM incidents WHERE key = ?", (key,)).fetchone() is not None

    def record(self, entries: list[tuple[dict[str, Any], Outcome | None]], cooldown_s: float) -> list[Outcome]:
        """Decide and record a notification's alerts in ONE durable transaction; returns the final outcomes.

        An entry's outcome is either final (ignored, in-flight) or None: then the incident is new unless the
        store says otherwise — already decided (``duplicate``) or the model's cooldown running (``cooldown``) —
        and otherwise it wins the INSERT and becomes ``submit`` with state ``pending``.
        """
        now = time.time()
        outcomes: list[Outcome] = []
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for entry, preliminary in entries:
                    outcome = self._decide(db, entry, preliminary, cooldown_s, now)
                    outcomes.append(outcome)
                    db.execute(
                        "INSERT INTO decisions (time, model, incident, fingerprint, status, decision, reason, group_key)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (now, entry.get("model"), outcome.incident, entry.get("fingerprint"), entry.get("status"),
                         outcome.decision, outcome.reason, entry.get("group_key")),
                    )  # fmt: skip
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return outcomes

    def _decide(
        self, db: sqlite3.Connection, entry: dict[str, Any], preliminary: Outcome | None, cooldown_s: float, now: float
    ) -> Outcome:
        key = entry.get("key")
        if key is None:
            assert preliminary is not None
            return preliminary
        existing = db.execute("SELECT decision, workflow FROM incidents WHERE key = ?", (key,)).fetchone()
        if existing is not None:
            return Outcome("duplicate", f"incident already decided: {existing['decision']}", key)
        # the cooldown is per model AND per trigger: a drift retrain (new inputs) does not answer a live-quality drop
        # (new labels), so a quality incident minutes after a drift retrain still retrains; the in-flight check
        # (one alert-started retrain of a model at a time) still holds across both
        trigger = _trigger_of(entry.get("alert"))
        rows = db.execute(
            "SELECT key, decided_at, alert FROM incidents WHERE model = ? AND decision = 'submit' AND decided_at > ?"
            " ORDER BY decided_at DESC",
            (entry["model"], now - cooldown_s),
        ).fetchall()
        last = next((row for row in rows if _trigger_of(row["alert"]) == trigger), None)
        if preliminary is None and last is not None:
            left = cooldown_s - (now - last["decided_at"])
            preliminary = Outcome("cooldown", f"a {trigger} retrain was submitted {now - last['decided_at']:.0f} s "
                                  f"ago for incident {last['key'][:12]}…; cooldown ends in {left:.0f} s", key)  # fmt: skip
        outcome = preliminary or Outcome("submit", f"new {trigger} incident", key)
        state = "pending" if outcome.decision == "submit" else "none"
        db.execute(
            "INSERT INTO incidents (key, model, fingerprint, starts_at, decided_at, decision, reason, state, workflow,"
            " alert) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, entry["model"], entry["fingerprint"], entry["starts_at"], now, outcome.decision, outcome.reason,
             state, entry.get("workflow") if state == "pending" else None, json.dumps(entry["alert"])),
        )  # fmt: skip
        return Outcome(outcome.decision, outcome.reason, key)

    def pending(self, now: float | None = None) -> list[Incident]:
        """Incidents decided ``submit`` whose workflow is not known to exist yet (due now)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM incidents WHERE state = 'pending' AND next_attempt <= ? ORDER BY decided_at",
                (time.time() if now is None else now,),
            ).fetchall()
        return [
            Incident(r["key"], r["model"], r["fingerprint"], r["workflow"], r["attempts"], json.loads(r["alert"]))
            for r in rows
        ]

    def mark_submitted(self, key: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE incidents SET state = 'submitted', last_error = NULL WHERE key = ?", (key,))

    def mark_failed(self, key: str, error: str, retry_in_s: float) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE incidents SET attempts = attempts + 1, last_error = ?, next_attempt = ? WHERE key = ?",
                (error[:2000], time.time() + retry_in_s, key),
            )

    def running(self) -> list[tuple[str, str, str]]:
        """(key, model, workflow) of submitted retrains whose final phase is not recorded yet."""
        with self._connect() as db:
            rows = db.execute("SELECT key, model, workflow FROM incidents WHERE state = 'submitted'").fetchall()
        return [(r["key"], r["model"], r["workflow"]) for r in rows]

    def mark_finished(self, key: str, phase: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE incidents SET state = 'finished', phase = ? WHERE key = ?", (phase, key))

    def decisions(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Newest first, each with its incident's workflow, submission state and last error."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT d.*, i.workflow AS workflow, i.state AS state, i.last_error AS last_error, i.phase AS phase,"
                " i.decision AS incident_decision FROM decisions d LEFT JOIN incidents i ON i.key = d.incident"
                " ORDER BY d.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        out = []
        for row in rows:
            submitted = row["decision"] == "submit"
            out.append({
                "time": _iso(row["time"]), "model": row["model"], "incident": row["incident"],
                "fingerprint": row["fingerprint"], "status": row["status"], "decision": row["decision"],
                "reason": row["reason"], "group_key": row["group_key"],
                "workflow": row["workflow"] if submitted else None,
                "submission": row["state"] if submitted else None,
                "phase": row["phase"] if submitted else None,
                "error": row["last_error"] if submitted else None,
            })  # fmt: skip
        return out

    def submitted_workflows(self) -> list[str]:
        with self._connect() as db:
            rows = db.execute("SELECT workflow FROM incidents WHERE state IN ('submitted', 'finished')").fetchall()
        return [r["workflow"] for r in rows]


def _trigger_of(alert: Any) -> str:
    """The retrain trigger of a stored or incoming alert: its ``trigger`` label (quality), else drift."""
    if isinstance(alert, str):
        try:
            alert = json.loads(alert)
        except ValueError:
            return "drift"
    labels = alert.get("labels") if isinstance(alert, dict) else None
    return str((labels or {}).get("trigger") or "drift")
