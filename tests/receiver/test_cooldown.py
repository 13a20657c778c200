"""The receiver's cooldown is per model and per trigger, in the real SQLite decision store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitors.receiver._store import DecisionStore


def _entry(fingerprint: str, trigger: str | None) -> dict[str, Any]:
    labels = {"alertname": "A", "model": "credit-risk", **({"trigger": trigger} if trigger else {})}
    return {"key": f"credit-risk/{fingerprint}/t", "model": "credit-risk", "fingerprint": fingerprint,
            "status": "firing", "starts_at": "t", "group_key": "g", "workflow": f"w-{fingerprint}",
            "alert": {"labels": labels, "annotations": {}, "fingerprint": fingerprint, "starts_at": "t"}}  # fmt: skip


def test_a_quality_incident_is_not_held_back_by_a_drift_retrains_cooldown(tmp_path: Path) -> None:
    store = DecisionStore(tmp_path / "decisions.db")
    decide = lambda entry: store.record([(entry, None)], 3600)[0]  # noqa: E731
    assert decide(_entry("d1", None)).decision == "submit"  # a drift alert (no trigger label)
    second_drift = decide(_entry("d2", "drift"))
    assert second_drift.decision == "cooldown" and "drift retrain" in second_drift.reason
    assert decide(_entry("q1", "quality")).decision == "submit"  # new labels, not new inputs: its own cooldown
    assert decide(_entry("q2", "quality")).decision == "cooldown"
    assert decide(_entry("q1", "quality")).decision == "duplicate"
