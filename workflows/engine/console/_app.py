"""The console's front door: routes, login, the CSRF and origin checks, errors as HTML pages that name the problem.

The engine's HTTP server hands every request outside ``/api/`` to :meth:`ConsoleApp.handle` after its Host check
(DNS rebinding); the API's own routes and checks are untouched. Order here: static files (no data, no login);
the Origin/``Sec-Fetch-Site`` check (a cross-site page never gets an answer, GET or POST); login (``?token=`` or
the form) → cookie → redirect without the token; a page needs a session (else the login page, 401); a POST needs
its CSRF token (else 403). Errors are the project's DriftloopErrors rendered as a short page with the status
the API would use — never a traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlencode

from driftloop.errors import DriftloopError, EngineError, NotFoundError
from driftloop.registry_contract import APPROVAL_TASK
from workflows.engine._api_errors import status_of
from workflows.engine._auth import AccessPolicy
from workflows.engine._limits import short_message
from workflows.engine._names import check_name, check_namespace
from workflows.engine.console import _static
from workflows.engine.console._actions import ACTIONS, artifact_download, parse_form, run_action
from workflows.engine.console._approval import APPROVE_ACTION, record_decision
from workflows.engine.console._catalog import crons_page, templates_page
from workflows.engine.console._html import esc, layout
from workflows.engine.console._list import list_page
from workflows.engine.console._models import model_page
from workflows.engine.console._page import Page
from workflows.engine.console._reports import REPORT_CSP, report_file
from workflows.engine.console._session import SessionKeys
from workflows.engine.console._sources import ModelSources
from workflows.engine.console._workflow import workflow_page
from workflows.engine.controller import Controller
from workflows.engine.store import WORKFLOW

__all__ = ["ConsoleApp", "Page"]

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 16 * 1024  # the console's forms hold a CSRF token and a login token, nothing more


class Headers(Protocol):
    """What the console reads of a request's headers (``http.server``'s Message, or a dict in tests)."""

    def get(self, name: str, default: None = None, /) -> str | None: ...


def _html(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Page:
    return Page(status, text.encode(), headers=headers or [])


def _redirect(location: str, headers: list[tuple[str, str]] | None = None) -> Page:
    return Page(303, b"", "text/plain; charset=utf-8", [("Location", location), *(headers or [])])


def _local_target(next_url: str) -> str:
    """Where to go after logging in: a path on this server only (no ``//host`` or ``scheme:`` open redirect)."""
    if next_url.startswith("/") and not next_url.startswith("//") and "\\" not in next_url and next_url.isprintable():
        return next_url
    return "/workflows"


def _without_token(path: str, query: str) -> str:
    rest = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "token"]
    return path + ("?" + urlencode(rest) if rest else "")


Route = Callable[["ConsoleApp", re.Match[str], dict[str, str], str], Page]
_ROUTES: list[tuple[str, re.Pattern[str], str]] = []


def _route(method: str, pattern: str, name: str) -> None:
    _ROUTES.append((method, re.compile("^" + pattern + "/?$"), name))


_route("GET", r"/workflows(?:/(?P<namespace>[^/]+))?", "workflows")
_route("GET", r"/workflows/(?P<namespace>[^/]+)/(?P<name>[^/]+)", "workflow")
_route("GET", r"/workflows/(?P<namespace>[^/]+)/(?P<name>[^/]+)/artifacts/(?P<node>[^/]+)/(?P<artifact>[^/]+)",
       "artifact")  # fmt: skip
_route("POST", r"/workflows/(?P<namespace>[^/]+)/(?P<name>[^/]+)/(?P<action>[a-z]+)", "action")
_route("GET", r"/workflow-templates(?:/(?P<namespace>[^/]+))?", "templates")
_route("GET", r"/cron-workflows(?:/(?P<namespace>[^/]+))?", "crons")
_route("GET", r"/models/(?P<model>[^/]+)", "model")
_route("GET", r"/models/(?P<model>[^/]+)/reports/(?P<report>[^/]+)", "report")


