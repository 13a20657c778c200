"""The embedded engine's executor: run one Argo Workflow object on this machine with Argo's semantics.

``run_workflow`` blocks until the workflow finishes and returns it with an Argo-format ``status``; the server
engineer's controller wraps it (persisting each ``on_change`` snapshot), and ``driftloop engine run`` calls it
directly. Each pod-like node is a process tree in its own mount+pid namespace (see ``_pods``).
"""

from __future__ import annotations

import copy
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from driftloop.errors import DriftloopError, EngineError
from workflows.engine._context import EngineContext
from workflows.engine._control import RunControl, matches_selector
from workflows.engine._execute import Call, Execution
from workflows.engine._hooks import workflow_hooks
from workflows.engine._io import BindError, check_enum, declared_value, param_text
from workflows.engine._logs import node_log_path
from workflows.engine._model import COMPLETED, FAILED_PHASES, StatusBook, now_rfc3339
from workflows.engine._retry import parse_duration
from workflows.engine._sync import lock_names
from workflows.engine.templating import substitute_obj

__all__ = ["EngineContext", "RunControl", "node_log_path", "prepare_retry", "run_workflow"]

log = logging.getLogger(__name__)
RESTART_MESSAGE = "interrupted by engine restart"


def _effective_spec(workflow: dict[str, Any], ctx: EngineContext) -> dict[str, Any]:
    """``spec.workflowTemplateRef`` merged under the workflow's own spec (arguments merged by name)."""
    spec = dict(workflow.get("spec") or {})
    ref = spec.get("workflowTemplateRef")
    if not ref:
        return spec
    kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") else "WorkflowTemplate"
    stored = ctx.resolve_template(kind, ref.get("name", ""))
    if stored is None:
        raise EngineError(f"{kind} {ref.get('name')!r} not found", hint=f"create the {kind} before submitting")
    base = copy.deepcopy(stored.get("spec") or {})
    own_args = spec.get("arguments") or {}
    merged_args = dict(base.get("arguments") or {})
    for kind_of_arg in ("parameters", "artifacts"):
        by_name = {p["name"]: p for p in merged_args.get(kind_of_arg) or []}
        for given in own_args.get(kind_of_arg) or []:
            by_name[given["name"]] = {**by_name.get(given["name"], {}), **given}
        if by_name:
            merged_args[kind_of_arg] = list(by_name.values())
    merged = {**base, **{k: v for k, v in spec.items() if k != "workflowTemplateRef"}}
    merged["arguments"] = merged_args
    return merged


def _workflow_parameters(spec: dict[str, Any], configmaps: Any) -> dict[str, str]:
    values: dict[str, str] = {}
    for parameter in (spec.get("arguments") or {}).get("parameters") or []:
        what = f"workflow parameter {parameter['name']!r}"
        value = declared_value(parameter, configmaps, what)
        if value is None:
            raise BindError(f"{what} has no value", hint=f"pass -p {parameter['name']}=VALUE")
        text = param_text(value)
        check_enum(parameter, text, what)
        values[parameter["name"]] = text
    return values


def _globals(workflow: dict[str, Any], spec: dict[str, Any], ctx: EngineContext) -> dict[str, Any]:
    metadata = workflow.get("metadata") or {}
    created = metadata.get("creationTimestamp") or now_rfc3339()
    metadata.setdefault("creationTimestamp", created)
    metadata.setdefault("uid", str(uuid.uuid4()))
    scope: dict[str, Any] = {
        "workflow.name": metadata["name"],
        "workflow.namespace": metadata.get("namespace") or ctx.namespace,
        "workflow.uid": metadata["uid"],
        "workflow.serviceAccountName": spec.get("serviceAccountName", ""),
        "workflow.mainEntrypoint": spec.get("entrypoint", ""),
        "workflow.priority": str(spec.get("priority", 0)),
        "workflow.creationTimestamp": created,
        "workflow.scheduledTime": created,
        "workflow.labels.json": json.dumps(metadata.get("labels") or {}),
        "workflow.annotations.json": json.dumps(metadata.get("annotations") or {}),
    }
    stamp = datetime.fromisoformat(created.replace("Z", "+00:00")).astimezone(UTC)
    for letter in "aAbBcdHIjmMpSUwWxXyYZz":
        scope[f"workflow.creationTimestamp.{letter}"] = stamp.strftime("%" + letter)
    scope["workflow.creationTimestamp.s"] = str(int(stamp.timestamp()))
    scope["workflow.creationTimestamp.RFC3339"] = created
    for key, value in (metadata.get("labels") or {}).items():
        scope[f"workflow.labels.{key}"] = str(value)
    for key, value in (metadata.get("annotations") or {}).items():
        scope[f"workflow.annotations.{key}"] = str(value)
    parameters = _workflow_parameters(spec, ctx.configmaps)
    for name, value in parameters.items():
        scope[f"workflow.parameters.{name}"] = value
    listed = json.dumps([{"name": k, "value": v} for k, v in parameters.items()])
    scope["workflow.parameters"] = scope["workflow.parameters.json"] = listed
    return scope


