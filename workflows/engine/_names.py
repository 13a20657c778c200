"""Names as Argo makes them: ``generateName`` + 5 random lowercase alphanumerics."""

from __future__ import annotations

import secrets
import string

__all__ = ["RANDOM_SUFFIX_LENGTH", "generate_name"]

RANDOM_SUFFIX_LENGTH = 5
_ALPHABET = string.ascii_lowercase + string.digits


def generate_name(prefix: str) -> str:
    """``hello-`` -> ``hello-x7k2p`` (Kubernetes' generateName behaviour)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_SUFFIX_LENGTH))
