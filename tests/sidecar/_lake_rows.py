"""The rows the typed-lake tests write: one request every 7 s from the start of an hour, a malformed one now and
then (``test_lake_typed.py``, ``test_lake_typed_predictions.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from monitors.lake import LakeRow

__all__ = ["NOW", "T0", "hour_rows"]

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=4)


def hour_rows(
    hour: int,
    count: int,
    *,
    inputs: Callable[[int], Any],
    prediction: Callable[[int], Any],
    row: Callable[[int], int] = lambda i: 0,
    prefix: str = "r",
    malformed_every: int = 0,
) -> list[LakeRow]:
    """``count`` requests of hour ``hour`` after :data:`T0`; with ``malformed_every``, request 3 of every that many
    is a malformed body (status 400, no inputs)."""
    rows = []
    for i in range(count):
        ts = T0 + timedelta(hours=hour, seconds=7 * i)
        if malformed_every and i % malformed_every == 3:
            rows.append(LakeRow(f"{prefix}{hour}-{i}", ts, "3", 400, 0.5, error="not JSON", raw="{oops"))
            continue
        rows.append(
            LakeRow(f"{prefix}{hour}-{i}", ts, "3", 200, 1.5, row=row(i), inputs=inputs(i), prediction=prediction(i))
        )
    return rows
