"""The receiver's bearer token: from DRIFTLOOP_TRIGGER_TOKEN, a file, or generated once under the home (0600).

There is no "no token" mode: a webhook that submits workflows is authenticated by default. The token never
appears on a command line (``ps``): Alertmanager reads it from ``credentials_file``.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

from driftloop.config import Settings
from driftloop.errors import ConfigError

__all__ = ["default_token_file", "resolve_token", "token_matches"]


def default_token_file(settings: Settings) -> Path:
    return settings.home / "trigger" / "token"


def resolve_token(settings: Settings, *, create: bool = True) -> str:
    """The token in force; the default file is created (random, 0600) when nothing else names one."""
    if settings.trigger_token:
        return settings.trigger_token
    path = Path(settings.trigger_token_file).expanduser() if settings.trigger_token_file else None
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"DRIFTLOOP_TRIGGER_TOKEN_FILE={path} cannot be read ({exc.strerror})",
                hint="point it at a file holding the token, or unset it to use a generated one",
            ) from None
        if not token:
            raise ConfigError(f"DRIFTLOOP_TRIGGER_TOKEN_FILE={path} is empty", hint="write the token into it")
        return token
    path = default_token_file(settings)
    with contextlib.suppress(FileNotFoundError):
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    if not create:
        raise ConfigError(f"no receiver token yet at {path}", hint="start `driftloop trigger serve` once")
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it between our read and now: use theirs
        return resolve_token(settings, create=False)
    try:
        os.write(descriptor, token.encode())
    finally:
        os.close(descriptor)
    return token


def token_matches(header: str | None, token: str) -> bool:
    """Constant-time comparison of an ``Authorization: Bearer <token>`` header."""
    if not header or not header.startswith("Bearer "):
        return False
    offered = header[len("Bearer ") :].strip().encode("utf-8", errors="replace")  # any bytes a client may send
    return hmac.compare_digest(offered, token.encode())
