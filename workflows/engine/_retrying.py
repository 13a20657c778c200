"""retryStrategy on a node: a Retry node whose children are the attempts ``name(0)``, ``name(1)``…, with
Argo's policies, ``expression`` over ``lastRetry.*``, and exponential backoff bounded by ``cap``/``maxDuration``."""

from __future__ import annotations

import time
from typing import Any

from driftloop.errors import DriftloopError
from workflows.engine._calls import Bound
from workflows.engine._daemon import Daemons
from workflows.engine._io import param_text
from workflows.engine._model import StatusBook
from workflows.engine._retry import RetryPlan
from workflows.engine.expressions import evaluate
from workflows.engine.templating import substitute_obj

__all__ = ["Retrying"]


class Retrying:
    """Mixin of :class:`~workflows.engine._execute.Execution`: the retry loop."""

    book: StatusBook
    daemons: Daemons

    def shutdown_reason(self) -> str | None:
        raise NotImplementedError

    def global_scope(self) -> dict[str, Any]:
        raise NotImplementedError

    def _run_once(
        self, bound: Bound, node_name: str, display_name: str, parent_id: str | None, attempt: int
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _run_with_retries(self, bound: Bound) -> dict[str, Any]:
        call = bound.call
        # limit/backoff may come from the template's inputs or an expression (Argo substitutes the strategy)
        scope = {**self.global_scope(), **{f"inputs.parameters.{k}": v for k, v in bound.parameters.items()}}
        try:
            plan = RetryPlan.parse(substitute_obj(bound.template["retryStrategy"] or {}, scope))
        except DriftloopError as exc:
            node = call.create_node(self.book, "Retry", bound.template.get("name"), "Pending", bound.node_extra())
            return self.book.finish(node, "Error", exc.message)
        retry_node = call.create_node(self.book, "Retry", bound.template.get("name"), "Running", bound.node_extra())
        first_start = time.monotonic()
        attempt = 0
        while True:
            name, display = f"{call.node_name}({attempt})", f"{call.display_name}({attempt})"
            child = self._run_once(bound, name, display, retry_node["id"], attempt)
            phase, message = child.get("phase", "Error"), child.get("message", "")
            exhausted = not plan.attempts_left(attempt + 1)
            retry_more = plan.policy_allows(phase, message) and not exhausted
            if exhausted and phase in ("Failed", "Error") and plan.policy_allows(phase, message):
                message = "No more retries left"  # Argo's processNodeRetries
            if retry_more and plan.expression:
                retry_more = bool(self._retry_expression(plan.expression, child))
            if retry_more and self.shutdown_reason() is not None:
                retry_more = False
            delay = plan.backoff_before(attempt + 1) if retry_more else 0.0
            if (
                retry_more
                and plan.max_duration is not None
                and time.monotonic() - first_start + delay > plan.max_duration
            ):
                retry_more = False
                message = f"{message} (retry backoff maxDuration {plan.max_duration:g}s exceeded)".strip()
            if not retry_more and child.get("daemoned") and phase == "Running":
                self.book.update(retry_node, daemoned=True, message=None)
                self.daemons.follow(self, child, retry_node)  # the Retry node ends when its daemoned attempt does
                return retry_node
            if not retry_more:
                self.book.update(retry_node, phase=phase, message=message or None, outputs=child.get("outputs"))
                return retry_node
            if delay and self.book.get(f"{call.node_name}({attempt + 1})") is None:  # not when resuming
                self.book.update(retry_node, message=f"Backoff for {delay:g} seconds")
                self._sleep(delay)
                if self.shutdown_reason() is not None:
                    return self.book.finish(retry_node, "Failed", self.shutdown_reason())
            attempt += 1

    def _retry_expression(self, expression: str, child: dict[str, Any]) -> Any:
        outputs = child.get("outputs") or {}
        variables = {
            "lastRetry.exitCode": outputs.get("exitCode", "-1"),
            "lastRetry.status": child.get("phase", ""),
            "lastRetry.duration": param_text(round(self.book.elapsed(child), 3)),
            "lastRetry.message": child.get("message", ""),
        }
        try:
            return evaluate(expression, variables)
        except DriftloopError:
            return False

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and self.shutdown_reason() is None:
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))
