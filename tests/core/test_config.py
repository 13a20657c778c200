"""The configuration module: defaults, environment overrides, and errors that say what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from driftloop.cli import settings_reference_markdown
from driftloop.config import PREFIX, SETTING_DOCS, get_settings, repo_root
from driftloop.errors import ConfigError


def test_defaults_describe_the_embedded_mode() -> None:
    settings = get_settings(env={})
    assert settings.home == repo_root() / ".driftloop"
    assert settings.argo_server == "http://127.0.0.1:2746"
    assert settings.model_name == "credit-risk"
    assert settings.gpu_fallback == "cpu"
    assert settings.semaphore_size == 1


def test_environment_overrides_and_normalises(tmp_path: Path) -> None:
    env = {
        f"{PREFIX}HOME": str(tmp_path / "state"),
        f"{PREFIX}ARGO_SERVER": "https://argo.example:2746/",
        f"{PREFIX}SEMAPHORE_SIZE": "3",
    }
    settings = get_settings(env=env)
    assert settings.home == tmp_path / "state"
    assert settings.argo_server == "https://argo.example:2746"  # trailing slash removed
    assert settings.semaphore_size == 3


def test_relative_home_is_relative_to_the_repository() -> None:
    assert get_settings(env={f"{PREFIX}HOME": "elsewhere"}).home == repo_root() / "elsewhere"


@pytest.mark.parametrize(("name", "value"), [("GPU_FALLBACK", "maybe"), ("SEMAPHORE_SIZE", "0"), ("SEMAPHORE_SIZE", "x")])
def test_bad_values_raise_config_errors_with_a_hint(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        get_settings(env={PREFIX + name: value})
    assert PREFIX + name in caught.value.message
    assert caught.value.hint


def test_every_setting_is_documented() -> None:
    text = (repo_root() / "docs" / "configuration.md").read_text()
    missing = [PREFIX + name.upper() for name in SETTING_DOCS if f"`{PREFIX}{name.upper()}`" not in text]
    assert not missing, f"document these (driftloop config --markdown > docs/configuration.md): {missing}"
    assert text == settings_reference_markdown(), "docs/configuration.md is stale: driftloop config --markdown > it"


def test_argo_server_accepts_the_argo_cli_host_port_form() -> None:
    from driftloop.config import argo_server_url
    from driftloop.errors import ConfigError

    assert argo_server_url("127.0.0.1:2746") == "http://127.0.0.1:2746"  # the embedded engine: plain HTTP
    assert argo_server_url("localhost:2746/") == "http://localhost:2746"
    assert argo_server_url("argo.example.com:2746") == "https://argo.example.com:2746"  # Argo: ARGO_SECURE=true
    assert argo_server_url("http://argo.example.com:2746") == "http://argo.example.com:2746"
    for bad in ("ftp://argo:2746", ":2746", "argo:99999", "argo:"):
        with pytest.raises(ConfigError, match="DRIFTLOOP_ARGO_SERVER"):
            argo_server_url(bad)


def test_long_running_services_bound_mlflow_retries_unless_the_user_set_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's client retries an unreachable registry for minutes; the monitor and the deployer retry on their own
    loop, and a deployer blocked in that backoff was SIGKILLed by `stack down` before it stopped its servers."""
    from driftloop.config import bound_mlflow_retries

    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(name, "recorded")  # so that teardown restores what was there (or removes it)
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")  # the user's choice wins
    bound_mlflow_retries()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
