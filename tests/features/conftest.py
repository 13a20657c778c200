"""Every test gets its own DRIFTLOOP_HOME: generated data, Feast registries and online stores stay isolated."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("DRIFTLOOP_HOME", str(home))
    return home
