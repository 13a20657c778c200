"""retryStrategy decisions: which failures are retried, and how long to back off between attempts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from driftloop.errors import EngineError
from workflows.engine.expressions._gotime import parse_duration as go_duration

__all__ = ["RetryPlan", "parse_duration"]

TRANSIENT = re.compile(r"(?i)(transient|timeout|connection reset|interrupted by engine restart|sandbox)")


def parse_duration(value: Any) -> float:
    """Seconds from plain numbers (5, "5", "2.5": Argo's default unit) or Go durations ("1m30s", "500ms")."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        return go_duration(text).total_seconds()
    except ValueError:
        raise EngineError(
            f"{value!r} is not a duration", hint="use Go durations like 30s, 2m, 1h30m, or seconds"
        ) from None


@dataclass(frozen=True)
class RetryPlan:
    """A template's retryStrategy, parsed once."""

    limit: int | None
    policy: str
    expression: str | None
    backoff_seconds: float
    factor: float
    max_duration: float | None
    cap: float | None

    @classmethod
    def parse(cls, strategy: dict[str, Any]) -> RetryPlan:
        backoff = strategy.get("backoff") or {}
        limit = strategy.get("limit")
        if limit not in (None, "") and not str(limit).strip().isdigit():
            raise EngineError(
                f"retryStrategy.limit {str(limit)!r} is not a whole number",
                hint="use an integer, or a parameter/expression that resolves to one ({{inputs.parameters.limit}})",
            )
        return cls(
            limit=None if limit in (None, "") else int(str(limit).strip()),
            policy=str(strategy.get("retryPolicy") or "OnFailure"),
            expression=strategy.get("expression"),
            backoff_seconds=parse_duration(backoff["duration"]) if backoff.get("duration") else 0.0,
            factor=float(str(backoff.get("factor", 2) or 2)),
            max_duration=parse_duration(backoff["maxDuration"]) if backoff.get("maxDuration") else None,
            cap=parse_duration(backoff["cap"]) if backoff.get("cap") else None,
        )

    def policy_allows(self, phase: str, message: str) -> bool:
        if phase == "Succeeded":
            return False
        if self.policy == "Always":
            return True
        if self.policy == "OnError":
            return phase == "Error"
        if self.policy == "OnTransientError":
            return phase == "Error" and bool(TRANSIENT.search(message or ""))
        return phase == "Failed"  # OnFailure (Argo's default)

    def attempts_left(self, attempts_done: int) -> bool:
        return self.limit is None or attempts_done <= self.limit

    def backoff_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (1 = the first retry)."""
        if self.backoff_seconds <= 0:
            return 0.0
        delay = self.backoff_seconds * (self.factor ** (attempt - 1))
        return min(delay, self.cap) if self.cap else delay
