"""What a training run ran on: versions, device and the full package list, for lineage and reproduction."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

_SERVING_PACKAGES = ("mlflow", "torch", "pandas", "numpy", "scipy", "pydantic")  # pydantic: the typed signature

__all__ = ["environment_tags", "pip_freeze", "pip_requirements", "skip_installed_package_scan"]


def environment_tags(device: str) -> dict[str, str]:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "env.python": platform.python_version(),
        "env.platform": platform.platform(),
        "env.torch": torch.__version__,
        "env.cuda_available": str(cuda).lower(),
        "env.cuda_version": str(torch.version.cuda or "none"),
        "env.gpu_name": torch.cuda.get_device_name(0) if cuda else "none",
        "env.device": device,
    }


def pip_freeze() -> str:
    """``pip freeze`` without a subprocess (the installed distributions, sorted)."""
    lines = {f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions() if dist.metadata["Name"]}
    return "\n".join(sorted(lines, key=str.lower)) + "\n"


def pip_requirements() -> list[str]:
    """Explicit requirements for the pyfunc (MLflow's inference of them costs ~4 s per log_model)."""
    pinned = []
    for name in _SERVING_PACKAGES:
        try:
            pinned.append(f"{name}=={metadata.version(name).split('+')[0]}")
        except metadata.PackageNotFoundError:
            continue
    return [*pinned, f"# python {sys.version_info.major}.{sys.version_info.minor}"]


def skip_installed_package_scan() -> None:
    """MLflow checks explicit requirements against *every* installed distribution (15 s on this busy machine).

    Seeding its module->package map with just the packages we pin makes that check cheap; it still compares
    their installed versions. No-op if MLflow's internals differ or the map is already built.
    """
    from mlflow.utils import requirements_utils

    if getattr(requirements_utils, "_MODULES_TO_PACKAGES", "missing") is None:
        setattr(requirements_utils, "_MODULES_TO_PACKAGES", {name: [name] for name in _SERVING_PACKAGES})  # noqa: B010
