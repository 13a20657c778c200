"""Limits on what a request may make the engine read and answer, as Argo Server and Kubernetes set them.

A body is at most 3 MiB (Argo Server's gRPC message limit; 413 before reading it), it must be UTF-8 JSON with an
object at the top no deeper than :data:`MAX_JSON_DEPTH`, and an error lists at most :data:`MAX_ISSUES_SHOWN`
problems (a rejected 10,000-task DAG answers a few KB, not 389 KB).
"""

from __future__ import annotations

import json
from typing import Any

from driftloop.errors import DriftloopError, EngineError, ValidationError

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ISSUES_SHOWN",
    "MAX_ISSUE_CHARS",
    "MAX_JSON_DEPTH",
    "MAX_MESSAGE_CHARS",
    "BodyTooLarge",
    "parse_content_length",
    "parse_json_object",
    "short_message",
]

MAX_BODY_BYTES = 3 * 1024 * 1024
MAX_JSON_DEPTH = 100  # Argo manifests nest ~15 deep; deeper JSON only serves to exhaust the stack
MAX_ISSUES_SHOWN = 20
MAX_ISSUE_CHARS = 200
MAX_MESSAGE_CHARS = 6000


class BodyTooLarge(DriftloopError):
    """The body is over :data:`MAX_BODY_BYTES` (HTTP 413); it is not read."""


def parse_content_length(header: str | None) -> int:
    """The declared body length: 0 when absent; 400 when not a plain number; 413 when over the limit."""
    if header is None or not header.strip():
        return 0
    text = header.strip()
    if not text.isascii() or not text.isdigit():
        raise EngineError(f"Content-Length {header[:40]!r} is not a non-negative integer", hint="send a valid length")
    length = int(text) if len(text) <= 20 else MAX_BODY_BYTES + 1
    if length > MAX_BODY_BYTES:
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise BodyTooLarge(
            f"the request body ({shown} bytes) is larger than the limit of {MAX_BODY_BYTES} bytes (3 MiB)",
            hint="big inputs belong in artifacts, not in the manifest",
        )
    return length


def _depth_exceeded(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what is wrong with it."""
    hint = 'send Content-Type: application/json and a JSON object, e.g. {"workflow": {...}}'
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EngineError(f"the request body is not UTF-8 (byte {exc.start})", hint=hint) from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EngineError(f"the request body is not JSON: {exc}", hint=hint) from None
    except RecursionError:
        raise EngineError(f"the request body nests deeper than {MAX_JSON_DEPTH} levels", hint=hint) from None
    if not isinstance(body, dict):
        raise EngineError(f"the request body must be a JSON object, not {type(body).__name__}", hint=hint)
    if _depth_exceeded(body, MAX_JSON_DEPTH):
        raise EngineError(f"the request body nests deeper than {MAX_JSON_DEPTH} levels", hint=hint)
    return body


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" … ({len(text) - limit} more characters)"


def short_message(exc: DriftloopError) -> str:
    """The error's message: at most :data:`MAX_ISSUES_SHOWN` issues of :data:`MAX_ISSUE_CHARS` each, then a count."""
    if isinstance(exc, ValidationError):
        shown = [f"  {_clip(str(issue), MAX_ISSUE_CHARS)}" for issue in exc.issues[:MAX_ISSUES_SHOWN]]
        more = len(exc.issues) - MAX_ISSUES_SHOWN
        message = "\n".join(
            [f"{len(exc.issues)} validation error(s):", *shown] + ([f"  … and {more} more"] * (more > 0))
        )
    else:
        message = exc.message
    return _clip(message, MAX_MESSAGE_CHARS)
