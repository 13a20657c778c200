"""A no-change ``driftloop compile --check`` in well under a second: skip Hera when nothing it reads changed.

Building the pipelines imports Hera (~3 s on a busy 2-core machine) and validating them imports jsonschema;
neither is needed to know that nothing changed since the last full check passed. The key is a digest of
everything the compiled YAML can depend on: every ``*.py`` of the project's packages, the Argo CRDs the linter
validates against, the Python version and the versions of the libraries that shape the output. The value is
the sha256 of each file the full check found up to date. A hit needs the same key *and* the same bytes on
disk, so a hand edit, a new or deleted manifest, a source edit or an upgrade all take the full path.
The cache is private to ``$DRIFTLOOP_HOME`` (a fresh CI clone has none and runs the full check).

Nothing here imports Hera, jsonschema or the pipelines: that is the point.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["CACHE_FILE", "cached_check", "record_check", "source_key"]

CACHE_FILE = "compiler/check-cache.json"
SOURCE_PACKAGES = ("driftloop", "workflows", "features", "monitors")  # what a pipeline module could import
OUTPUT_LIBRARIES = ("hera", "pydantic", "PyYAML", "jsonschema", "referencing")
_MAX_ENTRIES = 8


def _files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.name not in {"__pycache__", ".venv", "node_modules"}:
                stack.append(Path(entry.path))
            elif entry.name.endswith(suffixes):
                found.append(Path(entry.path))
    return sorted(found)


def source_key(repo: Path, shared: Path, out_dir: Path) -> str:
    """The digest of every input of the compiled manifests (and of where they are compared)."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version}\0{out_dir.resolve()}\0".encode())
    for name in OUTPUT_LIBRARIES:
        try:
            digest.update(f"{name}={metadata.version(name)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=none\0".encode())
    inputs = [p for package in SOURCE_PACKAGES for p in _files(repo / package, (".py",))]
    inputs += _files(shared / "argo-workflows" / "crds", (".yaml", ".yml", ".json"))
    for path in inputs:
        digest.update(str(path).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _outputs(out_dir: Path) -> dict[str, str]:
    if not out_dir.is_dir():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out_dir.glob("*.y*ml"))}


def _load(home: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads((home / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cached_check(home: Path, key: str, out_dir: Path) -> int | None:
    """The documents count of the last full check with this key, if the files on disk are the ones it passed."""
    entry = _load(home).get(key)
    if not isinstance(entry, dict) or entry.get("outputs") != _outputs(out_dir):
        return None
    count = entry.get("documents")
    return count if isinstance(count, int) else None


def record_check(home: Path, key: str, out_dir: Path, documents: int) -> None:
    """Remember a passing full check (atomically; a cache that cannot be written is only slower next time)."""
    entries = _load(home)
    entries.pop(key, None)
    entries[key] = {"outputs": _outputs(out_dir), "documents": documents}
    kept = dict(list(entries.items())[-_MAX_ENTRIES:])
    path = home / CACHE_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(kept, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        return
