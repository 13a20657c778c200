"""The local artifact repository: ``<home>/artifacts/<key>``, standing in for the default (S3) repository.

Output artifacts are saved like Argo does — a tar.gz of the file or folder by default, or the raw file/folder
with ``archive: {none: {}}`` — and recorded on the node as key-only ``s3: {key: ...}`` artifacts, so status
readers see the usual shape. Inputs are restored from a key, from ``raw.data``, or fail with a clear message.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from driftloop.errors import EngineError

__all__ = ["ArtifactMissing", "ArtifactRepository"]


class ArtifactMissing(EngineError):
    """An input artifact cannot be found, or a non-optional output path does not exist."""


class ArtifactRepository:
    def __init__(self, root: Path) -> None:
        self.root = root

    def location(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if not target.is_relative_to(self.root.resolve()):  # not a prefix test: "artifacts-x" is outside
            raise ArtifactMissing(f"artifact key {key!r} escapes the repository", hint="use a relative key")
        return target

    def save(self, source: Path, key: str, archive: dict[str, Any] | None) -> dict[str, Any]:
        """Store ``source`` under ``key``; returns the location fields to put on the artifact."""
        target = self.location(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if archive and "none" in archive:
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            if source.is_dir():
                shutil.copytree(source, target, symlinks=True)
            else:
                shutil.copy2(source, target)
        else:
            with tarfile.open(target, "w:gz") as tar:
                tar.add(source, arcname=source.name or "artifact")
        return {"s3": {"key": key}}

    def load(self, artifact: dict[str, Any], destination: Path, sub_path: str | None = None) -> None:
        """Restore ``artifact`` (raw data or a key in this repository) at ``destination``."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        raw = artifact.get("raw")
        if raw is not None:
            destination.write_text(str(raw.get("data", "")))
            return
        key = _key_of(artifact)
        if key is None and (artifact.get("from") or artifact.get("fromExpression")):
            raise ArtifactMissing(
                f"artifact {artifact.get('name')!r}: {artifact.get('from') or artifact.get('fromExpression')!r} "
                "does not name an existing artifact",
                hint="the producing step may have been skipped or failed, or the name is misspelt",
            )
        if key is None:
            kinds = sorted(k for k in artifact if k not in {"name", "path", "from", "mode", "optional", "archive"})
            raise ArtifactMissing(
                f"artifact {artifact.get('name')!r}: location {kinds or 'none'} is not available on the embedded engine",
                hint="use raw artifacts, key-only artifacts, or pass artifacts between tasks with 'from'",
            )
        stored = self.location(key)
        if not stored.exists():
            raise ArtifactMissing(
                f"artifact {artifact.get('name')!r}: key {key!r} not found in {self.root}",
                hint="the producing node may have failed or its artifact was optional",
            )
        with tempfile.TemporaryDirectory(dir=destination.parent) as scratch:
            unpacked = Path(scratch) / "unpacked"
            if stored.is_file() and tarfile.is_tarfile(stored):
                unpacked.mkdir()
                with tarfile.open(stored, "r:gz") as tar:
                    tar.extractall(unpacked, filter="tar")
                entries = list(unpacked.iterdir())
                unpacked = entries[0] if len(entries) == 1 else unpacked
            elif stored.is_dir():
                shutil.copytree(stored, unpacked, symlinks=True)
            else:
                shutil.copy2(stored, unpacked)
            chosen = unpacked / sub_path if sub_path else unpacked
            if not chosen.exists():
                raise ArtifactMissing(f"artifact {artifact.get('name')!r}: subPath {sub_path!r} not found")
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            elif destination.exists():
                destination.unlink()
            shutil.move(str(chosen), destination)
        mode = artifact.get("mode")
        if isinstance(mode, int):
            destination.chmod(mode)


def _key_of(artifact: dict[str, Any]) -> str | None:
    for location in ("s3", "gcs", "oss", "azure", "artifactory", "hdfs"):
        spec = artifact.get(location)
        if isinstance(spec, dict) and spec.get("key"):
            return str(spec["key"]) if location == "s3" else None
    return None
