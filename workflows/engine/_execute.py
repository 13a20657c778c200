"""The template walker: one :class:`Execution` per workflow run; resolves templates, binds inputs, and runs
each node kind (pod, steps, dag, suspend) with retries, memoization, synchronization and deadlines.

Each node kind has its runner in ``NODE_RUNNERS``; the steps and DAG walkers call back into the execution only
through ``_protocol.Executor``, so this module imports them and they never import it.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from driftloop.errors import DriftloopError, EngineError
from workflows.engine._calls import Bound, Call, Source
from workflows.engine._control import RunControl
from workflows.engine._daemon import Daemons
from workflows.engine._dag import run_dag
from workflows.engine._io import bind_parameters, merge_defaults, param_text
from workflows.engine._memoizing import Memoizing
from workflows.engine._model import COMPLETED, StatusBook, node_id_for
from workflows.engine._names import safe_path_segment
from workflows.engine._outputs import artifact_reference, declared_defaults
from workflows.engine._pod_node import run_pod
from workflows.engine._retrying import Retrying
from workflows.engine._steps import run_steps
from workflows.engine._suspend import run_suspend
from workflows.engine._sync import lock_names
from workflows.engine.expressions import evaluate
from workflows.engine.templating import substitute_obj

__all__ = ["NODE_RUNNERS", "Call", "Execution", "NodeRunner", "Source", "template_kind"]

NODE_TYPES = {"container": "Pod", "script": "Pod", "containerSet": "Pod", "steps": "Steps", "dag": "DAG"}
UNSUPPORTED = ("resource", "http", "data", "plugin")


def template_kind(template: dict[str, Any]) -> str:
    for kind in ("container", "script", "containerSet", "steps", "dag", "suspend", *UNSUPPORTED):
        if template.get(kind) is not None:
            return kind
    return "unknown"


class Execution(Retrying, Memoizing):
    """Runs one workflow to completion; safe to run many at once (one per thread)."""

    def __init__(self, workflow: dict[str, Any], ctx: Any, control: RunControl, book: StatusBook) -> None:
        self.workflow = workflow
        self.ctx = ctx
        self.control = control
        self.book = book
        self.name: str = workflow["metadata"]["name"]
        self.spec: dict[str, Any] = workflow["spec"]
        self.source = Source({t["name"]: t for t in self.spec.get("templates") or []})
        self.globals: dict[str, Any] = {}
        self.deadline: float | None = None
        self.exit_phase = False
        self.daemons = Daemons()
        # nodes that ended Error before anything ran (template/arguments/pod spec rejected): Argo's executeTemplate
        # returns an error for them, which the workflow reports as "error in entry/exit template execution"
        self.not_started: set[str] = set()
        parallelism = self.spec.get("parallelism")
        self.pod_slots = threading.BoundedSemaphore(int(parallelism)) if parallelism else None
        self.run_dir = ctx.home / "runs" / safe_path_segment(self.name, "workflow name")

    # -- shutdown --------------------------------------------------------------------------------------------
    def shutdown_reason(self) -> str | None:
        """Why no new node may start (and running ones must die), or None."""
        if self.control.terminate_message:
            return self.control.terminate_message
        if self.exit_phase:
            return None
        if self.control.stop_message:
            return self.control.stop_message
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "Step exceeded its deadline"
        return None

    def wait_while_suspended(self) -> None:
        while self.control.suspended and self.shutdown_reason() is None:
            time.sleep(0.1)

    # -- scope -----------------------------------------------------------------------------------------------
    def global_scope(self) -> dict[str, Any]:
        with self.book.lock:
            scope = dict(self.globals)
        started = self.workflow.get("status", {}).get("startedAt")
        if started:
            scope["workflow.duration"] = param_text(round(time.time() - _epoch(started), 3))
        return scope

    def set_global(self, kind: str, name: str, value: Any, record: dict[str, Any]) -> None:
        """A ``globalName`` output: visible as ``workflow.outputs.<kind>.<name>`` and in status.outputs."""
        with self.book.lock:
            self.globals[f"workflow.outputs.{kind}.{name}"] = value
            outputs = self.book.status.setdefault("outputs", {}).setdefault(kind, [])
            outputs[:] = [o for o in outputs if o.get("name") != name] + [record]

    def publish_globals(self, outputs: dict[str, Any]) -> None:
        """Every output parameter/artifact that declares a ``globalName``."""
        for parameter in outputs.get("parameters") or []:
            if parameter.get("globalName"):
                name = parameter["globalName"]
                self.set_global("parameters", name, parameter["value"], {"name": name, "value": parameter["value"]})
        for artifact in outputs.get("artifacts") or []:
            if artifact.get("globalName"):
                self.set_global(
                    "artifacts", artifact["globalName"], artifact, {**artifact, "name": artifact["globalName"]}
                )

    # -- resolution ------------------------------------------------------------------------------------------
    def resolve(self, spec: dict[str, Any], source: Source) -> tuple[dict[str, Any], Source]:
        if spec.get("inline"):
            template, where = dict(spec["inline"]), source
            template.setdefault("name", spec.get("name", "inline"))
        elif spec.get("templateRef"):
            template, where = self._resolve_ref(spec["templateRef"])
        else:
            name = spec.get("template")
            if name not in source.templates:
                raise EngineError(
                    f"template {name!r} not found in {source.label}",
                    hint="check the step/task 'template' name against spec.templates",
                )
            template, where = source.templates[name], source
        return merge_defaults(template, self.spec.get("templateDefaults")), where

    def _resolve_ref(self, ref: dict[str, Any]) -> tuple[dict[str, Any], Source]:
        kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") else "WorkflowTemplate"
        stored = self.ctx.resolve_template(kind, ref.get("name", ""))
        if stored is None:
            raise EngineError(
                f"{kind} {ref.get('name')!r} not found",
                hint=f"create it first (driftloop submit/engine run --templates FILE, or kubectl apply the {kind})",
            )
        templates = {t["name"]: t for t in (stored.get("spec") or {}).get("templates") or []}
        if ref.get("template") not in templates:
            raise EngineError(
                f"template {ref.get('template')!r} not found in {kind} {ref.get('name')!r}",
                hint=f"available: {', '.join(sorted(templates)) or 'none'}",
            )
        return templates[ref["template"]], Source(templates, f"{kind} {ref.get('name')}")

    # -- the main entry: one template invocation -------------------------------------------------------------
    def execute(self, call: Call) -> dict[str, Any]:
        existing = self.book.get(call.node_name)
        if existing is not None and existing.get("phase") in COMPLETED:
            if call.parent_id:
                self.book.link(call.parent_id, existing["id"])
            return existing
        try:
            template, source = self.resolve(call.spec, call.source)
            inputs = substitute_obj(template.get("inputs") or {}, self.global_scope())
            template = {**template, "inputs": inputs}
            parameters = _chain_inputs(bind_parameters(template, call.arguments, self.ctx.configmaps))
            artifacts = self._bind_artifacts(template, call.arguments)
        except DriftloopError as exc:
            return self.error_node(call, exc.message)
        kind = template_kind(template)
        node_type = NODE_TYPES.get(kind, "Suspend" if kind == "suspend" else "Pod")
        bound = Bound(call, template, source, parameters, artifacts, node_type, _inputs_record(parameters, artifacts))
        if template.get("memoize"):
            hit = self._memo_hit(bound)
            if hit is not None:
                return hit
        if template.get("retryStrategy") is not None and kind != "suspend":
            node = self._run_with_retries(bound)
        else:
            node = self._run_once(bound, call.node_name, call.display_name, call.parent_id, 0)
        if template.get("memoize") and node.get("phase") == "Succeeded":
            self._memo_save(template, parameters, node)
        return node

    def error_node(self, call: Call, message: str) -> dict[str, Any]:
        """A node that ended Error before it ran: Argo reports it as "error in entry/exit template execution"."""
        node = call.create_node(self.book, "Pod", call.spec.get("template"))
        self.not_started.add(node["id"])
        return self.book.finish(node, "Error", message)

    def _bind_artifacts(self, template: dict[str, Any], arguments: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
        supplied = {a["name"]: a for a in arguments.get("artifacts") or [] if isinstance(a, dict)}
        bound: dict[str, dict[str, Any] | None] = {}
        for declared in (template.get("inputs") or {}).get("artifacts") or []:
            name = declared["name"]
            given = supplied.get(name)
            chosen: dict[str, Any] | None = None
            if given is not None and (set(given) - {"name", "from", "fromExpression", "subPath"} or given.get("from")):
                chosen = {**declared, **given}
            elif any(k in declared for k in ("raw", "s3", "gcs", "http", "git", "artifactory", "oss", "azure")):
                chosen = dict(declared)
            if chosen is None and not declared.get("optional"):
                raise EngineError(
                    f"inputs.artifacts.{name} was not supplied to template {template.get('name')!r}",
                    hint="pass it in the task/step arguments (from: '{{tasks.x.outputs.artifacts.y}}') or mark it optional",
                )
            bound[name] = chosen
        return bound

    def template_scope(
        self, template: dict[str, Any], parameters: dict[str, str], artifacts: dict[str, Any], node_name: str
    ) -> dict[str, Any]:
        scope = self.global_scope()
        for name, value in parameters.items():
            scope[f"inputs.parameters.{name}"] = value
        scope["inputs.parameters"] = json.dumps([{"name": k, "value": v} for k, v in parameters.items()])
        for declared in (template.get("inputs") or {}).get("artifacts") or []:
            if declared.get("path"):
                scope[f"inputs.artifacts.{declared['name']}.path"] = declared["path"]
            if artifacts.get(declared["name"]) is not None:
                scope[f"inputs.artifacts.{declared['name']}"] = artifacts[declared["name"]]
        outputs = template.get("outputs") or {}
        for parameter in outputs.get("parameters") or []:
            path = (parameter.get("valueFrom") or {}).get("path")
            if path:
                scope[f"outputs.parameters.{parameter['name']}.path"] = path
        for artifact in outputs.get("artifacts") or []:
            if artifact.get("path"):
                scope[f"outputs.artifacts.{artifact['name']}.path"] = artifact["path"]
        node_id = node_id_for(self.name, node_name)
        scope.update({"pod.name": node_id, "node.name": node_name, "node.id": node_id})
        return scope

    # -- one attempt -----------------------------------------------------------------------------------------
    def _run_once(
        self, bound: Bound, node_name: str, display_name: str, parent_id: str | None, attempt: int
    ) -> dict[str, Any]:
        """One attempt of a bound call: its node, its locks, then the node kind's runner."""
        existing = self.book.get(node_name)
        if existing is not None and existing.get("phase") in COMPLETED:
            return existing
        template = bound.template
        attempt_call = replace(bound.call, node_name=node_name, display_name=display_name, parent_id=parent_id)
        node = attempt_call.create_node(self.book, bound.node_type, template.get("name"), extra=bound.node_extra())
        reason = self.shutdown_reason()
        if reason is not None:
            return self.book.finish(node, "Failed", reason)
        locks = lock_names(template.get("synchronization"), self.ctx.namespace)
        holder = node["id"]
        if locks and not self.ctx.sync.acquire(
            holder, locks, lambda: self.shutdown_reason() is not None, lambda m: self.book.update(node, message=m)
        ):
            return self.book.finish(node, "Failed", self.shutdown_reason())
        try:
            if locks:
                self.book.update(node, message="")
            scope = self.template_scope(template, bound.parameters, bound.artifacts, node_name)
            scope["retries"] = str(attempt)
            return self._dispatch(node, template, bound.source, scope, bound.artifacts)
        except DriftloopError as exc:
            return self.book.finish(node, "Error", exc.message)
        finally:
            if locks:
                self.ctx.sync.release(holder, locks)

    def _dispatch(
        self,
        node: dict[str, Any],
        template: dict[str, Any],
        source: Source,
        scope: dict[str, Any],
        artifacts: dict[str, Any],
    ) -> dict[str, Any]:
        kind = template_kind(template)
        runner = NODE_RUNNERS.get(kind)
        if runner is not None:
            return runner(self, node, template, source, scope, artifacts)
        if kind in UNSUPPORTED:
            return self.book.finish(node, "Error", f"{kind} templates are not supported on the embedded engine")
        missing = f"template {template.get('name')!r} has no container, script, containerSet, steps, dag or suspend"
        return self.book.finish(node, "Error", missing)

    # -- helpers shared by steps and dag ---------------------------------------------------------------------
    def skipped_node(self, call: Call, phase: str, message: str) -> dict[str, Any]:
        """A Skipped (when false) or Omitted (depends false) node, with its template's defaulted outputs."""
        try:
            template, _ = self.resolve(call.spec, call.source)
        except DriftloopError:
            template = {}
        node = call.create_node(self.book, "Skipped", template.get("name") or call.spec.get("template"))
        defaults = declared_defaults(template)
        return self.book.finish(node, phase, message, **({"outputs": defaults} if defaults else {}))

    def bind_arguments(self, arguments: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
        """A step's/task's arguments in ``scope``: artifacts' ``from``/``fromExpression`` become the referenced
        artifact objects (before text substitution would flatten them), parameters are substituted."""
        with_artifacts = self._resolve_argument_artifacts(arguments, scope)
        resolved = {k: v for k, v in with_artifacts.items() if k != "artifacts"}
        resolved = substitute_obj(resolved, scope)
        if "artifacts" in with_artifacts:
            resolved["artifacts"] = [
                a if "from" in a or "fromExpression" in a else substitute_obj(a, scope)
                for a in with_artifacts["artifacts"]
            ]
        return resolved

    def _resolve_argument_artifacts(self, arguments: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
        resolved = []
        for artifact in arguments.get("artifacts") or []:
            found: Any = None
            if artifact.get("from"):
                found = artifact_reference(str(artifact["from"]), scope)
            elif artifact.get("fromExpression"):
                try:
                    found = evaluate(str(artifact["fromExpression"]), scope)
                except DriftloopError:
                    found = None
            if found is not None:
                merged = {k: v for k, v in found.items() if k not in ("name", "path", "globalName")}
                merged.update({k: v for k, v in artifact.items() if k not in ("from", "fromExpression")})
                resolved.append(merged)
            else:
                resolved.append(artifact)
        return {**arguments, "artifacts": resolved} if arguments.get("artifacts") else arguments

    def run_hooks(
        self, step: dict[str, Any], node: dict[str, Any], scope: dict[str, Any], source: Source, boundary_id: str | None
    ) -> dict[str, Any] | None:
        """A step/task ``onExit`` or ``hooks.exit``: runs after the node, whatever its phase."""
        hook = (step.get("hooks") or {}).get("exit")
        if hook is None and step.get("onExit"):
            hook = {"template": step["onExit"]}
        if not hook:
            return None
        arguments = self.bind_arguments(hook.get("arguments") or {}, scope)
        return self.execute(
            Call(
                hook,
                arguments,
                f"{node['name']}.onExit",
                f"{node['displayName']}.onExit",
                boundary_id,
                node["id"],
                source,
            )
        )


def _chain_inputs(parameters: dict[str, str]) -> dict[str, str]:
    """Input values that name earlier inputs (``{{inputs.parameters.a}}``, ``{{= … inputs.parameters.a …}}``):
    Argo's ProcessArgs substitutes the template's inputs with the ones already bound, in order."""
    if not any("{{" in value for value in parameters.values()):
        return parameters
    chained: dict[str, str] = {}
    for name, value in parameters.items():
        scope = {f"inputs.parameters.{k}": v for k, v in chained.items()}
        chained[name] = substitute_obj(value, scope) if "{{" in value and "inputs.parameters" in value else value
    return chained


def _inputs_record(parameters: dict[str, str], artifacts: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if parameters:
        record["parameters"] = [{"name": k, "value": v} for k, v in parameters.items()]
    present = [copy.deepcopy(a) for a in artifacts.values() if a is not None]
    if present:
        record["artifacts"] = present
    return record


@functools.lru_cache(maxsize=64)
def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


# one node kind's runner: (execution, its node, template, where the template came from, scope, input artifacts)
NodeRunner = Callable[
    [Execution, dict[str, Any], dict[str, Any], Source, dict[str, Any], dict[str, Any]], dict[str, Any]
]


def _pod_runner(
    ex: Execution,
    node: dict[str, Any],
    template: dict[str, Any],
    source: Source,
    scope: dict[str, Any],
    artifacts: dict[str, Any],
) -> dict[str, Any]:
    """container/script/containerSet: waits while the workflow is suspended; a ``daemon`` runs in the background."""
    ex.wait_while_suspended()
    if str(template.get("daemon")).lower() == "true":
        main = template.get("container") or template.get("script") or {}
        return ex.daemons.start(ex, node, main, lambda stop: run_pod(ex, node, template, scope, artifacts, stop))
    return run_pod(ex, node, template, scope, artifacts)


NODE_RUNNERS: dict[str, NodeRunner] = {
    "container": _pod_runner,
    "script": _pod_runner,
    "containerSet": _pod_runner,
    "steps": lambda ex, node, template, source, scope, _artifacts: run_steps(ex, node, template, source, scope),
    "dag": lambda ex, node, template, source, scope, _artifacts: run_dag(ex, node, template, source, scope),
    "suspend": lambda ex, node, template, _source, scope, _artifacts: run_suspend(ex, node, template, scope),
}
