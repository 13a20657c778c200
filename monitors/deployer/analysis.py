"""The canary conditions, in one place: what the AnalysisTemplate (``manifests/serving/base/analysis-template.yaml``)
checks on a cluster, as code ``driftloop deployer`` applies to each canary window (``deployer.py``). A test keeps the
two equal.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_ERROR_RATE", "MAX_P99_LATENCY_S", "MIN_CANARY_REQUESTS", "Verdict", "judge"]

MAX_ERROR_RATE = 0.01  # share of 5xx (or unreachable) answers
MAX_P99_LATENCY_S = 0.5
MIN_CANARY_REQUESTS = 20  # fewer: no verdict yet ("inconclusive", like the template's -1), never a silent pass


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "pass" | "fail" | "inconclusive"
    reason: str


def judge(requests: int, errors: int, p99_s: float | None) -> Verdict:
    """The AnalysisTemplate's conditions on one canary window."""
    if requests < MIN_CANARY_REQUESTS or p99_s is None:
        return Verdict("inconclusive", f"only {requests} canary requests (need {MIN_CANARY_REQUESTS})")
    rate = errors / requests
    if rate > MAX_ERROR_RATE:
        return Verdict("fail", f"error rate {rate:.3f} > {MAX_ERROR_RATE}")
    if p99_s > MAX_P99_LATENCY_S:
        return Verdict("fail", f"p99 latency {p99_s:.3f}s > {MAX_P99_LATENCY_S}s")
    return Verdict("pass", f"error rate {rate:.3f}, p99 {p99_s:.3f}s over {requests} requests")
