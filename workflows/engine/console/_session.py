"""Who is logged in to the console, and whether a POST really comes from one of its pages.

The console uses the engine's own token (the one the API requires): an operator logs in once — with
``?token=…`` on any console URL (what ``engine serve`` and ``make demo`` print) or with the login form — and gets
a session cookie (HttpOnly: no script reads it; SameSite=Strict: no other site's page sends it), after which the
console redirects to the same URL without the token, so the token never stays in the address bar, the history or
a rendered link. The cookie holds a random nonce and its HMAC under the token: stateless (it survives an engine
restart) and void once the token changes. Every mutating form carries a CSRF token derived from the same nonce;
a POST without it gets a 403 that says so, on top of the Origin check every request passes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Protocol

__all__ = ["ANONYMOUS", "BEARER", "SessionKeys"]

ANONYMOUS = "anonymous"  # the session of every request when the engine serves with --auth none
BEARER = "bearer"  # the session of a request that sends the token itself (Authorization: Bearer), as the API takes it
_NONCE_BYTES = 18
SESSION_SECONDS = 12 * 3600  # the cookie's Max-Age: an operator logs in once a working day


class _Headers(Protocol):
    def get(self, name: str, default: None = None, /) -> str | None: ...


@dataclass(frozen=True)
class SessionKeys:
    """Signs and checks session cookies and CSRF tokens; ``token`` None: the engine requires no token."""

    token: str | None
    port: int
    _fallback_key: bytes = secrets.token_bytes(32)  # --auth none: CSRF tokens still need a secret

    @property
    def cookie_name(self) -> str:
        """Per port: browsers send a cookie to every port of a host, and two engines must not clobber each other."""
        return f"driftloop_console_{self.port}"

    @property
    def requires_login(self) -> bool:
        return self.token is not None

    def _sign(self, purpose: str, nonce: str) -> str:
        key = self.token.encode() if self.token is not None else self._fallback_key
        return hmac.new(key, f"{purpose}:{nonce}".encode(), hashlib.sha256).hexdigest()[:43]

    def token_matches(self, presented: str | None) -> bool:
        if self.token is None or not presented:
            return False
        return hmac.compare_digest(presented.strip().encode(), self.token.encode())

    def new_session(self) -> str:
        nonce = secrets.token_urlsafe(_NONCE_BYTES)
        return f"{nonce}.{self._sign('session', nonce)}"

    def set_cookie(self, value: str) -> str:
        return f"{self.cookie_name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}"

    def clear_cookie(self) -> str:
        return f"{self.cookie_name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"

    def session_of(self, headers: _Headers) -> str | None:
        """The session nonce of a request (its cookie verified), ``ANONYMOUS`` without auth, else None."""
        if self.token is None:
            return ANONYMOUS
        scheme, _, presented = (headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(presented):
            return BEARER  # an API client (curl, a script) holding the token: no cookie needed
        raw = headers.get("Cookie") or ""
        try:
            cookie = SimpleCookie(raw)
        except CookieError:
            return None
        morsel = cookie.get(self.cookie_name)
        if morsel is None:
            return None
        nonce, _, signature = morsel.value.partition(".")
        if nonce and hmac.compare_digest(signature.encode(), self._sign("session", nonce).encode()):
            return nonce
        return None

    def csrf_for(self, session: str) -> str:
        return self._sign("csrf", session)

    def csrf_matches(self, session: str, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(str(presented).encode(), self.csrf_for(session).encode())
