"""Fixtures for the executor tests: a private engine home and a helper that runs a small workflow."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workflows.engine.runner import EngineContext, RunControl, run_workflow

_counter = itertools.count()


def make_workflow(templates: list[dict[str, Any]], entrypoint: str = "main", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": f"t{next(_counter)}-wf"},
        "spec": {"entrypoint": entrypoint, "templates": templates, **spec},
    }


def nodes_by_display(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["displayName"]: n for n in workflow["status"]["nodes"].values()}


def sh(script: str, **extra: Any) -> dict[str, Any]:
    """A busybox container template body running ``script`` with sh -c."""
    return {"container": {"image": "busybox", "command": ["sh", "-c"], "args": [script], **extra}}


@pytest.fixture
def ctx(tmp_path: Path) -> EngineContext:
    context = EngineContext.local(tmp_path / "home")
    if not context.isolated:
        pytest.skip("these workflows write outside /tmp: they need the node sandbox (root + unshare + overlayfs)")
    return context


@pytest.fixture
def run(ctx: EngineContext) -> Callable[..., dict[str, Any]]:
    def runner(workflow: dict[str, Any], control: RunControl | None = None) -> dict[str, Any]:
        return run_workflow(workflow, ctx, control)

    return runner


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    """A host folder mounted into nodes at /shared (hostPath), to count runs across private filesystems."""
    folder = tmp_path / "shared"
    folder.mkdir()
    return folder


def shared_volume(folder: Path) -> dict[str, Any]:
    return {"volumes": [{"name": "shared", "hostPath": {"path": str(folder)}}]}


SHARED_MOUNT = [{"name": "shared", "mountPath": "/shared"}]


def processes_running(command_prefix: str) -> list[int]:
    """Host pids whose command line starts with ``command_prefix`` (to prove a process tree was killed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmdline.startswith(command_prefix):
                found.append(int(entry.name))
    return found
