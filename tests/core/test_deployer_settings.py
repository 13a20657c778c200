"""The deployer's settings: canary steps are increasing shares strictly between 0 and 100, else a clear error."""

from __future__ import annotations

import pytest

from driftloop.config import get_settings
from driftloop.errors import ConfigError


def test_canary_steps_parse_and_bad_ones_name_the_variable() -> None:
    assert get_settings({}).deployer_canary_steps == (10, 50)
    assert get_settings({"DRIFTLOOP_DEPLOYER_CANARY_STEPS": "25"}).deployer_canary_steps == (25,)
    assert get_settings({"DRIFTLOOP_DEPLOYER_CANARY_STEPS": ""}).deployer_canary_steps == ()
    for bad in ("50,10", "0,50", "10,100", "ten", "10,10"):
        with pytest.raises(ConfigError, match="DRIFTLOOP_DEPLOYER_CANARY_STEPS") as caught:
            get_settings({"DRIFTLOOP_DEPLOYER_CANARY_STEPS": bad})
        assert caught.value.hint and "10,50" in caught.value.hint
    with pytest.raises(ConfigError, match="DRIFTLOOP_DEPLOYER_ANALYSIS_TIMEOUT"):
        get_settings({"DRIFTLOOP_DEPLOYER_ANALYSIS_TIMEOUT": "-1"})