class ConsoleApp:
    """Serves the console pages for one engine (its controller, its token, its port)."""

    def __init__(
        self, controller: Controller, policy: AccessPolicy, auth: str, model_sources: ModelSources | None = None
    ) -> None:
        self.controller = controller
        self.model_sources = model_sources
        self.policy = policy
        self.auth = auth
        self.keys = SessionKeys(policy.token, policy.port)

    @property
    def home(self) -> Path:
        return self.controller.home

    def handle(self, method: str, target: str, headers: Headers, read_body: Callable[[int], bytes]) -> Page:
        path, _, query = target.partition("?")
        try:
            return self._handle(method, path, query, headers, read_body)
        except DriftloopError as exc:
            return self._error(status_of(exc)[1], short_message(exc), exc.hint)
        except Exception:  # a bug: a 500 page that says where to look, never a traceback in the browser
            log.exception("console: %s %s failed", method, path[:200])
            return self._error(500, "the console failed to render this page", "the engine's log has the details")

    def _error(self, status: int, message: str, hint: str | None = None) -> Page:
        hint_html = f'<p class="hint">{esc(hint)}</p>' if hint else ""
        body = f'<h1>{status}</h1><p class="error" role="alert">{esc(message)}</p>{hint_html}'
        return _html(status, layout(f"Error {status}", body + '<p><a href="/workflows">Back to workflows</a></p>'))

    def _handle(self, method: str, path: str, query: str, headers: Headers, read_body: Callable[[int], bytes]) -> Page:
        if method == "GET" and path.startswith("/console/static/"):
            return _static.asset(path.removeprefix("/console/static/"))
        refusal = self.policy.check_origin(headers.get("Origin"))
        if method != "GET" and (headers.get("Sec-Fetch-Site") or "").lower() == "cross-site":
            # a GET from a link elsewhere is fine: SameSite=Strict sends no cookie with it, so it gets the login page
            return self._error(403, "cross-site request refused: the console takes forms from its own pages only")
        if refusal is not None:
            return self._error(403, refusal.message)
        if method not in {"GET", "POST"}:
            return self._error(405, f"{method[:20]} is not allowed on the console", "use GET or POST")
        params = dict(parse_qsl(query, keep_blank_values=True))
        if method == "GET" and "token" in params:
            return self._login_with(params["token"], _without_token(path, query))
        if path == "/":
            return _redirect("/workflows")
        if path == "/login":
            return self._login_page(method, params, headers, read_body)
        session = self.keys.session_of(headers)
        if session is None:
            return self._login_form(
                401, _local_target(_without_token(path, query)) if method == "GET" else "/workflows"
            )
        form: dict[str, str] = {}
        if method == "POST":
            form = self._read_form(headers, read_body)
            if not self.keys.csrf_matches(session, form.get("csrf")):
                return self._error(403, "CSRF token missing or not valid: submit the console's own forms",
                                   "reload the page and try again")  # fmt: skip
            if path == "/logout":
                return _redirect("/login", [("Set-Cookie", self.keys.clear_cookie())])
        # a page gets its query's fields, a POST its form's (the action page reads the approval form from them)
        return self._dispatch(method, path, form if method == "POST" else params, self.keys.csrf_for(session))

    def _read_form(self, headers: Headers, read_body: Callable[[int], bytes]) -> dict[str, str]:
        text = (headers.get("Content-Length") or "0").strip()
        if not text.isdigit():
            raise EngineError(f"Content-Length {text[:20]!r} is not a number", hint="send a form")
        length = int(text)
        if length > MAX_FORM_BYTES:
            raise EngineError(f"the form is {length} bytes; the console takes {MAX_FORM_BYTES} at most")
        return parse_form(read_body(length)) if length else {}

    def _login_with(self, token: str, clean_url: str) -> Page:
        if not self.keys.requires_login:
            return _redirect(_local_target(clean_url))
        if not self.keys.token_matches(token):
            return self._login_form(401, _local_target(clean_url), "that token is not this engine's token")
        return _redirect(_local_target(clean_url), [("Set-Cookie", self.keys.set_cookie(self.keys.new_session()))])

    def _login_page(
        self, method: str, params: dict[str, str], headers: Headers, read_body: Callable[[int], bytes]
    ) -> Page:
        if method == "GET":
            return self._login_form(200, _local_target(params.get("next", "/workflows")))
        form = self._read_form(headers, read_body)
        return self._login_with(form.get("token", ""), _local_target(form.get("next", "/workflows")))

    def _login_form(self, status: int, next_url: str, problem: str = "") -> Page:
        alert = f'<p class="error" role="alert">{esc(problem)}</p>' if problem else ""
        body = (
            f"<h1>Log in to the driftloop console</h1>{alert}"
            "<p>Paste the engine's token: <code>$DRIFTLOOP_HOME/engine/token</code> (or the one in "
            "<code>DRIFTLOOP_ARGO_TOKEN</code>). The console keeps a session cookie; the token never stays in a URL.</p>"
            '<form method="post" action="/login" class="login">'
            f'<input type="hidden" name="next" value="{esc(next_url)}">'
            '<label>Token <input type="password" name="token" autocomplete="current-password" required autofocus>'
            '</label><button type="submit">Log in</button></form>'
        )
        return _html(status, layout("Log in", body))

    def _dispatch(self, method: str, path: str, params: dict[str, str], csrf: str) -> Page:
        allowed: list[str] = []
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            try:
                values = {k: unquote(v, errors="strict") for k, v in match.groupdict().items() if v is not None}
            except UnicodeDecodeError:
                raise EngineError("the path is not UTF-8 once percent-decoded", hint="use Kubernetes names") from None
            if "namespace" in values:
                check_namespace(values["namespace"])
            if "name" in values:
                check_name(values["name"])
            return getattr(self, "_page_" + name)(values, params, csrf)
        if allowed:
            return self._error(405, f"{method} is not allowed on {path[:200]}", "allowed: " + ", ".join(set(allowed)))
        raise NotFoundError(f"no console page at {path[:200]}", hint="start at /workflows")

    # ---- pages --------------------------------------------------------------------------------------
    def _page_workflows(self, values: dict[str, str], params: dict[str, str], csrf: str) -> Page:
        return _html(200, list_page(self.controller.store, values.get("namespace", ""), params, csrf))

    def _page_workflow(self, values: dict[str, str], params: dict[str, str], csrf: str) -> Page:
        workflow = self.controller.store.get(WORKFLOW, values["namespace"], values["name"])
        return _html(200, workflow_page(workflow, self.home, params, csrf))

    def _page_artifact(self, values: dict[str, str], params: dict[str, str], csrf: str) -> Page:
        filename, content = artifact_download(
            self.controller, values["namespace"], values["name"], values["node"], values["artifact"]
        )
        disposition = [("Content-Disposition", f'attachment; filename="{filename}"')]
        return Page(200, content, "application/octet-stream", disposition)

    def _page_action(self, values: dict[str, str], params: dict[str, str], csrf: str) -> Page:
        action, namespace, name = values["action"], values["namespace"], values["name"]
        if action == APPROVE_ACTION:  # record who decided and why, then resume the approval node only
            workflow = self.controller.store.get(WORKFLOW, namespace, name)
            log.info("console: %s", record_decision(self.model_sources, workflow, params))
            selector = {"nodeFieldSelector": f"templateName={APPROVAL_TASK}"}
            return _redirect(run_action(self.controller, self.auth, namespace, name, "resume", selector))
        if action not in ACTIONS:
            raise NotFoundError(f"no action {action[:40]!r}", hint="one of " + ", ".join((*ACTIONS, APPROVE_ACTION)))
        log.info("console: %s %s/%s", action, namespace, name)
        return _redirect(run_action(self.controller, self.auth, namespace, name, action))

    def _page_templates(self, values: dict[str, str], params: dict[str, str], csrf: str) -> Page:
        return _html(200, templates_page(self.controller.store, values.get("namespace", ""), csrf))

    def _page_crons(self, values: dict[str, str], params: dict[str, str], csrf: str) -> Page:
        return _html(200, crons_page(self.controller.store, values.get("namespace", ""), csrf))

    def _page_report(self, values: dict[str, str], params: dict[str, str], csrf: str) -> Page:
        check_name(values["model"], "model")
        path = report_file(values["model"], values["report"])
        return Page(200, path, "text/html; charset=utf-8", [("Content-Security-Policy", REPORT_CSP)])

    def _page_model(self, values: dict[str, str], params: dict[str, str], csrf: str) -> Page:
        check_name(values["model"], "model")
        return _html(200, model_page(values["model"], self.controller.namespace, csrf, self.model_sources))
