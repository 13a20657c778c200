"""The Argo client every driftloop command uses: Hera's ``WorkflowsService`` plus what Hera lacks.

It talks to ``$DRIFTLOOP_ARGO_SERVER`` with the token ``driftloop.config`` resolves (``$DRIFTLOOP_ARGO_TOKEN``,
``$DRIFTLOOP_ARGO_TOKEN_FILE``, or the local engine's ``$DRIFTLOOP_HOME/engine/token``). When that address is local
(loopback), nothing answers and the caller allows it (``driftloop submit``), it starts the embedded engine as the
stack's ``engine`` service and says so on stderr (``driftloop stack down`` stops it), so ``driftloop submit`` works on
a fresh clone; other commands refuse with the command to run; against a real Argo Server it never starts anything.
Hera's exceptions become DriftloopErrors with hints, and plain dicts go in and come out.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from hera.exceptions import AlreadyExists, BadRequest, HeraException, NotFound, Unauthorized
from hera.workflows.models import (
    SubmitOpts,
    Workflow,
    WorkflowCreateRequest,
    WorkflowResubmitRequest,
    WorkflowResumeRequest,
    WorkflowRetryRequest,
    WorkflowStopRequest,
    WorkflowSubmitRequest,
    WorkflowSuspendRequest,
    WorkflowTemplate,
    WorkflowTemplateCreateRequest,
    WorkflowTemplateUpdateRequest,
    WorkflowTerminateRequest,
)
from hera.workflows.service import WorkflowsService

from driftloop.config import Settings, get_settings, read_argo_token
from driftloop.errors import (
    ConflictError,
    DriftloopError,
    EngineError,
    NotFoundError,
    ServiceUnavailableError,
)

__all__ = ["ArgoClient", "is_local_server", "serve_log_path"]

_T = TypeVar("_T")
_FINISHED = {"Succeeded", "Failed", "Error"}
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def is_local_server(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _LOCAL_HOSTS


def serve_log_path(settings: Settings) -> Any:
    """The log of an engine started by ``submit`` (it is the stack's ``engine`` service)."""
    return settings.home / "stack" / "engine.log"


_ERRORS: list[tuple[type[HeraException], type[DriftloopError], str]] = [
    (NotFound, NotFoundError, "`driftloop runs list` shows the workflows that exist"),
    (AlreadyExists, ConflictError, "choose another name or delete the existing object"),
    (
        Unauthorized,
        ServiceUnavailableError,
        "the server wants a token: set DRIFTLOOP_ARGO_TOKEN or DRIFTLOOP_ARGO_TOKEN_FILE; the embedded engine's is "
        "in $DRIFTLOOP_HOME/engine/token (is DRIFTLOOP_HOME the engine's?)",
    ),
    (BadRequest, EngineError, "fix the request; `driftloop lint FILE` checks a manifest"),
]


def _server_message(exc: HeraException) -> tuple[str, str | None]:
    """The server's own message out of Hera's wrapper, and the hint our engine appends to it, if any."""
    text = str(exc)
    match = re.search(r"with message: `(.*)`\s*$", text, re.DOTALL)
    message = match.group(1) if match else text
    hinted = re.match(r"(.*) \(hint: (.*)\)$", message, re.DOTALL)
    return (hinted.group(1), hinted.group(2)) if hinted else (message, None)


def _as_dict(model: Any) -> dict[str, Any]:
    return dict(json.loads(model.json(by_alias=True, exclude_none=True)))


class ArgoClient:
    """One Argo Server (embedded or real); every method returns plain dicts."""

    def __init__(self, settings: Settings | None = None, *, autostart: bool = True) -> None:
        self.settings = settings or get_settings()
        self.host = self.settings.argo_server
        self.namespace = self.settings.namespace
        self.autostart = autostart
        self.service = WorkflowsService(
            host=self.host + "/", token=self.settings.argo_token or None, namespace=self.namespace
        )
        self._checked = False

    # ---- reaching the server ------------------------------------------------------------------------
    def _answers(self) -> bool:
        try:
            self.service.get_version()
            return True
        except (requests.ConnectionError, requests.Timeout):
            return False
        except HeraException:  # it answered, even if to refuse us
            return True

    def ensure_server(self) -> None:
        """Make sure an Argo Server answers, starting the embedded engine when the address is local."""
        if self._checked or self._answers():
            self._checked = True
            return
        if not is_local_server(self.host):
            raise ServiceUnavailableError(
                f"no Argo Server answers at {self.host}",
                hint="check DRIFTLOOP_ARGO_SERVER and that the server is up (`kubectl -n argo get svc`)",
            )
        if not self.autostart:
            raise ServiceUnavailableError(
                f"no Argo Server answers at {self.host}",
                hint="start the embedded engine with `driftloop stack up engine` (`driftloop submit` starts it too)",
            )
        self._start_embedded()
        self._checked = True

    def _start_embedded(self) -> None:
        """Start the embedded engine as the stack's ``engine`` service, and say so.

        One code path with ``driftloop stack up engine``: the PID file and log live under
        ``$DRIFTLOOP_HOME/stack/``, so ``driftloop stack status`` shows it and ``driftloop stack down`` stops it.
        """
        from driftloop.stack import ProcessManager
        from driftloop.stack.services import service

        manager = ProcessManager(self.settings)
        state = manager.start(service("engine"))
        print(
            f"note: no Argo Server answered at {self.host}, so the embedded engine was started there "
            f"(pid {state.pid}, log {state.log}); it keeps running: `driftloop stack down engine` stops it",
            file=sys.stderr,
        )
        self._use_engine_token()

    def _use_engine_token(self) -> None:
        """A fresh engine generated its token on start: read it now (the settings were read before it existed)."""
        if self.service.token:
            return
        token = read_argo_token(dict(os.environ), self.settings.home, self.host)
        if token:
            self.service.token = f"Bearer {token}"

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        """Run one Hera call, translating its failures into DriftloopErrors with hints."""
        self.ensure_server()
        try:
            return call()
        except HeraException as exc:
            message, server_hint = _server_message(exc)
            for hera_type, error_type, hint in _ERRORS:
                if isinstance(exc, hera_type):
                    raise error_type(f"{what}: {message}", hint=server_hint or hint) from None
            raise EngineError(
                f"{what}: {message}", hint=server_hint or f"check the Argo Server at {self.host}"
            ) from None
        except requests.RequestException as exc:
            raise ServiceUnavailableError(f"{what}: {exc}", hint=f"is the Argo Server at {self.host} up?") from None

    # ---- workflows ----------------------------------------------------------------------------------
    def create_workflow(self, workflow: dict[str, Any]) -> dict[str, Any]:
        request = WorkflowCreateRequest(workflow=Workflow(**workflow), namespace=self.namespace)
        return _as_dict(self._call("create workflow", lambda: self.service.create_workflow(request)))

    def submit_from(self, kind: str, name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        request = WorkflowSubmitRequest(
            namespace=self.namespace,
            resource_kind=kind,
            resource_name=name,
            submit_options=SubmitOpts(**options) if options else None,
        )
        return _as_dict(self._call(f"submit from {kind} {name}", lambda: self.service.submit_workflow(request)))

    def get_workflow(self, name: str) -> dict[str, Any]:
        name = self.resolve_name(name)
        return _as_dict(self._call(f"get workflow {name}", lambda: self.service.get_workflow(name)))

    def list_workflows(self, label_selector: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        """Newest first; ``namespace`` overrides the configured one, ``""`` lists every namespace (``argo list -A``)."""
        listing = self._call(
            "list workflows", lambda: self.service.list_workflows(namespace=namespace, label_selector=label_selector)
        )
        items = [_as_dict(item) for item in listing.items or []]
        return sorted(items, key=lambda w: w["metadata"].get("creationTimestamp", ""), reverse=True)

    def resolve_name(self, name: str) -> str:
        """``@latest`` -> the newest workflow's name (as the Argo CLI does)."""
        if name != "@latest":
            return name
        workflows = self.list_workflows()
        if not workflows:
            raise NotFoundError("there is no workflow yet", hint="submit one with `driftloop submit training`")
        return str(workflows[0]["metadata"]["name"])

    def delete_workflow(self, name: str) -> None:
        name = self.resolve_name(name)
        self._call(f"delete workflow {name}", lambda: self.service.delete_workflow(name))

    def act(self, verb: str, name: str, **options: Any) -> dict[str, Any]:
        """retry | resubmit | stop | terminate | suspend | resume, with that verb's request options."""
        name = self.resolve_name(name)
        requests_by_verb: dict[str, tuple[Any, Any]] = {
            "retry": (WorkflowRetryRequest, self.service.retry_workflow),
            "resubmit": (WorkflowResubmitRequest, self.service.resubmit_workflow),
            "stop": (WorkflowStopRequest, self.service.stop_workflow),
            "terminate": (WorkflowTerminateRequest, self.service.terminate_workflow),
            "suspend": (WorkflowSuspendRequest, self.service.suspend_workflow),
            "resume": (WorkflowResumeRequest, self.service.resume_workflow),
        }
        request_type, method = requests_by_verb[verb]
        request = request_type(name=name, namespace=self.namespace, **options)
        return _as_dict(self._call(f"{verb} workflow {name}", lambda: method(name, request)))

    def logs(self, name: str, *, node: str | None = None, follow: bool = False) -> Iterator[dict[str, str]]:
        """Log lines as ``{"podName", "content"}``; streamed (Hera's ``workflow_logs`` reads only one line)."""
        name = self.resolve_name(name)
        self.ensure_server()
        url = f"{self.host}/api/v1/workflows/{self.namespace}/{name}/log"
        params = {"podName": node or "", "logOptions.container": "main", "logOptions.follow": str(follow).lower()}
        headers = {"Authorization": self.service.token} if self.service.token else {}
        try:
            with self.service.session.get(url, params=params, headers=headers, stream=True, timeout=None) as resp:
                if not resp.ok:
                    message = resp.json().get("message", resp.text) if resp.content else resp.reason
                    error = NotFoundError if resp.status_code == 404 else EngineError
                    raise error(f"logs of {name}: {message}", hint="`driftloop runs get NAME` lists the nodes")
                for line in resp.iter_lines():
                    if line.strip():
                        yield dict(json.loads(line).get("result") or {})
        except requests.RequestException as exc:
            raise ServiceUnavailableError(
                f"logs of {name}: {exc}", hint=f"is the Argo Server at {self.host} up?"
            ) from None

    def submit(
        self,
        target: str,
        *,
        parameters: Sequence[str] = (),
        entrypoint: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Submit a pipeline (by name) or a YAML file: apply its WorkflowTemplates, then create its Workflows.

        ``parameters`` are ``name=value`` strings; returns the created workflows (as stored by the server).
        """
        from workflows.engine._submission import load_submission
        from workflows.engine._submit import apply_submit_options

        templates, workflows, parameters_applied = load_submission(target, list(parameters))
        for template in templates:
            self.apply_template(template)
        options = {
            "parameters": [] if parameters_applied else list(parameters),
            "entryPoint": entrypoint,
            "labels": ",".join(f"{key}={value}" for key, value in (labels or {}).items()),
        }
        return [self.create_workflow(apply_submit_options(workflow, options)) for workflow in workflows]

    def wait(
        self,
        name: str,
        *,
        poll_seconds: float = 1.0,
        timeout: float | None = None,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the workflow has finished (Succeeded, Failed or Error); returns its final state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            workflow = self.get_workflow(name)
            if on_update is not None:
                on_update(workflow)
            if (workflow.get("status") or {}).get("phase") in _FINISHED:
                return workflow
            if deadline is not None and time.monotonic() > deadline:
                raise EngineError(
                    f"workflow {name} has not finished after {timeout:.0f} s",
                    hint=f"follow it with `driftloop runs get {name}`",
                )
            time.sleep(poll_seconds)

    # ---- workflow templates -------------------------------------------------------------------------
    def apply_template(self, template: dict[str, Any]) -> dict[str, Any]:
        """Create the WorkflowTemplate, or update it in place when it exists (``kubectl apply``)."""
        name = template["metadata"]["name"]
        try:
            current = self._call(f"get template {name}", lambda: self.service.get_workflow_template(name))
        except NotFoundError:
            request = WorkflowTemplateCreateRequest(template=WorkflowTemplate(**template), namespace=self.namespace)
            created = self._call(f"create template {name}", lambda: self.service.create_workflow_template(request))
            return _as_dict(created)
        body = dict(template)
        body["metadata"] = {**template["metadata"], "resourceVersion": current.metadata.resource_version}
        update = WorkflowTemplateUpdateRequest(template=WorkflowTemplate(**body), name=name, namespace=self.namespace)
        updated = self._call(f"update template {name}", lambda: self.service.update_workflow_template(name, update))
        return _as_dict(updated)
