"""Validating outcome rows: ``(request_id, outcome, observed_at)`` and an optional ``row``, from JSON or a frame.

The body as a whole must be a JSON list of objects, or ``{"outcomes": [...]}``; anything else is refused with a
message naming the problem (the HTTP layer answers 422). Inside a valid body, each row is judged alone: a bad row is
reported and counted ``malformed``, never stored, and never stops the good rows.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from monitors.feedback._store import OutcomeRow

__all__ = ["FUTURE_SKEW_S", "BodyError", "parse_body", "parse_row", "rows_from_frame"]

FUTURE_SKEW_S = 300.0  # an outcome may be stamped this far ahead of the receiver's clock
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII, no spaces: what the sidecar stores
_FIELDS = {"request_id", "outcome", "observed_at", "row"}


class BodyError(ValueError):
    """The body is not a list of outcome objects (the whole request is refused)."""


def _timestamp(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("observed_at must be an ISO 8601 time or unix seconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError("observed_at must be a finite, non-negative number of unix seconds")
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"observed_at {value[:40]!r} is not an ISO 8601 time") from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, datetime | pd.Timestamp):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    raise ValueError("observed_at must be an ISO 8601 time or unix seconds")


def parse_row(item: Any, now: float) -> OutcomeRow:
    """One outcome, or ValueError naming what is wrong with it."""
    if not isinstance(item, dict):
        raise ValueError("an outcome must be an object with request_id, outcome and observed_at")
    missing = sorted({"request_id", "outcome", "observed_at"} - set(item))
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    unexpected = sorted(set(item) - _FIELDS)
    if unexpected:
        raise ValueError(f"unexpected field(s): {', '.join(str(u)[:40] for u in unexpected[:5])}")
    request_id = item["request_id"]
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise ValueError("request_id must be 1-200 printable ASCII characters without spaces")
    outcome = item["outcome"]
    if isinstance(outcome, float) and outcome in (0.0, 1.0):
        outcome = int(outcome)
    if isinstance(outcome, bool):
        outcome = int(outcome)
    if not isinstance(outcome, int) or outcome not in (0, 1):
        raise ValueError("outcome must be 0 or 1 (or false/true)")
    row = item.get("row", 0)
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < 1_000_000:
        raise ValueError("row must be an integer from 0 (the record's position in its request)")
    observed = _timestamp(item["observed_at"])
    if observed > now + FUTURE_SKEW_S:
        raise ValueError(f"observed_at is {observed - now:.0f} s in the future")
    return OutcomeRow(request_id=request_id, outcome=outcome, observed_at=observed, row=row)


def parse_body(document: Any, now: float, max_rows: int) -> tuple[list[OutcomeRow], list[dict[str, Any]]]:
    """The valid rows and the problems of the invalid ones (``{"index", "error"}``); BodyError for the body."""
    if isinstance(document, dict) and set(document) == {"outcomes"}:
        document = document["outcomes"]
    if not isinstance(document, list):
        raise BodyError('the body must be a JSON list of outcomes or {"outcomes": [...]}')
    if len(document) > max_rows:
        raise BodyError(f"{len(document)} outcomes in one request; at most {max_rows} (DRIFTLOOP_FEEDBACK_MAX_ROWS)")
    rows: list[OutcomeRow] = []
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(document):
        try:
            rows.append(parse_row(item, now))
        except ValueError as exc:
            problems.append({"index": index, "error": str(exc)})
    return rows, problems


def rows_from_frame(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A parquet/CSV frame as JSON-ready outcome objects (``driftloop feedback --file``)."""
    missing = sorted({"request_id", "outcome", "observed_at"} - set(frame.columns))
    if missing:
        raise BodyError(f"the file has no column(s) {', '.join(missing)}")
    out: list[dict[str, Any]] = []
    columns = [c for c in ("request_id", "outcome", "observed_at", "row") if c in frame.columns]
    for record in frame[columns].to_dict(orient="records"):
        item: dict[str, Any] = {}
        for name, value in record.items():
            if isinstance(value, pd.Timestamp | datetime):
                value = (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
            elif hasattr(value, "item"):
                value = value.item()
            item[str(name)] = value
        out.append(item)
    return out
