"""The Argo client every driftloop command uses: Hera's ``WorkflowsService`` plus what Hera lacks.

It talks to ``$DRIFTLOOP_ARGO_SERVER`` with the token ``driftloop.config`` resolves (``$DRIFTLOOP_ARGO_TOKEN``,
``$DRIFTLOOP_ARGO_TOKEN_FILE``, or the local engine's ``$DRIFTLOOP_HOME/engine/token``). When that address is local
(loopback), nothing answers and the caller allows it (``driftloop submit``), it starts the embedded engine as the
stack's ``engine`` service and says so on stderr (``driftloop stack down`` stops it), so ``driftloop submit`` works on
a fresh clone; other commands refuse with the command to run; against a real Argo Server it never starts anything.
Requests and answers are Hera's typed models (so the JSON is what Hera would send and parse), carried by httpx —
the project's one HTTP client library; a server's refusal becomes a DriftloopError with a hint, and plain dicts go
in and come out.
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

import httpx
from hera.workflows.models import (
    SubmitOpts,
    Version,
    Workflow,
    WorkflowCreateRequest,
    WorkflowList,
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
from pydantic.v1 import BaseModel

from driftloop.config import Settings, get_settings, read_argo_token
from driftloop.errors import (
    ConflictError,
    DriftloopError,
    EngineError,
    NotFoundError,
    ServiceUnavailableError,
)
from workflows.client._submission import load_submission
from workflows.spec.submit import apply_submit_options

__all__ = ["ArgoClient", "is_local_server", "serve_log_path"]

_T = TypeVar("_T")
_FINISHED = {"Succeeded", "Failed", "Error"}
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def is_local_server(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _LOCAL_HOSTS


def serve_log_path(settings: Settings) -> Any:
    """The log of an engine started by ``submit`` (it is the stack's ``engine`` service)."""
    return settings.home / "stack" / "engine.log"


_ERRORS: dict[int, tuple[type[DriftloopError], str]] = {
    404: (NotFoundError, "`driftloop runs list` shows the workflows that exist"),
    409: (ConflictError, "choose another name or delete the existing object"),
    401: (
        ServiceUnavailableError,
        "the server wants a token: set DRIFTLOOP_ARGO_TOKEN or DRIFTLOOP_ARGO_TOKEN_FILE; the embedded engine's is "
        "in $DRIFTLOOP_HOME/engine/token (is DRIFTLOOP_HOME the engine's?)",
    ),
    400: (EngineError, "fix the request; `driftloop lint FILE` checks a manifest"),
}
_TIMEOUT = httpx.Timeout(120.0, connect=10.0)


class _Refused(Exception):
    """A non-2xx answer: its status and the server's message (``{"message": ...}`` as Argo sends it)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _refusal(response: httpx.Response) -> _Refused:
    try:
        message = str(response.json()["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text or response.reason_phrase
    return _Refused(response.status_code, message)


def _server_message(message: str) -> tuple[str, str | None]:
    """The server's message, and the hint our engine appends to it (`` (hint: ...)``), if any."""
    hinted = re.match(r"(.*) \(hint: (.*)\)$", message, re.DOTALL)
    return (hinted.group(1), hinted.group(2)) if hinted else (message, None)


def _bearer(token: str | None) -> str | None:
    """``Authorization`` value for a token given bare or already with its scheme (as Hera accepts both)."""
    if not token:
        return None
    return token if len(token.strip().split()) > 1 else f"Bearer {token.strip()}"


def _as_dict(model: Any) -> dict[str, Any]:
    return dict(json.loads(model.json(by_alias=True, exclude_none=True)))


class ArgoClient:
    """One Argo Server (embedded or real); every method returns plain dicts."""

    def __init__(self, settings: Settings | None = None, *, autostart: bool = True) -> None:
        self.settings = settings or get_settings()
        self.host = self.settings.argo_server
        self.namespace = self.settings.namespace
        self.autostart = autostart
        self.token = _bearer(self.settings.argo_token)
        self._http = httpx.Client(timeout=_TIMEOUT)
        self._checked = False

    def close(self) -> None:
        self._http.close()

    # ---- HTTP -----------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Authorization": self.token} if self.token else {}

    def _request(
        self, method: str, path: str, body: BaseModel | None = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """One API call: the decoded JSON answer, or ``_Refused``; transport failures are httpx's."""
        headers = self._headers()
        content = None
        if body is not None:  # the JSON Hera's own service sends
            content = body.json(exclude_none=True, by_alias=True, exclude_unset=True, exclude_defaults=True)
            headers["Content-Type"] = "application/json"
        query = {key: value for key, value in (params or {}).items() if value is not None}
        response = self._http.request(method, self.host + path, content=content, params=query, headers=headers)
        if response.is_error:
            raise _refusal(response)
        return response.json() if response.content else {}

    # ---- reaching the server ------------------------------------------------------------------------
    def _answers(self) -> bool:
        try:
            Version(**self._request("GET", "/api/v1/version"))
            return True
        except (httpx.ConnectError, httpx.TimeoutException):
            return False
        except _Refused:  # it answered, even if to refuse us
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
        if self.token:
            return
        self.token = _bearer(read_argo_token(dict(os.environ), self.settings.home, self.host))

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        """Run one API call, translating its failures into DriftloopErrors with hints."""
        self.ensure_server()
        try:
            return call()
        except _Refused as exc:
            message, server_hint = _server_message(exc.message)
            error_type, hint = _ERRORS.get(exc.status, (EngineError, f"check the Argo Server at {self.host}"))
            raise error_type(f"{what}: {message}", hint=server_hint or hint) from None
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"{what}: {exc}", hint=f"is the Argo Server at {self.host} up?") from None

    def _workflows(self, suffix: str = "", namespace: str | None = None) -> str:
        return f"/api/v1/workflows/{self.namespace if namespace is None else namespace}{suffix}"

    def _templates(self, suffix: str = "") -> str:
        return f"/api/v1/workflow-templates/{self.namespace}{suffix}"

    # ---- workflows ----------------------------------------------------------------------------------
    def create_workflow(self, workflow: dict[str, Any]) -> dict[str, Any]:
        request = WorkflowCreateRequest(workflow=Workflow(**workflow), namespace=self.namespace)
        return _as_dict(
            self._call("create workflow", lambda: Workflow(**self._request("POST", self._workflows(), request)))
        )

    def submit_from(self, kind: str, name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        request = WorkflowSubmitRequest(
            namespace=self.namespace,
            resource_kind=kind,
            resource_name=name,
            submit_options=SubmitOpts(**options) if options else None,
        )
        created = self._call(
            f"submit from {kind} {name}", lambda: Workflow(**self._request("POST", self._workflows("/submit"), request))
        )
        return _as_dict(created)

    def get_workflow(self, name: str) -> dict[str, Any]:
        name = self.resolve_name(name)
        return _as_dict(
            self._call(f"get workflow {name}", lambda: Workflow(**self._request("GET", self._workflows(f"/{name}"))))
        )

    def list_workflows(self, label_selector: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        """Newest first; ``namespace`` overrides the configured one, ``""`` lists every namespace (``argo list -A``)."""
        params = {"listOptions.labelSelector": label_selector}
        listing = self._call(
            "list workflows",
            lambda: WorkflowList(**self._request("GET", self._workflows(namespace=namespace), params=params)),
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
        self._call(f"delete workflow {name}", lambda: self._request("DELETE", self._workflows(f"/{name}")))

    def act(self, verb: str, name: str, **options: Any) -> dict[str, Any]:
        """retry | resubmit | stop | terminate | suspend | resume, with that verb's request options."""
        name = self.resolve_name(name)
        request_by_verb: dict[str, Any] = {
            "retry": WorkflowRetryRequest,
            "resubmit": WorkflowResubmitRequest,
            "stop": WorkflowStopRequest,
            "terminate": WorkflowTerminateRequest,
            "suspend": WorkflowSuspendRequest,
            "resume": WorkflowResumeRequest,
        }
        request = request_by_verb[verb](name=name, namespace=self.namespace, **options)
        path = self._workflows(f"/{name}/{verb}")
        return _as_dict(self._call(f"{verb} workflow {name}", lambda: Workflow(**self._request("PUT", path, request))))

    def logs(self, name: str, *, node: str | None = None, follow: bool = False) -> Iterator[dict[str, str]]:
        """Log lines as ``{"podName", "content"}``; streamed (Hera's ``workflow_logs`` reads only one line)."""
        name = self.resolve_name(name)
        self.ensure_server()
        url = self.host + self._workflows(f"/{name}/log")
        params = {"podName": node or "", "logOptions.container": "main", "logOptions.follow": str(follow).lower()}
        timeout = httpx.Timeout(None, connect=10.0)  # a followed log is quiet for as long as the step is
        try:
            with self._http.stream("GET", url, params=params, headers=self._headers(), timeout=timeout) as resp:
                if resp.is_error:
                    resp.read()
                    error = NotFoundError if resp.status_code == 404 else EngineError
                    message = _refusal(resp).message
                    raise error(f"logs of {name}: {message}", hint="`driftloop runs get NAME` lists the nodes")
                for line in resp.iter_lines():
                    if line.strip():
                        yield dict(json.loads(line).get("result") or {})
        except httpx.HTTPError as exc:
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
        allow_dirty: bool = False,
    ) -> list[dict[str, Any]]:
        """Submit a pipeline (by name) or a YAML file: apply its WorkflowTemplates, then create its Workflows.

        ``parameters`` are ``name=value`` strings; returns the created workflows (as stored by the server).
        ``allow_dirty`` lets a pipeline that records its commit run from uncommitted changes (recorded as such).
        """
        templates, workflows, parameters_applied = load_submission(target, list(parameters), allow_dirty=allow_dirty)
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
            current = self._call(
                f"get template {name}", lambda: WorkflowTemplate(**self._request("GET", self._templates(f"/{name}")))
            )
        except NotFoundError:
            request = WorkflowTemplateCreateRequest(template=WorkflowTemplate(**template), namespace=self.namespace)
            created = self._call(
                f"create template {name}", lambda: WorkflowTemplate(**self._request("POST", self._templates(), request))
            )
            return _as_dict(created)
        body = dict(template)
        body["metadata"] = {**template["metadata"], "resourceVersion": current.metadata.resource_version}
        update = WorkflowTemplateUpdateRequest(template=WorkflowTemplate(**body), name=name, namespace=self.namespace)
        updated = self._call(
            f"update template {name}",
            lambda: WorkflowTemplate(**self._request("PUT", self._templates(f"/{name}"), update)),
        )
        return _as_dict(updated)
