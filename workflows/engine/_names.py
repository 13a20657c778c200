"""Names as Kubernetes checks and Argo makes them: DNS-1123 names, label namespaces, labels, annotations.

A name becomes a folder (``<home>/runs/<name>``, ``<home>/logs/<name>``), so nothing that is not a valid
Kubernetes name may reach the store or the runner: ``../../tmp/x`` is refused with 400, as ``kubectl`` would.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from driftloop.errors import EngineError

__all__ = [
    "MAX_ANNOTATIONS_BYTES",
    "RANDOM_SUFFIX_LENGTH",
    "check_metadata",
    "check_name",
    "check_namespace",
    "generate_name",
    "metadata_problems",
    "name_problem",
    "safe_path_segment",
]

RANDOM_SUFFIX_LENGTH = 5
_ALPHABET = string.ascii_lowercase + string.digits

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_LABEL = re.compile(rf"^{_LABEL}$")
_DNS_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
MAX_NAME = 253
MAX_LABEL = 63
MAX_ANNOTATIONS_BYTES = 256 * 1024  # Kubernetes' TotalAnnotationSizeLimitB


def generate_name(prefix: str) -> str:
    """``hello-`` -> ``hello-x7k2p`` (Kubernetes' generateName behaviour)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_SUFFIX_LENGTH))


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def name_problem(value: object, what: str = "name", *, label: bool = False, prefix: bool = False) -> str | None:
    """Why ``value`` is not a valid name (DNS-1123 subdomain, or label for namespaces), or None.

    ``prefix``: a ``generateName``, checked as Kubernetes does (a trailing ``-`` allowed, room for the suffix).
    """
    if not isinstance(value, str):
        return f"{what} must be a string, not {type(value).__name__}"
    limit = MAX_LABEL if label else MAX_NAME
    candidate = value[:-1] + "a" if prefix and value.endswith("-") else value
    pattern = _DNS_LABEL if label else _DNS_SUBDOMAIN
    if prefix:
        limit -= RANDOM_SUFFIX_LENGTH
    if not value:
        return f"{what} must not be empty"
    if len(value) > limit:
        return f"{what} {_shown(value)} is longer than {limit} characters"
    if not pattern.match(candidate):
        shape = "a DNS-1123 label" if label else "a DNS-1123 subdomain"
        return (
            f"{what} {_shown(value)} is not {shape}: lowercase letters, digits and '-'"
            + ("" if label else " or '.'")
            + ", starting and ending with a letter or digit (e.g. 'my-pipeline')"
        )
    return None


def check_name(value: object, what: str = "name") -> str:
    problem = name_problem(value, what)
    if problem:
        raise EngineError(problem, hint="Kubernetes names: lowercase a-z, 0-9, '-' and '.', at most 253 characters")
    return str(value)


def check_namespace(value: object) -> str:
    problem = name_problem(value, "namespace", label=True)
    if problem:
        raise EngineError(problem, hint="namespaces are DNS-1123 labels: lowercase a-z, 0-9 and '-', at most 63")
    return str(value)


def safe_path_segment(value: str, what: str = "name") -> str:
    """The last guard before a name becomes a folder: one plain path segment, never ``..`` or a separator."""
    if not value or value in {".", ".."} or "/" in value or "\\" in value or "\0" in value:
        raise EngineError(f"{what} {_shown(value)} cannot be used as a folder name", hint="use a Kubernetes name")
    return value


def _key_problem(key: object, what: str) -> str | None:
    if not isinstance(key, str):
        return f"{what} key {_shown(key)} must be a string"
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or name_problem(prefix, "prefix") is not None):
        return f"{what} key {_shown(key)} has an invalid prefix (a DNS-1123 subdomain before '/')"
    if not name or len(name) > MAX_LABEL or not _QUALIFIED.match(name):
        return (
            f"{what} key {_shown(key)} is not valid: at most 63 characters of letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit, with an optional 'prefix/'"
        )
    return None


def _labels_problems(labels: object) -> list[str]:
    if not isinstance(labels, dict):
        return [f"metadata.labels must be an object of strings, not {type(labels).__name__}"]
    problems = []
    for key, value in labels.items():
        problem = _key_problem(key, "label")
        if problem is None and not isinstance(value, str):
            problem = f"label {key!r} must have a string value, not {type(value).__name__}"
        elif problem is None and value and (len(value) > MAX_LABEL or not _QUALIFIED.match(value)):
            problem = f"label {key!r} has an invalid value {_shown(value)} (at most 63 letters, digits, '-_.')"
        if problem:
            problems.append(problem)
    return problems


def _annotations_problems(annotations: object) -> list[str]:
    if not isinstance(annotations, dict):
        return [f"metadata.annotations must be an object of strings, not {type(annotations).__name__}"]
    problems = [p for p in (_key_problem(key, "annotation") for key in annotations) if p]
    problems += [f"annotation {k!r} must have a string value" for k, v in annotations.items() if not isinstance(v, str)]
    if not problems:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
        if size > MAX_ANNOTATIONS_BYTES:
            problems.append(f"metadata.annotations total {size} bytes, more than the limit of 262144 (256 KiB)")
    return problems


def metadata_problems(obj: dict[str, Any], *, namespaced: bool = True) -> list[str]:
    """Every problem of an object's metadata, as the Kubernetes API server would report it."""
    meta = obj.get("metadata")
    if meta is None:
        return []
    if not isinstance(meta, dict):
        return [f"metadata must be an object, not {type(meta).__name__}"]
    problems = []
    if meta.get("name") not in (None, ""):
        problems.append(name_problem(meta["name"], "metadata.name"))
    if meta.get("generateName") not in (None, ""):
        problems.append(name_problem(meta["generateName"], "metadata.generateName", prefix=True))
    if namespaced and meta.get("namespace") not in (None, ""):
        problems.append(name_problem(meta["namespace"], "metadata.namespace", label=True))
    found = [p for p in problems if p]
    if meta.get("labels") is not None:
        found += _labels_problems(meta["labels"])
    if meta.get("annotations") is not None:
        found += _annotations_problems(meta["annotations"])
    return found


def check_metadata(obj: dict[str, Any], *, namespaced: bool = True) -> None:
    """Raise one 400 that lists every metadata problem (a bad name never reaches the store or a folder)."""
    problems = metadata_problems(obj, namespaced=namespaced)
    if problems:
        raise EngineError(
            "; ".join(problems), hint="fix metadata as Kubernetes requires (`driftloop lint FILE` checks a manifest)"
        )
