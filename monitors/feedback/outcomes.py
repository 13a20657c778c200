"""The true outcomes of replayed traffic (``driftloop traffic --with-outcomes``), posted to ``POST /feedback`` late.

Request ``n`` of a replay carried rows ``[i * batch, (i + 1) * batch)`` of the scenario frame with ``i = n % bodies``
(``monitors.traffic.replay`` cycles through the frame), so its outcomes are the generator's labels of those rows,
one per ``(request_id, row)``. Each leaves ``delay_s`` after its request did; what is due is posted about once a
second, in idempotent batches.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["outcome_items", "send_outcomes"]


def outcome_items(report: Any, labels: np.ndarray, batch: int) -> list[tuple[float, dict[str, Any]]]:
    """(sent at, outcome object) for every row of every answered request."""
    answered = set(report.answered_ids)
    bodies = -(-len(labels) // batch)
    items: list[tuple[float, dict[str, Any]]] = []
    for n, (request_id, sent_at) in enumerate(zip(report.request_ids, report.sent_at, strict=True)):
        if request_id not in answered:
            continue
        start = (n % bodies) * batch
        for row, label in enumerate(labels[start : start + batch]):
            item = {"request_id": request_id, "row": row, "outcome": int(label), "observed_at": sent_at}
            items.append((sent_at, item))
    return items


def send_outcomes(settings: Any, report: Any, labels: np.ndarray, *, batch: int, delay_s: float) -> dict[str, int]:
    """Post the outcomes of ``report``'s answered requests, each ``delay_s`` after its request; the summed counts."""
    from monitors.feedback.cli import post_outcomes
    from monitors.receiver._auth import resolve_token

    token = resolve_token(settings, create=False)
    url = settings.trigger_url.rstrip("/")
    pending = sorted(outcome_items(report, labels, batch), key=lambda pair: pair[0])
    totals: dict[str, int] = {}
    tick = 0
    while pending:
        now = time.time()
        due = [item for sent_at, item in pending if sent_at + delay_s <= now]
        if due:
            for item in due:
                item["observed_at"] = now  # the outcome is observed when it is known
            run = report.request_ids[0].rsplit("-", 1)[0]
            for name, n in post_outcomes(url, token, due, batch_id=f"{run}-{tick}").items():
                totals[name] = totals.get(name, 0) + n
            pending = pending[len(due) :]
            tick += 1
        if pending:
            time.sleep(min(1.0, max(0.05, pending[0][0] + delay_s - time.time())))
    return totals
