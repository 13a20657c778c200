"""A local stand-in for Kubernetes ConfigMaps, for ``valueFrom.configMapKeyRef`` parameters and semaphore sizes.

ConfigMaps come from ``<home>/configmaps/*.yaml`` (ordinary ConfigMap manifests, read on each lookup so edits
apply at once) and from manifests applied in-process (``engine run`` applies the ConfigMaps in its files).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml

from driftloop.errors import ConfigError, NotFoundError

__all__ = ["ConfigMapStore"]


class ConfigMapStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._applied: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def apply(self, manifest: dict[str, Any]) -> None:
        """Store a ConfigMap manifest (kind ConfigMap, metadata.name, data) for this engine process."""
        name = (manifest.get("metadata") or {}).get("name")
        if manifest.get("kind") != "ConfigMap" or not name:
            raise ConfigError("not a ConfigMap manifest with a metadata.name", hint="apply kind: ConfigMap documents")
        with self._lock:
            self._applied[name] = {str(k): str(v) for k, v in (manifest.get("data") or {}).items()}

    def _from_folder(self, name: str) -> dict[str, str] | None:
        if not self.folder.is_dir():
            return None
        for file in sorted(self.folder.glob("*.y*ml")):
            for doc in yaml.safe_load_all(file.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "ConfigMap" and doc["metadata"].get("name") == name:
                    return {str(k): str(v) for k, v in (doc.get("data") or {}).items()}
        return None

    def get(self, name: str, key: str) -> str | None:
        with self._lock:
            data = self._applied.get(name)
        if data is None:
            data = self._from_folder(name)
        return None if data is None else data.get(key)

    def lookup(self, ref: dict[str, Any], what: str) -> str | None:
        """``configMapKeyRef`` -> its value; None if absent and ``optional``; NotFoundError otherwise."""
        value = self.get(str(ref.get("name", "")), str(ref.get("key", "")))
        if value is None and not ref.get("optional"):
            raise NotFoundError(
                f"{what}: ConfigMap {ref.get('name')!r} has no key {ref.get('key')!r}",
                hint=f"put a ConfigMap manifest in {self.folder}/ (or in the file you run), or pass the value directly",
            )
        return value
