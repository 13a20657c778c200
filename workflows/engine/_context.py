"""EngineContext: what every run needs from its surroundings, one per engine process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.config import get_settings
from workflows.engine._argosay import install_shims
from workflows.engine._artifacts import ArtifactRepository
from workflows.engine._configmaps import ConfigMapStore
from workflows.engine._gpu import GpuPool, detect_gpus
from workflows.engine._images import ImageMap
from workflows.engine._launcher import build_launcher
from workflows.engine._memo import MemoCache
from workflows.engine._pods import isolation_available
from workflows.engine._sync import SyncManager

__all__ = ["EngineContext", "TemplateResolver"]

TemplateResolver = Callable[[str, str], dict | None]


def _no_templates(kind: str, name: str) -> dict | None:
    return None


@dataclass
class EngineContext:
    """Shared by all workflows of one engine: template lookup, caches, locks, GPUs, image map."""

    home: Path
    resolve_template: TemplateResolver
    memo: MemoCache
    sync: SyncManager
    gpus: GpuPool
    images: ImageMap
    artifacts: ArtifactRepository
    configmaps: ConfigMapStore
    gpu_fallback: str = "cpu"
    isolated: bool = True
    launcher: Path | None = None  # compiled sandbox launcher (faster start-up); None: the shell launcher
    namespace: str = "default"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def local(cls, home: Path, resolve_template: TemplateResolver | None = None) -> EngineContext:
        settings = get_settings()
        home = Path(home)
        engine_dir = home / "engine"
        shims = install_shims(engine_dir / "bin")
        isolated = isolation_available()
        configmaps = ConfigMapStore(home / "configmaps")
        return cls(
            home=home,
            resolve_template=resolve_template or _no_templates,
            memo=MemoCache(engine_dir / "memo.sqlite"),
            sync=SyncManager(home, settings.semaphore_size, configmaps),
            gpus=GpuPool(detect_gpus()),
            images=ImageMap.load(home, shims),
            artifacts=ArtifactRepository(home / "artifacts"),
            configmaps=configmaps,
            gpu_fallback=settings.gpu_fallback,
            isolated=isolated,
            launcher=build_launcher(engine_dir / "bin") if isolated else None,
            namespace=settings.namespace,
        )
