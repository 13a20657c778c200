"""``schema_in_force`` (the promotion gate's schema): a fallback it logs, or a loud failure — never a silent guess."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from driftloop.errors import DataContractError
from features.store import MAIN_REGISTRY, code_schema, schema_in_force


def test_schema_in_force_falls_back_visibly_and_fails_on_an_unreadable_registry(
    isolated_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="driftloop.features"):
        assert schema_in_force().to_json() == code_schema().to_json()
    assert "no Feast registry" in caplog.text and "declared in code" in caplog.text
    registry = isolated_home / "feast" / MAIN_REGISTRY / "registry.db"
    registry.parent.mkdir(parents=True)
    registry.write_bytes(b"\x00not a registry\xff" * 8)
    with pytest.raises(DataContractError, match="cannot read the feature service") as unreadable:
        schema_in_force()
    assert unreadable.value.hint and "driftloop features apply" in unreadable.value.hint
