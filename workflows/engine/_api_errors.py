"""The API's error answers: the grpc code and HTTP status of each project error, as grpc-gateway maps them.

Shared by the API handler and the console (one mapping, so a page and the API never disagree on a status).
"""

from __future__ import annotations

from typing import Any

from driftloop.errors import (
    ConflictError,
    DriftloopError,
    NotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from workflows.engine._api_routes import MethodNotAllowed
from workflows.engine._limits import BodyTooLarge, short_message
from workflows.engine.controller import InvalidStateError

__all__ = ["error_body", "status_of"]

# grpc codes: 3 InvalidArgument, 5 NotFound, 6 AlreadyExists, 9 FailedPrecondition, 13 Internal,
# 14 Unavailable, 16 Unauthenticated, 7 PermissionDenied, 8 ResourceExhausted
_ERROR_CODES: list[tuple[type[BaseException], int, int]] = [
    (BodyTooLarge, 8, 413),
    (MethodNotAllowed, 12, 405),
    (ValidationError, 3, 400),
    (NotFoundError, 5, 404),
    (InvalidStateError, 9, 400),
    (ConflictError, 6, 409),
    (ServiceUnavailableError, 14, 503),
    (DriftloopError, 3, 400),
]


def status_of(exc: BaseException) -> tuple[int, int]:
    """(grpc code, HTTP status) for an exception, as grpc-gateway maps them."""
    for cls, code, http_status in _ERROR_CODES:
        if isinstance(exc, cls):
            return code, http_status
    return 13, 500


def error_body(exc: BaseException) -> dict[str, Any]:
    message = short_message(exc) if isinstance(exc, DriftloopError) else f"internal error: {str(exc)[:500]}"
    if isinstance(exc, DriftloopError) and exc.hint:
        message = f"{message} (hint: {exc.hint})"
    return {"code": status_of(exc)[0], "message": message, "details": []}
