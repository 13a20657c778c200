"""The Argo Server REST endpoints (the subset Hera's ``WorkflowsService`` and the Argo CLI use).

Each handler takes a :class:`Request` and returns a JSON-able dict, or an iterator of dicts for streamed
responses (logs). Errors are raised as DriftloopError and turned into Argo's error shape by the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from driftloop import __version__
from driftloop.errors import EngineError, NotFoundError
from workflows.engine._lint import check_workflow
from workflows.engine._logs import log_entries
from workflows.engine._names import check_metadata, check_name, check_namespace, generate_name, safe_path_segment
from workflows.engine._node_rows import wants_nodes
from workflows.engine._selectors import filter_fields
from workflows.engine.controller import Controller
from workflows.engine.store import CLUSTER_WORKFLOW_TEMPLATE, CRON_WORKFLOW, WORKFLOW, WORKFLOW_TEMPLATE

__all__ = ["ARGO_VERSION", "ROUTES", "Handler", "MethodNotAllowed", "Request", "find_route"]

ARGO_VERSION = "v3.6.0+driftloop"


@dataclass
class Request:
    controller: Controller
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)
    auth: str = "token"  # "none" when the engine serves with --auth none

    @property
    def path_is_cluster_scoped(self) -> bool:
        return "namespace" not in self.params

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in {"true", "1", "yes"}


Handler = Callable[[Request], "dict[str, Any] | Iterator[dict[str, Any]]"]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$")

    def register(handler: Handler) -> Handler:
        ROUTES.append((method, regex, handler))
        return handler

    return register


class MethodNotAllowed(EngineError):
    """The path exists, the method does not (HTTP 405)."""


def _checked_params(raw: dict[str, str]) -> dict[str, str]:
    """Every path segment, percent-decoded and checked before a handler (or a folder) sees it."""
    params = {key: unquote(value, errors="strict") for key, value in raw.items()}
    for key, value in params.items():
        if key == "namespace":
            check_namespace(value)
        elif key == "name":
            check_name(value)
        else:  # a pod: matched against node names and ids only, never joined to a path
            safe_path_segment(value, key)
            if len(value) > 253 or not value.isprintable():
                raise EngineError(f"{key} {value[:80]!r} is not a pod or node name", hint="see `driftloop runs get`")
    return params


def find_route(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    """The handler and checked path parameters for a request; 404 for an unknown path, 405 for a wrong method."""
    allowed = []
    for route_method, pattern, handler in ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            try:
                return handler, _checked_params(match.groupdict())
            except UnicodeDecodeError:
                raise EngineError("the path is not UTF-8 once percent-decoded", hint="use Kubernetes names") from None
        if match:
            allowed.append(route_method)
    if allowed:
        raise MethodNotAllowed(
            f"{method[:20]} is not allowed on {path[:200]}", hint="allowed: " + ", ".join(sorted(set(allowed)))
        )
    raise NotFoundError(f"no route for {method[:20]} {path[:200]}", hint="the Argo Server API lives under /api/v1/")


def _list_response(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": f"{kind}List", "apiVersion": "argoproj.io/v1alpha1", "metadata": {}, "items": items}


def _object(request: Request, key: str) -> dict[str, Any]:
    obj = request.body.get(key)
    if not isinstance(obj, dict):
        raise EngineError(f"the request body has no {key!r} object", hint=f'send {{"{key}": {{...manifest...}}}}')
    check_metadata(obj, namespaced=not request.path_is_cluster_scoped)
    if not isinstance(obj.get("spec", {}), dict):
        raise EngineError(f"{key}.spec must be an object", hint="see `driftloop lint FILE`")
    return obj


# ---- info ---------------------------------------------------------------------------------------------
@route("GET", "/api/v1/version")
def version(request: Request) -> dict[str, Any]:
    return {
        "version": ARGO_VERSION,
        "buildDate": "",
        "gitCommit": __version__,
        "gitTag": ARGO_VERSION,
        "gitTreeState": "clean",
        "goVersion": "python",
        "compiler": "driftloop",
        "platform": "embedded",
    }


@route("GET", "/api/v1/info")
def info(request: Request) -> dict[str, Any]:
    # driftloopAuth: not an Argo field; says whether this engine requires its token ("token") or not ("none")
    return {"managedNamespace": request.controller.namespace, "links": [], "modals": {}, "driftloopAuth": request.auth}


@route("GET", "/api/v1/userinfo")
def userinfo(request: Request) -> dict[str, Any]:
    return {"subject": "driftloop", "issuer": "embedded"}


# ---- workflows ----------------------------------------------------------------------------------------
@route("POST", "/api/v1/workflows/{namespace}")
def create_workflow(request: Request) -> dict[str, Any]:
    dry_run = bool(request.body.get("serverDryRun")) or bool((request.body.get("createOptions") or {}).get("dryRun"))
    return request.controller.submit(_object(request, "workflow"), request.params["namespace"], dry_run=dry_run)


@route("GET", "/api/v1/workflows")  # the empty namespace: every namespace, as `argo list -A` asks for it
@route("GET", "/api/v1/workflows/{namespace}")
def list_workflows(request: Request) -> dict[str, Any]:
    items = request.controller.store.list(
        WORKFLOW,
        request.params.get("namespace", ""),
        label_selector=request.query.get("listOptions.labelSelector"),
        nodes=wants_nodes(request.query.get("fields"), "items.status.nodes"),
    )
    prefix = request.query.get("namePrefix")
    if prefix:
        items = [w for w in items if w["metadata"]["name"].startswith(prefix)]
    items.reverse()  # newest first, as `argo list` shows them
    limit = request.query.get("listOptions.limit")
    if limit and limit.isdigit() and int(limit) > 0:
        items = items[: int(limit)]
    return filter_fields(_list_response(WORKFLOW, items), request.query.get("fields"))


@route("POST", "/api/v1/workflows/{namespace}/lint")
def lint_workflow(request: Request) -> dict[str, Any]:
    workflow = _object(request, "workflow")
    check_workflow(workflow, request.controller.resolver(request.params["namespace"]))
    return workflow


@route("POST", "/api/v1/workflows/{namespace}/submit")
def submit_workflow(request: Request) -> dict[str, Any]:
    kind, name = request.body.get("resourceKind", ""), request.body.get("resourceName", "")
    if not kind or not name:
        raise EngineError(
            "resourceKind and resourceName are required",
            hint='e.g. {"resourceKind": "WorkflowTemplate", "resourceName": "training"}',
        )
    check_name(name, "resourceName")
    if not isinstance(kind, str) or not isinstance(request.body.get("submitOptions") or {}, dict):
        raise EngineError("resourceKind must be a string and submitOptions an object", hint="see `argo submit --from`")
    return request.controller.submit_from(kind, name, request.params["namespace"], request.body.get("submitOptions"))


@route("GET", "/api/v1/workflows/{namespace}/{name}")
def get_workflow(request: Request) -> dict[str, Any]:
    fields = request.query.get("fields")
    namespace, name = request.params["namespace"], request.params["name"]
    workflow = request.controller.store.get(WORKFLOW, namespace, name, nodes=wants_nodes(fields, "status.nodes"))
    return filter_fields(workflow, fields)


@route("DELETE", "/api/v1/workflows/{namespace}/{name}")
def delete_workflow(request: Request) -> dict[str, Any]:
    request.controller.delete(request.params["namespace"], request.params["name"])
    return {}


def _logs(request: Request, pod: str | None) -> Iterator[dict[str, Any]]:
    controller = request.controller
    namespace, name = request.params["namespace"], request.params["name"]
    workflow = controller.store.get(WORKFLOW, namespace, name)
    grep = request.query.get("grep") or None
    if grep is not None:
        try:
            re.compile(grep)
        except re.error as exc:
            raise EngineError(f"grep {grep[:80]!r} is not a regular expression: {exc}", hint="escape it") from None
    return log_entries(
        workflow,
        controller.home,
        pod=pod,
        grep=grep,
        follow=request.flag("logOptions.follow"),
        refresh=lambda: controller.store.find(WORKFLOW, namespace, name),
    )


@route("GET", "/api/v1/workflows/{namespace}/{name}/log")
def workflow_logs(request: Request) -> Iterator[dict[str, Any]]:
    return _logs(request, request.query.get("podName") or None)


@route("GET", "/api/v1/workflows/{namespace}/{name}/{pod}/log")
def pod_logs(request: Request) -> Iterator[dict[str, Any]]:
    return _logs(request, request.params["pod"])


def _target(request: Request) -> tuple[str, str]:
    return request.params["namespace"], request.params["name"]


@route("PUT", "/api/v1/workflows/{namespace}/{name}/stop")
def stop_workflow(request: Request) -> dict[str, Any]:
    return request.controller.stop(*_target(request), message=request.body.get("message") or "")


@route("PUT", "/api/v1/workflows/{namespace}/{name}/terminate")
def terminate_workflow(request: Request) -> dict[str, Any]:
    return request.controller.terminate(*_target(request))


@route("PUT", "/api/v1/workflows/{namespace}/{name}/suspend")
def suspend_workflow(request: Request) -> dict[str, Any]:
    return request.controller.suspend(*_target(request))


@route("PUT", "/api/v1/workflows/{namespace}/{name}/resume")
def resume_workflow(request: Request) -> dict[str, Any]:
    return request.controller.resume(*_target(request), node_field_selector=request.body.get("nodeFieldSelector"))


@route("PUT", "/api/v1/workflows/{namespace}/{name}/retry")
def retry_workflow(request: Request) -> dict[str, Any]:
    return request.controller.retry(
        request.params["namespace"],
        request.params["name"],
        node_field_selector=request.body.get("nodeFieldSelector") or None,
        restart_successful=bool(request.body.get("restartSuccessful")),
        parameters=request.body.get("parameters"),
    )


@route("PUT", "/api/v1/workflows/{namespace}/{name}/resubmit")
def resubmit_workflow(request: Request) -> dict[str, Any]:
    return request.controller.resubmit(
        request.params["namespace"],
        request.params["name"],
        parameters=request.body.get("parameters"),
        memoized=bool(request.body.get("memoized")),
    )


# ---- templates and cron workflows: the same CRUD for three kinds ---------------------------------------
def _crud(kind: str, base: str, body_key: str, namespaced: bool) -> None:
    collection = f"{base}/{{namespace}}" if namespaced else base

    def namespace_of(request: Request) -> str:
        return request.params.get("namespace", "") if namespaced else ""

    def prepare(request: Request) -> dict[str, Any]:
        obj = dict(_object(request, body_key))
        obj.setdefault("apiVersion", "argoproj.io/v1alpha1")
        obj["kind"] = kind
        meta = obj.setdefault("metadata", {})
        if namespaced:
            meta["namespace"] = namespace_of(request) or meta.get("namespace") or request.controller.namespace
        check_workflow(obj, request.controller.resolver(obj["metadata"].get("namespace")))
        return obj

    def create(request: Request) -> dict[str, Any]:
        obj = prepare(request)
        meta = obj["metadata"]
        if not meta.get("name"):
            meta["name"] = generate_name(meta.get("generateName") or kind.lower() + "-")
        return request.controller.store.create(obj)

    def listing(request: Request) -> dict[str, Any]:
        items = request.controller.store.list(
            kind, namespace_of(request), label_selector=request.query.get("listOptions.labelSelector")
        )
        return filter_fields(_list_response(kind, items), request.query.get("fields"))

    def lint(request: Request) -> dict[str, Any]:
        return prepare(request)

    def get(request: Request) -> dict[str, Any]:
        return request.controller.store.get(kind, namespace_of(request), request.params["name"])

    def update(request: Request) -> dict[str, Any]:
        obj = prepare(request)
        obj["metadata"]["name"] = request.params["name"]
        current = request.controller.store.get(kind, namespace_of(request), request.params["name"])
        if "status" not in obj and "status" in current:
            obj["status"] = current["status"]
        return request.controller.store.update(obj, expect_version=obj["metadata"].get("resourceVersion"))

    def delete(request: Request) -> dict[str, Any]:
        request.controller.store.delete(kind, namespace_of(request), request.params["name"])
        return {}

    route("POST", collection)(create)
    route("GET", collection)(listing)
    route("POST", f"{collection}/lint")(lint)
    route("GET", f"{collection}/{{name}}")(get)
    route("PUT", f"{collection}/{{name}}")(update)
    route("DELETE", f"{collection}/{{name}}")(delete)


_crud(WORKFLOW_TEMPLATE, "/api/v1/workflow-templates", "template", namespaced=True)
_crud(CLUSTER_WORKFLOW_TEMPLATE, "/api/v1/cluster-workflow-templates", "template", namespaced=False)
_crud(CRON_WORKFLOW, "/api/v1/cron-workflows", "cronWorkflow", namespaced=True)


def _set_cron_suspended(suspended: bool) -> Handler:
    def handler(request: Request) -> dict[str, Any]:
        store = request.controller.store
        cron = store.get(CRON_WORKFLOW, request.params["namespace"], request.params["name"])
        cron.setdefault("spec", {})["suspend"] = suspended
        return store.update(cron)

    return handler


route("PUT", "/api/v1/cron-workflows/{namespace}/{name}/suspend")(_set_cron_suspended(True))
route("PUT", "/api/v1/cron-workflows/{namespace}/{name}/resume")(_set_cron_suspended(False))