def _mark_interrupted(book: StatusBook) -> None:
    """After a crash: pods that were running are lost; mark them Error so retries (or the DAG) handle them.
    Pending pods never started (a clean shutdown also stores the pods it killed as Pending): they run again."""
    for node in book.all_nodes():
        if node.get("type") == "Pod" and node.get("phase") == "Pending":
            book.update(node, message=None)
        elif node.get("type") == "Pod" and node.get("phase") not in COMPLETED:
            book.finish(node, "Error", RESTART_MESSAGE)


def run_workflow(
    workflow: dict[str, Any],
    ctx: EngineContext,
    control: RunControl | None = None,
    on_change: Callable[[dict], None] | None = None,
    persister: Any = None,
) -> dict[str, Any]:
    """Run ``workflow`` (metadata.name set) to completion; returns it with an Argo-format status.

    ``on_change`` gets a deep copy after every change (fine for small runs); the engine's ``persister``
    (``_persist.RunPersister``) is only told that something changed, and snapshots on its own clock."""
    workflow = copy.deepcopy(workflow)
    control = control or RunControl()
    book = StatusBook(workflow, on_change, persister.changed if persister is not None else None)
    if persister is not None:
        persister.attach(book)
    status = book.status
    _mark_interrupted(book)
    status.pop("finishedAt", None)
    status.setdefault("startedAt", now_rfc3339())
    book.update(status, phase="Running", message=None)
    try:
        spec = _effective_spec(workflow, ctx)
        ex = Execution({**workflow, "spec": spec}, ctx, control, book)
        ex.globals.update(_globals(workflow, spec, ctx))
        for parameter in (status.get("outputs") or {}).get("parameters") or []:
            ex.globals[f"workflow.outputs.parameters.{parameter['name']}"] = parameter.get("value", "")
        for artifact in (status.get("outputs") or {}).get("artifacts") or []:
            ex.globals[f"workflow.outputs.artifacts.{artifact['name']}"] = artifact
        entry = spec.get("entrypoint")
        if not entry:
            raise EngineError("spec.entrypoint is not set", hint="set spec.entrypoint or pass --entrypoint")
    except DriftloopError as exc:
        return _close(book, "Error", exc.message)
    if spec.get("activeDeadlineSeconds") not in (None, ""):
        ex.deadline = time.monotonic() + parse_duration(spec["activeDeadlineSeconds"])
    locks = lock_names(spec.get("synchronization"), ctx.namespace)
    holder = f"workflow/{ex.name}"
    if locks and not ctx.sync.acquire(
        holder, locks, lambda: control.stopping, lambda message: book.update(status, message=message)
    ):
        return _close(book, "Failed", control.terminate_message or control.stop_message)
    try:
        book.update(status, message=None)
        arguments = {
            "parameters": [
                {"name": name, "value": value} for name, value in _workflow_parameters(spec, ctx.configmaps).items()
            ],
            "artifacts": (spec.get("arguments") or {}).get("artifacts") or [],
        }
        hooks = workflow_hooks(ex, spec)
        root = ex.execute(Call({"template": entry}, arguments, ex.name, ex.name, None, None, ex.source))
        phase = _workflow_phase(root)
        if hooks is not None:
            ex.globals["workflow.status"] = phase
            hooks.finish()
        message = root.get("message") if phase in FAILED_PHASES else None
        if phase in FAILED_PHASES and (control.terminate_message or control.stop_message):
            message = control.terminate_message or control.stop_message  # Argo: "Stopped with strategy '…'"
        elif root.get("id") in ex.not_started:  # Argo's operate(): executeTemplate returned an error
            phase, message = "Error", f"error in entry template execution: {root.get('message')}"
        if phase in FAILED_PHASES and ex.deadline is not None and time.monotonic() > ex.deadline:
            message = "Step exceeded its deadline"
        phase, message = _run_exit_handler(ex, spec, phase, message)
    except Exception as exc:  # a bug in the engine must still leave a finished, stored workflow
        log.exception("engine error while running workflow %s", ex.name)
        phase, message = "Error", f"engine error: {exc!r} (see the engine log)"
    finally:
        ex.daemons.stop_within(None)
        ctx.sync.release(holder, locks)
    return _close(book, phase, message)


