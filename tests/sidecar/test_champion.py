"""Before a champion exists the model-server slot answers clearly instead of crash-looping."""

from __future__ import annotations

from pathlib import Path

import httpx

from monitors.sidecar.champion import capturing_serve_command, champion_version, mlflow_serve_command, placeholder_app
from monitors.sidecar.testing import BackgroundServer


def test_placeholder_is_alive_but_not_ready_and_says_what_to_do() -> None:
    with BackgroundServer(lambda: placeholder_app("credit-risk")) as server, httpx.Client() as client:
        assert client.get(f"{server.url}/health").json() == {"status": "waiting-for-champion", "model": "credit-risk"}
        for answer in (client.get(f"{server.url}/ping"), client.post(f"{server.url}/invocations", content=b"{}")):
            assert answer.status_code == 503
            body = answer.json()
            assert body["error_code"] == "NO_CHAMPION" and "credit-risk" in body["message"]
            assert "driftloop submit training" in body["hint"]


def test_no_registry_means_no_champion_yet() -> None:
    with BackgroundServer(lambda: placeholder_app("m")) as not_mlflow:  # answers 503 to the registry API
        assert champion_version(not_mlflow.url, "m") is None
    assert champion_version("http://127.0.0.1:9", "m") is None  # nothing listens on the discard port


def test_the_real_server_is_mlflows_own_with_the_local_env_manager() -> None:
    command = mlflow_serve_command("credit-risk", "127.0.0.1", 5001, "4")
    assert command[1:6] == ["-m", "mlflow", "models", "serve", "-m"]
    assert command[6] == "models:/credit-risk/4" and command[command.index("--env-manager") + 1] == "local"


def test_the_capturing_server_loads_the_version_it_stamps() -> None:
    # the alias is resolved once; loading the alias itself could serve a newer model under the old version's stamp
    command = capturing_serve_command("credit-risk", "127.0.0.1", 5001, Path("/tmp/spool"), "7")
    assert command[command.index("--model-uri") + 1] == "models:/credit-risk/7"
    assert command[command.index("--model-version") + 1] == "7"
