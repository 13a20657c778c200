"""Who may talk to the engine: its token, and the Host, Origin and Content-Type checks in front of every route.

The engine runs commands as the user who started it, so it is guarded the way Jupyter guards its kernels and
Argo Server its ``client`` mode: a bearer token by default (generated on the first start, kept in
``<home>/engine/token`` with mode 0600), a ``Host`` that must be a loopback name or one configured (a DNS-rebinding
page cannot reach it), an ``Origin`` that must be the engine's own (a cross-site page cannot use it even with a
token), and ``Content-Type: application/json`` on requests that carry a body (a cross-site "simple" request, which
a browser sends without asking, cannot be one). ``--auth none`` turns the token off, loudly.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from driftloop.config import PREFIX, Settings, engine_token_path, is_loopback_host
from driftloop.errors import ConfigError

__all__ = ["AUTH_MODES", "AccessPolicy", "Refusal", "ensure_token_file", "serving_token", "token_source"]

AUTH_MODES = ("token", "none")
_TOKEN_BYTES = 32  # 43 URL-safe characters, as Jupyter's


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the HTTP status, the grpc code and a message that says what to do."""

    status: int
    code: int
    message: str


def ensure_token_file(home: Path) -> tuple[str, bool]:
    """The engine's token, generated into ``<home>/engine/token`` (0600, folder 0700) when absent; (token, created)."""
    path = engine_token_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        os.chmod(path.parent, 0o700)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)  # someone loosened it: the token is a password
        existing = path.read_text().strip()
        if existing:
            return existing, False
        path.write_text(token + "\n")
        return token, True
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token, True


def _read_token_file(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"--token-file {path}: {exc.strerror or exc}", hint="point --token-file at a readable file"
        ) from None
    if not token:
        raise ConfigError(f"--token-file {path} is empty", hint="write the token into the file")
    return token


def serving_token(settings: Settings, env: Mapping[str, str], auth: str, token_file: Path | None) -> str | None:
    """The token ``engine serve`` requires (None for ``--auth none``).

    Order: ``--token-file``; ``DRIFTLOOP_ARGO_TOKEN``; ``DRIFTLOOP_ARGO_TOKEN_FILE``; else the engine's own file,
    generated on the first start and reused afterwards. Every client finds the same token in the same order.
    """
    if auth == "none":
        return None
    if token_file is not None:
        return _read_token_file(token_file)
    if env.get(PREFIX + "ARGO_TOKEN", "").strip() or env.get(PREFIX + "ARGO_TOKEN_FILE", "").strip():
        return settings.argo_token
    return ensure_token_file(settings.home)[0]


def token_source(env: Mapping[str, str], token_file: Path | None, home: Path) -> str:
    """Where the serving token came from, for the start-up message (never the token itself)."""
    if token_file is not None:
        return str(token_file)
    if env.get(PREFIX + "ARGO_TOKEN", "").strip():
        return PREFIX + "ARGO_TOKEN"
    return env.get(PREFIX + "ARGO_TOKEN_FILE", "").strip() or str(engine_token_path(home))


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class AccessPolicy:
    """The checks every request passes before a route sees it (``token`` None: no token required)."""

    token: str | None
    port: int
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)

    def _host_allowed(self, host: str) -> bool:
        name = host.strip().lower().rstrip(".")
        return is_loopback_host(name) or name in self.allowed_hosts

    def check_host(self, header: str | None) -> Refusal | None:
        """A DNS-rebinding page reaches us under its own name: refuse every Host but ours (a missing one is HTTP/1.0)."""
        if header is None:
            return None
        try:
            host = urlsplit("//" + header.strip()).hostname or ""
        except ValueError:
            host = ""
        if host and self._host_allowed(host):
            return None
        return Refusal(
            403,
            7,
            f"Host {header[:100]!r} is not one this engine answers to (loopback names only)",
        )

    def check_origin(self, origin: str | None) -> Refusal | None:
        """A browser names the page that sent a request in Origin: only the engine's own pages may use it."""
        if origin is None:
            return None
        try:
            parts = urlsplit(origin.strip())
            port = parts.port
        except ValueError:
            parts, port = urlsplit(""), None
        if parts.scheme == "http" and parts.hostname and self._host_allowed(parts.hostname) and port == self.port:
            return None
        return Refusal(403, 7, f"cross-origin request refused: Origin {origin[:100]!r} is not this engine")

    def check_token(self, authorization: str | None) -> Refusal | None:
        """``Authorization: Bearer <token>`` (Hera, the Argo CLI), compared in constant time."""
        if self.token is None:
            return None
        header = (authorization or "").strip()
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer":
            presented = header
        if presented and hmac.compare_digest(presented.strip().encode(), self.token.encode()):
            return None
        return Refusal(
            401,
            16,
            "token not valid: send `Authorization: Bearer <token>`; driftloop commands read it from "
            "$DRIFTLOOP_ARGO_TOKEN, $DRIFTLOOP_ARGO_TOKEN_FILE or $DRIFTLOOP_HOME/engine/token",
        )

    @staticmethod
    def check_content_type(method: str, content_type: str | None, has_body: bool) -> Refusal | None:
        """POST and PUT (and a DELETE with a body) must say application/json: no browser form or beacon can."""
        needs_json = method in {"POST", "PUT"} or (method == "DELETE" and has_body)
        if not needs_json or _media_type(content_type or "") == "application/json":
            return None
        shown = (content_type or "none")[:100]
        return Refusal(415, 3, f"{method} needs Content-Type: application/json (got {shown!r})")