def _workflow_phase(root: dict[str, Any]) -> str:
    phase = root.get("phase", "Error")
    return phase if phase in ("Failed", "Error") else "Succeeded"


def _run_exit_handler(ex: Execution, spec: dict[str, Any], phase: str, message: str | None) -> tuple[str, str | None]:
    hook = (spec.get("hooks") or {}).get("exit") or ({"template": spec["onExit"]} if spec.get("onExit") else None)
    if not hook or ex.control.terminate_message:
        return phase, message
    ex.exit_phase = True
    ex.globals["workflow.status"] = phase
    ex.globals["workflow.failures"] = json.dumps(ex.book.failures())
    arguments = substitute_obj(hook.get("arguments") or {}, ex.global_scope())
    exit_node = ex.execute(Call(hook, arguments, f"{ex.name}.onExit", f"{ex.name}.onExit", None, None, ex.source))
    if exit_node.get("id") in ex.not_started:  # Argo marks the workflow Error whatever the main phase
        return "Error", f"error in exit template execution : {exit_node.get('message')}"
    if exit_node.get("phase") in FAILED_PHASES and phase == "Succeeded":
        return exit_node["phase"], exit_node.get("message") or "exit handler failed"
    return phase, message


def _close(book: StatusBook, phase: str, message: str | None) -> dict[str, Any]:
    status = book.status
    book.update(status, phase=phase, message=message or None, finishedAt=now_rfc3339())
    book.workflow.setdefault("metadata", {}).setdefault("labels", {})["workflows.argoproj.io/completed"] = "true"
    book.workflow["metadata"]["labels"]["workflows.argoproj.io/phase"] = phase
    with book.lock:
        book.refresh_progress()
    book.publish()
    return book.workflow


def prepare_retry(
    workflow: dict[str, Any], node_field_selector: str | None = None, restart_successful: bool = False
) -> dict[str, Any]:
    """Argo ``retry``: drop failed/errored (and omitted) nodes — and with ``restart_successful`` the succeeded
    ones the selector matches — plus every node above them, so ``run_workflow`` re-runs only those."""
    workflow = copy.deepcopy(workflow)
    status = workflow.get("status") or {}
    nodes: dict[str, dict[str, Any]] = status.get("nodes") or {}
    if status.get("phase") not in ("Failed", "Error"):
        raise EngineError(
            f"workflow {workflow.get('metadata', {}).get('name')!r} is {status.get('phase') or 'not finished'}; only "
            "Failed or Error workflows can be retried",
            hint="use resubmit to run a succeeded workflow again",
        )
    doomed: set[str] = set()
    for node in nodes.values():
        reset = node.get("phase") in ("Failed", "Error", "Omitted")
        if restart_successful and node.get("phase") == "Succeeded" and node_field_selector:
            reset = reset or matches_selector(node, node_field_selector)
        if ".onExit" in node.get("name", ""):
            reset = True
        if reset:
            doomed.add(node["id"])
    # Node names nest like the templates ("wf[1].step(0:a)" sits inside "wf[1]" and "wf"): everything a reset
    # node sits inside is reset too, so that it is walked again.
    doomed_names = [nodes[i]["name"] for i in doomed]
    for node in nodes.values():
        name = node.get("name", "")
        if any(d.startswith(name) and d[len(name) : len(name) + 1] in (".", "[", "(") for d in doomed_names):
            doomed.add(node["id"])
    for node_id in doomed:
        nodes.pop(node_id, None)
    for node in nodes.values():
        if node.get("children"):
            node["children"] = [c for c in node["children"] if c in nodes]
    for key in ("phase", "finishedAt", "message"):
        status.pop(key, None)
    labels = workflow.get("metadata", {}).get("labels") or {}
    labels.pop("workflows.argoproj.io/completed", None)
    labels.pop("workflows.argoproj.io/phase", None)
    return workflow
