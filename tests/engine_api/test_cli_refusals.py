"""Commands that used to say "fine" (or crash) on bad input, run as a user runs them: the console script.

Against the module's real engine: ``engine run`` lints exactly as the API does, ``runs list`` takes -n/-A and
checks --status, ``runs logs --node`` names the nodes that exist, binary files and bad addresses give messages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml

from tests._support import driftloop
from tests.engine_api.conftest import Api, shell_workflow, wait_phase

CYCLE = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"generateName": "cycle-"},
    "spec": {
        "entrypoint": "main",
        "templates": [
            {"name": "main", "dag": {"tasks": [{"name": "a", "template": "say", "dependencies": ["b"]},
                                               {"name": "b", "template": "say", "dependencies": ["a"]}]}},
            {"name": "say", "container": {"image": "busybox", "command": ["sh", "-c"],
                                          "args": ["echo {{inputs.parameters.x}}"]}},
        ],
    },
}  # fmt: skip


def _env(api: Api, **extra: str) -> dict[str, str]:
    return {**api.engine.env, "DRIFTLOOP_NAMESPACE": api.namespace, **extra}


def test_engine_run_lints_exactly_as_the_api(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(yaml.safe_dump(CYCLE))
    refused = requests.post(api.workflows_url(), json={"workflow": CYCLE}, timeout=30)
    assert refused.status_code == 400
    message = refused.json()["message"].rsplit(" (hint: ", 1)[0]  # the API appends the hint to the message
    api_lines = [line.strip() for line in message.splitlines()[1:] if "[semantic]" in line]
    assert any("dependency cycle" in line for line in api_lines)
    assert any("'{{inputs.parameters.x}}' does not resolve" in line for line in api_lines)

    run = driftloop(_env(api), "engine", "run", str(path), timeout=120)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr and "Succeeded" not in run.stdout
    cli_lines = [line.strip() for line in run.stderr.splitlines() if "[semantic]" in line]
    assert cli_lines == api_lines  # one code path: the same findings, word for word
    assert not (api.engine.home / "logs" / "cycle-").exists()


@pytest.fixture
def other(api: Api) -> Api:
    """A second namespace on the same engine."""
    return Api(api.engine, api.namespace[:40] + "-other")


def test_runs_list_namespaces_status_and_logs_node(api: Api, other: Api) -> None:
    mine, theirs = shell_workflow("mine", "echo mine"), shell_workflow("theirs", "echo theirs")
    assert requests.post(api.workflows_url(), json={"workflow": mine}, timeout=30).ok
    assert requests.post(other.workflows_url(), json={"workflow": theirs}, timeout=30).ok
    assert wait_phase(api.service, "mine") == "Succeeded"
    assert wait_phase(other.service, "theirs") == "Succeeded"
    env = _env(api)

    elsewhere = driftloop(env, "runs", "list", "-n", other.namespace, "-o", "name")
    assert elsewhere.stdout.split() == ["theirs"]
    every = driftloop(env, "runs", "list", "-A")
    assert every.returncode == 0, every.stderr
    assert every.stdout.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    rows = {tuple(line.split()[:2]) for line in every.stdout.splitlines()[1:]}
    assert {(api.namespace, "mine"), (other.namespace, "theirs")} <= rows

    lower = driftloop(env, "runs", "list", "--status", "succeeded,running", "-o", "name")
    assert lower.returncode == 0 and lower.stdout.split() == ["mine"]
    bogus = driftloop(env, "runs", "list", "--status", "Bogus")
    assert bogus.returncode == 2 and bogus.stdout == ""
    assert "Bogus is not a workflow phase; valid phases: Pending, Running, Succeeded, Failed, Error" in bogus.stderr

    nope = driftloop(env, "runs", "logs", "mine", "--node", "nope")
    assert nope.returncode == 1 and nope.stdout == ""
    assert "workflow mine has no node 'nope'" in nope.stderr
    assert "s0 (mine-step0-" in nope.stderr  # the display and pod names that do exist
    # (a valid --node still prints its log: tests/engine_api/test_cli.py)


def test_tracebacks_became_messages(api: Api, tmp_path: Path) -> None:
    env = _env(api)
    for args in (("engine", "run", "/bin/ls"), ("submit", "/bin/ls")):
        binary = driftloop(env, *args)
        assert binary.returncode != 0 and "Traceback" not in binary.stderr
        assert "/bin/ls" in binary.stderr and "not a text file (not UTF-8)" in binary.stderr
    port = driftloop(env, "engine", "serve", "--port", "99999")
    assert port.returncode == 2 and "Traceback" not in port.stderr
    assert "99999 is not in the range 0<=x<=65535" in port.stderr

    # the Argo CLI's host:port form (ARGO_SERVER) reaches the same engine over plain HTTP on loopback
    host_port = api.url.removeprefix("http://")
    listed = driftloop({**env, "DRIFTLOOP_ARGO_SERVER": host_port}, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    wrong = driftloop({**env, "DRIFTLOOP_ARGO_SERVER": "ftp://" + host_port}, "runs", "list")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "is not an http(s) URL or host:port" in wrong.stderr and "hint: e.g. DRIFTLOOP_ARGO_SERVER=" in wrong.stderr

    # a pipeline with an MLflow *store* URI is refused before anything reaches the server
    store = f"sqlite:///{tmp_path}/mlflow.db"
    before = requests.get(f"{api.url}/api/v1/workflow-templates/{api.namespace}", timeout=10).json()
    refused = driftloop({**env, "DRIFTLOOP_MLFLOW_URI": store}, "submit", "training")
    assert refused.returncode == 2 and "is an MLflow store, not a server" in refused.stderr
    assert "driftloop stack up mlflow" in refused.stderr
    after = requests.get(f"{api.url}/api/v1/workflow-templates/{api.namespace}", timeout=10).json()
    assert after.get("items") == before.get("items")
    assert not (tmp_path / "mlflow.db").exists()
