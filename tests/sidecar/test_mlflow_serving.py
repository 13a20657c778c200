"""End to end with the real MLflow scoring server: waiting for a champion, signature enforcement, capture."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitors.lake import read_window
from monitors.payloads import encode_request, parse_predictions
from tests._support import free_port
from tests.sidecar.conftest import MODEL, lake_rows, wait_until

pytestmark = pytest.mark.slow

MODEL_CODE = """
import mlflow
import pandas as pd


class Score(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.Series(model_input["age"].astype(float) / DIVISOR)


mlflow.models.set_model(Score())
"""


def _spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env={**os.environ, **env},
                            start_new_session=True)  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _answers(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real MLflow server on a free port, and it must be *ours* that answers: when another process took the port
    between free_port() and the bind (many servers start and stop around this test in a full run), ours exits
    and a foreign /health could answer; then try another port."""
    for attempt in range(3):
        port = free_port()
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers",
                   "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--artifacts-destination",
                   str(tmp_path / "artifacts"), "--serve-artifacts"]  # fmt: skip
        server = _spawn(command, tmp_path / f"mlflow-{attempt}.log", {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                lambda s=server, u=url: s.poll() is not None or _answers(f"{u}/health") == 200, "mlflow server", 120
            )
            time.sleep(1.0)
            if server.poll() is None and _answers(f"{url}/health") == 200:
                yield url
                return
        finally:
            _stop(server)
    raise AssertionError(f"MLflow did not start: {(tmp_path / 'mlflow-2.log').read_text()[-2000:]}")


def _ready_version(base: str) -> str | None:
    try:
        ready = httpx.get(f"{base}/readyz", timeout=2)
    except httpx.HTTPError:
        return None
    return str(ready.json()["model_version"]) if ready.status_code == 200 else None


def _score(base: str, body: bytes) -> list[object]:
    answer = httpx.post(f"{base}/invocations", content=body, headers={"Content-Type": "application/json"})
    return parse_predictions(answer.content) if answer.status_code == 200 else []


def _register_champion(mlflow_uri: str, tmp_path: Path, divisor: float) -> None:
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(mlflow_uri)
    # and the registry: the steps' connect() (run in-process by earlier test packages) set a global registry URI
    # to their own MLflow server, long stopped — registering there was the "connection refused" of full-suite runs
    mlflow.set_registry_uri(mlflow_uri)
    mlflow.set_experiment("sidecar-serving")  # and not the active experiment id another test file left behind
    code = tmp_path / f"score_model_{divisor:g}.py"
    code.write_text(f"DIVISOR = {divisor}\n" + MODEL_CODE)
    example = pd.DataFrame({"age": [30], "income": [1000.0]})
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(code), signature=infer_signature(example, pd.Series([0.3])),
            pip_requirements=["mlflow"], registered_model_name=MODEL,
        )  # fmt: skip
    mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", str(info.registered_model_version))


def test_champion_is_served_through_the_sidecar_with_its_signature_enforced(
    mlflow_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_port, side_port = free_port(), free_port()
    env = {
        "DRIFTLOOP_MLFLOW_URI": mlflow_server,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLFLOW_REGISTRY_URI": mlflow_server,
    }
    serving = _spawn([sys.executable, "-m", "monitors.sidecar.champion", "--model", MODEL, "--port", str(serve_port),
                      "--poll", "0.5"], tmp_path / "serve.log", env)  # fmt: skip
    sidecar = _spawn([sys.executable, "-m", "driftloop", "sidecar", "--listen", f"127.0.0.1:{side_port}",
                      "--upstream", f"http://127.0.0.1:{serve_port}", "--lake", str(tmp_path / "lake"),
                      "--spool", str(tmp_path / "spool"), "--model", MODEL, "--segment-age", "0.3"],
                     tmp_path / "sidecar.log", env)  # fmt: skip
    base = f"http://127.0.0.1:{side_port}"
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{serve_port}/health") == 200, "placeholder", timeout_s=60)
        waiting = httpx.get(f"http://127.0.0.1:{serve_port}/ping")
        assert waiting.status_code == 503 and waiting.json()["error_code"] == "NO_CHAMPION"

        _register_champion(mlflow_server, tmp_path, divisor=100.0)
        wait_until(lambda: _ready_version(base) == "1", "champion v1 served behind the sidecar", 180)
        good = encode_request([{"age": 40, "income": 10.0}, {"age": 20, "income": 5.0}], ["age", "income"])
        answer = httpx.post(f"{base}/invocations", content=good, headers={"Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text
        assert parse_predictions(answer.content) == pytest.approx([0.4, 0.2])  # MLflow: [{"age": 0.4}, …]
        renamed = encode_request([{"customer_age_years": 40, "income": 10.0}], ["customer_age_years", "income"])
        refused = httpx.post(f"{base}/invocations", content=renamed, headers={"Content-Type": "application/json"})
        assert refused.status_code == 400  # MLflow enforces the signature: the schema change is refused
        wait_until(lambda: lake_rows(str(tmp_path / "lake")) == 3, "3 records in the lake")
        frame = read_window(str(tmp_path / "lake"), MODEL).frame
        assert (frame["_model_version"] == "1").all()  # resolved from the registry's champion alias
        served = frame[frame["_status"] == 200]
        assert served["_prediction"].tolist() == pytest.approx([0.4, 0.2])
        assert frame[frame["_status"] == 400]["customer_age_years"].tolist() == [40]

        _register_champion(mlflow_server, tmp_path, divisor=50.0)  # a promotion: the server follows the alias
        wait_until(lambda: _ready_version(base) == "2" and _score(base, good) == pytest.approx([0.8, 0.4]),
                   "champion v2 served", 180)  # fmt: skip
    finally:
        _stop(sidecar)
        _stop(serving)
