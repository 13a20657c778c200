"""The embedded Argo Server: Argo's REST API over ``http.server``, backed by the store and the controller.

Errors come back in grpc-gateway's shape (``{"code": N, "message": "...", "details": []}``) with the HTTP status
Argo uses, so Hera's ``WorkflowsService`` raises the same exceptions it raises against a real Argo Server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from driftloop.errors import (
    DriftloopError,
    ServiceUnavailableError,
)
from workflows.engine._api_errors import error_body, status_of
from workflows.engine._api_routes import Request, find_route
from workflows.engine._auth import AccessPolicy, Refusal
from workflows.engine._limits import parse_content_length, parse_json_object
from workflows.engine._lint import lint_object
from workflows.engine._lock import EngineLock
from workflows.engine.console import ConsoleApp, ModelSources
from workflows.engine.controller import Controller
from workflows.engine.store import Store

__all__ = ["MAX_REQUEST_THREADS", "EngineServer", "error_body", "status_of"]

log = logging.getLogger(__name__)

# Requests served at once (one thread each). Past it a connection gets a 503 at once instead of a thread: a
# flood of connections (or of slow clients, each holding its thread up to the handler's timeout) must not
# grow threads without bound and starve the runs. `argo` and the CLIs retry a 503.
MAX_REQUEST_THREADS = 64
_CLIENT_GONE = (ConnectionError, TimeoutError)  # BrokenPipe, ConnectionReset/Aborted; a client too slow to read


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.0"  # one request per connection: streamed logs end when the socket closes
    timeout = 60  # a client that stops sending (slowloris) gives its thread back

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def __getattr__(self, name: str) -> Any:
        """Any other method (OPTIONS, PATCH, HEAD, FOO…) answers 405, not http.server's 501."""
        if name.startswith("do_"):
            return lambda: self._dispatch(name[3:])
        raise AttributeError(name)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _refuse(self, refusal: Refusal) -> None:
        self._send(refusal.status, {"code": refusal.code, "message": refusal.message, "details": []})

    def _guard(self, method: str) -> Refusal | None:
        """Host, Origin, token and Content-Type, in that order, before anything reads the body."""
        policy = self.server.policy
        has_body = bool((self.headers.get("Content-Length") or "").strip() not in {"", "0"})
        return (
            policy.check_host(self.headers.get("Host"))
            or policy.check_origin(self.headers.get("Origin"))
            or policy.check_token(self.headers.get("Authorization"))
            or policy.check_content_type(method, self.headers.get("Content-Type"), has_body)
        )

    def _dispatch(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        if not path.startswith("/api/"):
            self._console(method)
            return
        try:
            refusal = self._guard(method)
            if refusal is not None:
                if refusal.status == 401:
                    log.warning("refused %s %s from %s: no valid token", method, path[:200], self.address_string())
                self._refuse(refusal)
                return
            length = parse_content_length(self.headers.get("Content-Length"))
            if "Transfer-Encoding" in self.headers:
                self._send(411, {"code": 3, "message": "send the body with a Content-Length", "details": []})
                return
            handler, params = find_route(method, path)
            body = parse_json_object(self.rfile.read(length)) if length else {}
            result = handler(Request(self.server.controller, params, dict(parse_qsl(query)), body, self.server.auth))
            if isinstance(result, dict):
                self._send(200, result)
            else:
                self._stream(result)
        except DriftloopError as exc:
            self._send(status_of(exc)[1], error_body(exc))
        except (BrokenPipeError, ConnectionResetError):
            log.info("%s %s: the client went away before the answer", method, path[:200])
        except TimeoutError:  # it declared a body it did not send
            self._send(408, {"code": 4, "message": "timed out waiting for the request body", "details": []})
        except Exception as exc:  # a bug must answer 500, not kill the connection silently
            log.exception("%s %s failed", method, path[:200])
            self._send(500, error_body(exc))

    def _console(self, method: str) -> None:
        """Everything outside /api/ is the operator console (its own login, CSRF and origin checks), after the
        Host check every request passes."""
        refusal = self.server.policy.check_host(self.headers.get("Host"))
        if refusal is not None:
            self._refuse(refusal)
            return
        try:
            self.server.console.handle(method, self.path, self.headers, self.rfile.read).write_to(self)
        except _CLIENT_GONE:
            log.info("%s %s: the client went away before the answer", method, self.path[:200])

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # e.g. it sent a 4 GB body, got 413 and hung up
            log.info("the client went away before its %d answer", status)

    def _stream(self, entries: Iterator[dict[str, Any]]) -> None:
        first = next(entries, None)  # errors before the first line still get a proper status
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            for entry in [first] if first is not None else []:
                self.wfile.write(json.dumps(entry).encode() + b"\n")
            for entry in entries:
                self.wfile.write(json.dumps(entry).encode() + b"\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            log.info("log stream closed by the client")


def _kill_child_process_groups() -> None:
    """SIGKILL the process group of every direct child (each step runs in a group of its own)."""
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        pid, parent, group = int(stat.parent.name), int(fields[1]), int(fields[2])
        if parent == me and group != os.getpgid(0):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        elif parent == me:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _warm_up_linter() -> None:
    """Load the linter's schemas now, so the first submission does not wait seconds for them."""
    try:
        lint_object({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "warm-up"},
                     "spec": {"entrypoint": "a", "templates": [{"name": "a", "suspend": {}}]}})  # fmt: skip
    except Exception:  # only an optimisation; a real submission reports any problem
        log.debug("linter warm-up failed", exc_info=True)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    max_request_threads = MAX_REQUEST_THREADS
    request_queue_size = 128  # listen backlog (socketserver's 5 drops a burst's SYNs: 1 s retries)

    def __init__(
        self,
        address: tuple[str, int],
        controller: Controller,
        token: str | None,
        allowed_hosts: frozenset[str],
        model_sources: ModelSources | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.controller = controller
        self.auth = "none" if token is None else "token"
        bound = str(address[0]).lower()
        hosts = allowed_hosts | ({bound} if bound not in {"", "0.0.0.0", "::"} else set())
        self.policy = AccessPolicy(token=token, port=int(self.server_address[1]), allowed_hosts=frozenset(hosts))
        self.console = ConsoleApp(controller, self.policy, self.auth, model_sources)
        self._slots = threading.BoundedSemaphore(self.max_request_threads)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per request up to the cap; past it a 503 from the accepting thread, without reading."""
        if not self._slots.acquire(blocking=False):
            _answer_busy(request, self.max_request_threads)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (mid-request or mid-answer) is one quiet line, not socketserver's traceback
        on stderr; anything else is logged with its traceback, through logging."""
        error = sys.exc_info()[1]
        peer = client_address[0] if isinstance(client_address, tuple) and client_address else client_address
        if isinstance(error, _CLIENT_GONE):
            log.info("%s went away before its answer was complete (%s)", peer, type(error).__name__)
        else:
            log.exception("serving a request from %s failed", peer)


def _answer_busy(request: Any, limit: int) -> None:
    body = json.dumps(
        {"code": 14, "message": f"the engine is serving {limit} requests already; retry shortly", "details": []}
    ).encode()
    head = (
        "HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        request.settimeout(0.5)  # never hold up the accepting thread for a client that does not read
        request.sendall(head + body)
        request.setblocking(False)
        while request.recv(65536):  # what it sent so far: unread input would turn the close into a reset
            pass
    except OSError:
        pass


class EngineServer:
    """Lock the home, open the store, resume unfinished workflows, serve the API until :meth:`shutdown`."""

    def __init__(
        self,
        home: Path,
        *,
        host: str,
        port: int,
        namespace: str,
        token: str | None,
        allowed_hosts: frozenset[str] = frozenset(),
        model_sources: ModelSources | None = None,
    ) -> None:
        """``token`` None serves without authentication (``--auth none``); say so loudly where you allow it.

        ``model_sources`` gives the console's model page the registry and GitOps history (the engine's layer
        imports neither; ``driftloop engine serve`` passes them in).
        """
        self.home = home
        self.lock = EngineLock(home)
        self.lock.acquire()
        try:
            self.store = Store.open(home)
            self.controller = Controller(self.store, home, namespace=namespace)
            self.httpd = _HTTPServer((host, port), self.controller, token, allowed_hosts, model_sources)
        except OSError as exc:
            self.lock.release()
            raise ServiceUnavailableError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="pick another port with --port, or stop what already listens there",
            ) from None
        except BaseException:
            self.lock.release()
            raise
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve_forever(self) -> None:
        threading.Thread(target=_warm_up_linter, name="lint-warm-up", daemon=True).start()
        resumed = self.controller.start()
        log.info("serving the Argo API on %s (%d workflow(s) resumed)", self.url, resumed)
        if self.httpd.auth == "none":
            log.warning("AUTHENTICATION IS OFF (--auth none): anyone who can reach %s can run commands", self.url)
        self.httpd.serve_forever(poll_interval=0.2)

    def start_background(self) -> None:
        """Serve from a thread (tests and in-process use)."""
        self._thread = threading.Thread(target=self.serve_forever, name="engine-server", daemon=True)
        self._thread.start()

    def close(self, *, kill_steps: bool = False) -> None:
        """Release everything once serving has ended; unfinished workflows resume on the next start.

        With ``kill_steps`` (the ``engine serve`` process, whose children are all steps) the steps still running
        are killed, leaving no orphans; their nodes are not marked: the next start finds them Running and the
        runner retries or errors them, exactly as after a crash.
        """
        self.httpd.server_close()
        self.controller.close()
        if kill_steps:
            _kill_child_process_groups()
        self.store.close()
        self.lock.release()

    def shutdown(self) -> None:
        """Stop a :meth:`start_background` server and release everything."""
        self.httpd.shutdown()
        if self._thread is not None:
            self._thread.join(5)
        self.close()
