"""The controller: turns stored Workflow objects into runs, and API verbs (stop, retry…) into run controls.

One thread per running workflow calls the runner's ``run_workflow``; its ``RunPersister`` writes the status
in coalesced, ordered snapshots (at most ~1 s behind), so after a crash (kill -9) or a clean stop
:meth:`Controller.start` finds the unfinished workflows in the store and hands them back to the runner, which
keeps finished nodes and retries or errors the interrupted ones. A deleted run is never written again.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from driftloop.errors import ConflictError, EngineError, NotFoundError
from workflows.engine import runner
from workflows.engine._cron import CronScheduler
from workflows.engine._lint import check_workflow
from workflows.engine._names import generate_name
from workflows.engine._persist import RunPersister
from workflows.engine.store import (
    CLUSTER_WORKFLOW_TEMPLATE,
    CRON_WORKFLOW,
    WORKFLOW,
    WORKFLOW_TEMPLATE,
    Store,
    utc_now,
)
from workflows.spec.submit import apply_parameters, workflow_from_cron, workflow_from_template

__all__ = ["COMPLETED_LABEL", "FINISHED_PHASES", "PHASE_LABEL", "UNFINISHED_PHASES", "Controller", "InvalidStateError"]

log = logging.getLogger(__name__)

UNFINISHED_PHASES = ("", "Pending", "Running")
FINISHED_PHASES = ("Succeeded", "Failed", "Error")
PHASE_LABEL = "workflows.argoproj.io/phase"
COMPLETED_LABEL = "workflows.argoproj.io/completed"
RESUBMITTED_LABEL = "workflows.argoproj.io/resubmitted-from-workflow"
CONTROL_WAIT_SECONDS = 2.0  # how long stop/terminate/delete wait for the run to wind down before answering
_CONTROLLER_LABELS = (PHASE_LABEL, COMPLETED_LABEL, "workflows.argoproj.io/workflow-archiving-status")


class InvalidStateError(ConflictError):
    """The object exists but its state forbids the verb (stop a finished run, retry a running one)."""


class _Run:
    """A workflow being executed by this process: its controls and the thread that writes its status."""

    def __init__(self, control: Any, store: Store) -> None:
        self.control = control
        self.done = threading.Event()
        self.persister = RunPersister(store, control)


class Controller:
    """Owns the runs of one engine process; every public method is thread-safe."""

    def __init__(self, store: Store, home: Path, *, namespace: str) -> None:
        self.store = store
        self.home = home
        self.namespace = namespace
        self._runs: dict[tuple[str, str], _Run] = {}
        self._lock = threading.Lock()
        self._context: Any = None
        self._closing = threading.Event()
        self.cron = CronScheduler(store, lambda workflow, ns: self.submit(workflow, ns), self.terminate)

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self, *, schedule_crons: bool = True) -> int:
        """Resume every workflow a previous engine left unfinished (returns how many), start the cron clock."""
        unfinished = self.store.list(WORKFLOW, None, phases=UNFINISHED_PHASES)
        for workflow in unfinished:
            log.info("resuming workflow %s after engine restart", workflow["metadata"]["name"])
            self._launch(workflow)
        if schedule_crons:
            self.cron.start()
        return len(unfinished)

    def close(self) -> None:
        """Stop the cron clock and write each running workflow's last state once more, then never again: they
        stay 'Running' in the store and resume on the next start; the pods this engine is about to kill are
        stored Pending, so they run again then (nothing of them is lost, nothing is marked failed)."""
        self._closing.set()
        self.cron.stop()
        with self._lock:
            runs = [run for run in self._runs.values() if not run.done.is_set()]
        for run in runs:
            try:
                run.persister.close(final=True, interrupted=True)
            except Exception:  # one broken run must not keep the others from being saved
                log.exception("saving a running workflow at shutdown failed")

    def running(self) -> list[tuple[str, str]]:
        with self._lock:
            return [key for key, run in self._runs.items() if not run.done.is_set()]

    def wait(self, namespace: str, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the named workflow is no longer running in this process, then return it."""
        with self._lock:
            run = self._runs.get((namespace, name))
        if run is not None:
            run.done.wait(timeout)
        return self.store.get(WORKFLOW, namespace, name)

    # ---- templates the runner resolves --------------------------------------------------------------
    def resolve_template(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """(kind, name) -> stored template: a namespaced kind from ``namespace`` (default: the engine's)."""
        kind = CLUSTER_WORKFLOW_TEMPLATE if kind.lower().startswith("cluster") else WORKFLOW_TEMPLATE
        return self.store.find(kind, namespace or self.namespace, name)

    def resolver(self, namespace: str | None) -> Callable[[str, str], dict[str, Any] | None]:
        """``resolve_template`` bound to one namespace: the (kind, name) callable the runner and linter take."""
        return lambda kind, name: self.resolve_template(kind, name, namespace)

    def _run_context(self, namespace: str) -> Any:
        """The shared context, seen from one workflow's namespace (template lookup, ``workflow.namespace``)."""
        return dataclasses.replace(
            self._engine_context(), namespace=namespace, resolve_template=self.resolver(namespace)
        )

    def _engine_context(self) -> Any:
        """One context per engine: runs share its memo cache, semaphores and GPU pool."""
        with self._lock:
            if self._context is None:
                self._context = runner.EngineContext.local(self.home, resolve_template=self.resolve_template)
            return self._context

    # ---- creating workflows -------------------------------------------------------------------------
    def submit(
        self, workflow: dict[str, Any], namespace: str | None = None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Validate, name, store and start a workflow (Argo's create); returns the stored object."""
        workflow = copy.deepcopy(workflow)
        workflow.setdefault("apiVersion", "argoproj.io/v1alpha1")
        workflow.setdefault("kind", WORKFLOW)
        meta = workflow.setdefault("metadata", {})
        meta["namespace"] = namespace or meta.get("namespace") or self.namespace
        check_workflow(workflow, self.resolver(meta["namespace"]))
        labels = meta.setdefault("labels", {})
        for label in _CONTROLLER_LABELS:
            labels.pop(label, None)
        workflow.pop("status", None)
        if dry_run:
            meta.setdefault("name", meta.get("name") or generate_name(meta.get("generateName", "workflow-")))
            return workflow
        stored = self._create_with_name(workflow)
        self._launch(stored)
        return stored

    def _create_with_name(self, workflow: dict[str, Any]) -> dict[str, Any]:
        meta = workflow["metadata"]
        if meta.get("name"):
            return self.store.create(workflow)
        prefix = meta.get("generateName")
        if not prefix:
            raise EngineError(
                "the workflow has neither metadata.name nor metadata.generateName",
                hint="add `metadata: {generateName: my-pipeline-}` to the manifest",
            )
        for _ in range(10):
            meta["name"] = generate_name(prefix)
            try:
                return self.store.create(workflow)
            except ConflictError:
                continue
        raise ConflictError(f"could not generate a free name from {prefix!r}", hint="use a longer generateName")

    def submit_from(
        self, kind: str, name: str, namespace: str | None, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Argo's ``submit --from``: a Workflow from a WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow."""
        options = options or {}
        namespace = namespace or self.namespace
        normalized = kind.replace("-", "").replace("_", "").lower()
        if normalized in {"cronworkflow", "cronwf", "cron"}:
            cron = self.store.get(CRON_WORKFLOW, namespace, name)
            workflow = workflow_from_cron(cron, options)
        elif normalized in {"workflowtemplate", "wftmpl", "clusterworkflowtemplate", "cwftmpl"}:
            cluster = normalized.startswith("c")
            template = self.store.get(CLUSTER_WORKFLOW_TEMPLATE if cluster else WORKFLOW_TEMPLATE, namespace, name)
            workflow = workflow_from_template(template, cluster, options)
        else:
            raise EngineError(
                f"cannot submit from resource kind {kind!r}",
                hint="use WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow",
            )
        dry_run = bool(options.get("dryRun") or options.get("serverDryRun"))
        return self.submit(workflow, namespace, dry_run=dry_run)

    def resubmit(
        self, namespace: str, name: str, parameters: list[str] | None = None, memoized: bool = False
    ) -> dict[str, Any]:
        """A fresh copy of a workflow (new name, no status); ``memoized`` is accepted but runs everything."""
        old = self.store.get(WORKFLOW, namespace, name)
        meta = old["metadata"]
        labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in _CONTROLLER_LABELS}
        labels[RESUBMITTED_LABEL] = name
        new = {
            "apiVersion": old.get("apiVersion", "argoproj.io/v1alpha1"),
            "kind": WORKFLOW,
            "metadata": {
                "generateName": meta.get("generateName") or f"{name}-",
                "namespace": namespace,
                "labels": labels,
                "annotations": dict(meta.get("annotations") or {}),
            },
            "spec": copy.deepcopy(old.get("spec", {})),
        }
        new["spec"].pop("shutdown", None)
        apply_parameters(new["spec"], parameters or [])
        return self.submit(new, namespace)

    # ---- acting on runs -----------------------------------------------------------------------------
    def retry(
        self,
        namespace: str,
        name: str,
        *,
        node_field_selector: str | None = None,
        restart_successful: bool = False,
        parameters: list[str] | None = None,
    ) -> dict[str, Any]:
        """Argo ``retry``: re-run only the failed nodes (and what depends on them) of a finished workflow."""
        workflow = self.store.get(WORKFLOW, namespace, name)
        phase = (workflow.get("status") or {}).get("phase", "")
        if phase not in {"Failed", "Error"} and not (phase == "Succeeded" and node_field_selector):
            raise InvalidStateError(
                f"workflow {name} is {phase or 'not started'}: only Failed or Errored workflows can be retried",
                hint="wait for it to finish, or use `driftloop runs resubmit` to run it again from scratch",
            )
        workflow = runner.prepare_retry(workflow, node_field_selector, restart_successful)
        workflow.setdefault("spec", {}).pop("shutdown", None)  # as Argo's retry: a stopped run runs again
        apply_parameters(workflow.setdefault("spec", {}), parameters or [])
        stored = self._save(workflow)
        self._launch(stored)
        return stored

    def stop(self, namespace: str, name: str, message: str = "") -> dict[str, Any]:
        return self._control(namespace, name, lambda control: control.stop(message), "stop")

    def terminate(self, namespace: str, name: str, message: str = "") -> dict[str, Any]:
        return self._control(namespace, name, lambda control: control.terminate(message), "terminate")

    def suspend(self, namespace: str, name: str) -> dict[str, Any]:
        return self._control(namespace, name, lambda control: control.suspend(), "suspend")

    def resume(self, namespace: str, name: str, node_field_selector: str | None = None) -> dict[str, Any]:
        return self._control(namespace, name, lambda control: control.resume(node_field_selector), "resume")

    def delete(self, namespace: str, name: str) -> None:
        """Delete a workflow at once; a running one is terminated (its pods killed, as Kubernetes garbage-
        collects them) and its status never written again, so it cannot reappear, not even after a restart."""
        self.store.get(WORKFLOW, namespace, name)
        with self._lock:
            run = self._runs.get((namespace, name))
        if run is not None and not run.done.is_set():
            run.persister.forget()
            run.control.terminate("workflow deleted")
        self.store.delete(WORKFLOW, namespace, name)
        if run is not None:
            run.done.wait(CONTROL_WAIT_SECONDS)  # usually over by then: its pods are gone when DELETE answers

    def _control(self, namespace: str, name: str, action: Callable[[Any], None], verb: str) -> dict[str, Any]:
        workflow = self.store.get(WORKFLOW, namespace, name)
        with self._lock:
            run = self._runs.get((namespace, name))
        if run is None or run.done.is_set():
            phase = (workflow.get("status") or {}).get("phase") or "not running"
            raise InvalidStateError(
                f"cannot {verb} workflow {name}: it is {phase}",
                hint="only running workflows can be stopped, terminated, suspended or resumed",
            )
        action(run.control)
        if verb in ("stop", "terminate"):
            # Answer with the effect, not the request: a terminate is over (pods killed, phase Failed) within
            # a moment; a stop may still run exit handlers, which we do not wait for.
            run.done.wait(CONTROL_WAIT_SECONDS)
            if not run.done.is_set():
                run.persister.flush()
        return self.store.get(WORKFLOW, namespace, name)

    # ---- execution ----------------------------------------------------------------------------------
    def _launch(self, workflow: dict[str, Any]) -> None:
        key = (workflow["metadata"]["namespace"], workflow["metadata"]["name"])
        control = runner.RunControl()
        shutdown = (workflow.get("spec") or {}).get("shutdown")  # stopped/terminated before a restart
        if shutdown == "Terminate":
            control.terminate()
        elif shutdown == "Stop":
            control.stop()
        run = _Run(control, self.store)
        with self._lock:
            previous = self._runs.get(key)
            if previous is not None and not previous.done.is_set():
                raise InvalidStateError(f"workflow {key[1]} is already running", hint="wait for it or stop it first")
            self._runs[key] = run
        thread = threading.Thread(target=self._execute, args=(workflow, run), name=f"workflow:{key[1]}", daemon=True)
        thread.start()

    def _execute(self, workflow: dict[str, Any], run: _Run) -> None:
        try:
            context = self._run_context(workflow["metadata"]["namespace"])
            runner.run_workflow(workflow, context, run.control, persister=run.persister)
            if not self._closing.is_set():
                run.persister.close(final=True)  # the finished state, written before `done` is seen
        except Exception as exc:  # the run must end in a stored phase whatever the runner did
            if self._closing.is_set():
                return
            log.exception("workflow %s crashed the runner", workflow["metadata"]["name"])
            run.persister.close(final=False)
            if not run.persister.forgotten:
                self._fail(workflow, f"engine error: {exc}")
        finally:
            run.done.set()

    def _fail(self, workflow: dict[str, Any], message: str) -> None:
        failed = copy.deepcopy(workflow)
        status = failed.setdefault("status", {})
        status.update({"phase": "Error", "message": message, "finishedAt": utc_now()})
        status.setdefault("startedAt", status["finishedAt"])
        self._save(failed, missing_ok=True)

    def _save(self, workflow: dict[str, Any], *, missing_ok: bool = False) -> dict[str, Any]:
        """Persist a workflow with Argo's phase labels (``argo list --status`` selects on them)."""
        phase = (workflow.get("status") or {}).get("phase") or ""
        labels = workflow.setdefault("metadata", {}).setdefault("labels", {})
        if phase:
            labels[PHASE_LABEL] = phase
        labels[COMPLETED_LABEL] = "true" if phase in FINISHED_PHASES else "false"
        try:
            return self.store.update(workflow)
        except NotFoundError:
            if missing_ok:  # deleted while running: do not resurrect it
                return workflow
            raise
