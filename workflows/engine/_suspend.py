"""``suspend`` templates: wait for a duration, or until resumed (``RunControl.resume`` with a node selector)."""

from __future__ import annotations

import time
from typing import Any

from workflows.engine._io import param_text
from workflows.engine._outputs import value_source
from workflows.engine._retry import parse_duration
from workflows.engine.templating import substitute_obj

__all__ = ["run_suspend"]


def run_suspend(ex: Any, node: dict[str, Any], template: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    spec = substitute_obj(template.get("suspend") or {}, scope)
    duration = parse_duration(spec["duration"]) if spec.get("duration") not in (None, "") else None
    ex.book.update(node, phase="Running")
    since = time.monotonic() - ex.book.elapsed(node)
    timed_out = False
    while True:
        reason = ex.shutdown_reason()
        if reason is not None:
            return ex.book.finish(node, "Failed", reason)
        if duration is not None and ex.book.elapsed(node) >= duration:
            timed_out = True
            break
        if ex.control.resumed_since(since, node):
            break
        time.sleep(0.1)
    parameters = []
    for parameter in (template.get("outputs") or {}).get("parameters") or []:
        source = value_source(parameter)
        if timed_out and "supplied" in source and "default" not in source and "value" not in parameter:
            # Argo's executeSuspend (wfutil.OverrideOutputParametersWithDefault): the duration passed and nobody
            # supplied the value; executeTemplate marks the node Error, its steps/DAG parent then fails
            return ex.book.finish(
                node,
                "Error",
                f"raw output parameter '{parameter['name']}' has not been set and does not have a default value",
            )
        # nothing can be supplied yet (no `argo node set`): the default, else the same-named input (Argo's UI
        # pre-fills the resume form with it), else ""
        same_input = scope.get(f"inputs.parameters.{parameter['name']}", "")
        value = source.get("default", parameter.get("value", same_input))
        parameters.append({"name": parameter["name"], "value": param_text(value)})
    return ex.book.finish(node, "Succeeded", outputs={"parameters": parameters} if parameters else None)
