"""One answer of the console (status, body, headers) and the security headers every page carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

__all__ = ["Page"]

_SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),  # no URL leaks to another site; no-referrer would make forms send Origin: null
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
]


@dataclass
class Page:
    """One answer: status, body (bytes, or a file to stream), content type and extra headers."""

    status: int
    body: bytes | Path = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def all_headers(self) -> list[tuple[str, str]]:
        own = {name.lower() for name, _ in self.headers}
        defaults = [(name, value) for name, value in _SECURITY_HEADERS if name.lower() not in own]
        return [("Content-Type", self.content_type), *defaults, *self.headers]

    def write_to(self, handler: BaseHTTPRequestHandler) -> None:
        """Send this answer on ``handler``'s connection (a file is streamed in chunks, never read whole)."""
        size = self.body.stat().st_size if isinstance(self.body, Path) else len(self.body)
        handler.send_response(self.status)
        for name, value in self.all_headers():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        if isinstance(self.body, Path):
            with open(self.body, "rb") as source:
                while chunk := source.read(1 << 20):
                    handler.wfile.write(chunk)
        else:
            handler.wfile.write(self.body)
