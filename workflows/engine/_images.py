"""The image map: which local runtime stands in for a container image.

There is no container runtime on the embedded engine, so each image maps to binaries of this machine:

============================  ============  ==============================================================
image (fnmatch pattern)       runtime       what runs
============================  ============  ==============================================================
``<settings.image>`` any tag   project       the project's venv python (cwd = repo root, DRIFTLOOP_* passed)
``argoproj/argosay:v2``       argosay       a POSIX-sh stand-in of argosay v2 (no command given)
``argoproj/argosay:v1``       cowsay        ``cowsay`` (Debian: /usr/games/cowsay)
``docker/whalesay*``          cowsay        ``cowsay``
``python:*``                  python        the host python3 (``python`` is shimmed to it)
anything else                 host          the host's ``sh`` and binaries (busybox, alpine, debian, ...)
============================  ============  ==============================================================

``<home>/image-map.yaml`` (a mapping ``pattern: runtime``) adds rules that win over the built-in ones.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from driftloop.config import get_settings, repo_root
from driftloop.errors import ConfigError

__all__ = ["RUNTIMES", "SHIMS_INSIDE", "ImageMap", "Runtime"]

RUNTIMES = ("project", "argosay", "cowsay", "python", "host")
SHIMS_INSIDE = "/argo/bin"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games"


@dataclass(frozen=True)
class Runtime:
    """How to run one container of a given image on this machine."""

    kind: str
    path: str  # PATH inside the node
    default_cwd: str
    pass_env: dict[str, str] = field(default_factory=dict)
    host_path: str = ""  # the same PATH as seen from the host (to check that a command exists)

    def argv(self, command: list[str], args: list[str]) -> list[str]:
        """Docker's rule (ENTRYPOINT + args, or CMD) with each stand-in's entrypoint."""
        if command and self.kind == "argosay" and command[0] in ("/argosay", "argosay"):
            return ["argosay", *command[1:], *args]  # the image's entrypoint, named by its path
        if command:
            return [*command, *args]
        if self.kind == "argosay":
            return ["argosay", *args]
        if self.kind == "cowsay":
            return ["cowsay", *args]
        if args:
            return list(args)
        return ["python3"] if self.kind in {"python", "project"} else ["sh"]

    def which(self, program: str) -> str | None:
        return _which(program, self.host_path or self.path, int(time.monotonic() / WHICH_TTL_SECONDS))


WHICH_TTL_SECONDS = 1.0  # a fan-out's siblings look up the same command: once a second, not once a node


@functools.lru_cache(maxsize=256)
def _which(program: str, path: str, _epoch: int) -> str | None:
    if "/" in program:
        return program if os.access(program, os.X_OK) else None
    return shutil.which(program, path=path)


def _strip_tag(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


class ImageMap:
    """Resolves an image name to a :class:`Runtime` (built-in rules plus ``<home>/image-map.yaml``)."""

    def __init__(self, shim_dir: Path, extra_rules: dict[str, str] | None = None) -> None:
        self.shim_dir = shim_dir
        self.project_repository = _strip_tag(get_settings().image)
        self.rules: list[tuple[str, str]] = list((extra_rules or {}).items())
        for pattern, kind in self.rules:
            if kind not in RUNTIMES:
                raise ConfigError(
                    f"image map rule {pattern!r} -> {kind!r}: unknown runtime",
                    hint=f"use one of {', '.join(RUNTIMES)}",
                )

    @classmethod
    def load(cls, home: Path, shim_dir: Path) -> ImageMap:
        rules_file = home / "image-map.yaml"
        rules: dict[str, str] = {}
        if rules_file.exists():
            loaded = yaml.safe_load(rules_file.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{rules_file} is not a mapping", hint="write lines like 'myorg/tool:*: host'")
            rules = {str(k): str(v) for k, v in loaded.items()}
        return cls(shim_dir, rules)

    def kind_of(self, image: str) -> str:
        for pattern, kind in self.rules:
            if fnmatch.fnmatch(image, pattern):
                return kind
        repository = _strip_tag(image)
        if repository == self.project_repository:
            return "project"
        if repository.endswith("argoproj/argosay"):
            return "cowsay" if image.endswith(":v1") else "argosay"
        if repository.endswith("docker/whalesay"):
            return "cowsay"
        if repository.rsplit("/", 1)[-1] == "python":
            return "python"
        return "host"

    def runtime(self, image: str, isolated: bool = False) -> Runtime:
        """The runtime for ``image``; ``isolated`` nodes see the shims at :data:`SHIMS_INSIDE` (a bind mount)."""
        kind = self.kind_of(image)
        if kind == "project":
            venv_bin = str(Path(sys.executable).parent)
            passed = {k: v for k, v in os.environ.items() if k.startswith("DRIFTLOOP_")}
            return Runtime(kind, f"{venv_bin}:{SYSTEM_PATH}", str(repo_root()), passed)
        inside = SHIMS_INSIDE if isolated else str(self.shim_dir)
        return Runtime(kind, f"{inside}:{SYSTEM_PATH}", "/", host_path=f"{self.shim_dir}:{SYSTEM_PATH}")
