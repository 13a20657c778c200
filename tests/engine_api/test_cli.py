"""``driftloop submit`` and ``driftloop runs …`` against a real engine, the client's autostart, and refusals.

Refusals: ``engine run`` lints exactly as the API does, ``runs list`` takes -n/-A and checks --status,
``runs logs --node`` names the nodes that exist, binary files and bad addresses give messages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner
from hera.workflows.models import Workflow, WorkflowCreateRequest

from driftloop.cli import cli, main
from driftloop.config import get_settings
from driftloop.errors import ValidationError
from tests._support import driftloop
from tests.engine_api.conftest import NAMESPACE, Api, free_port, shell_workflow, wait_node_phase, wait_phase
from workflows.client import ArgoClient
from workflows.client._submission import load_submission


@pytest.fixture
def cli_env(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("DRIFTLOOP_ARGO_SERVER", api.url)
    monkeypatch.setenv("DRIFTLOOP_NAMESPACE", api.namespace)
    monkeypatch.setenv("DRIFTLOOP_HOME", str(api.engine.home))
    return api


def _manifest(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "workflow.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_submit_wait_then_list_get_logs(cli_env: Api, tmp_path: Path) -> None:
    body = shell_workflow("unused", "echo first-line", "echo second-line")
    body["metadata"] = {"generateName": "cli-"}
    body["spec"]["arguments"] = {"parameters": [{"name": "who", "value": "nobody"}]}
    code, output = _invoke("submit", str(_manifest(tmp_path, body)), "--wait", "-p", "who=tester")
    assert code == 0, output
    assert "Succeeded" in output and "Parameter who:" in output and "tester" in output
    assert "✔ s0" in output and "✔ s1" in output

    code, output = _invoke("runs", "list", "-o", "name")
    [name] = output.split()
    assert code == 0 and name.startswith("cli-")
    code, output = _invoke("runs", "get", "@latest", "-o", "json")
    assert json.loads(output)["status"]["phase"] == "Succeeded"
    code, output = _invoke("runs", "logs", "@latest")
    lines = output.splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["first-line", "second-line"]
    assert lines[0].startswith(f"{name}-step0-")
    code, output = _invoke("runs", "logs", "@latest", "--node", "s1", "--no-prefix")
    assert output.splitlines() == ["second-line"]
    code, output = _invoke("runs", "delete", "@latest")
    assert code == 0 and name in output
    assert "no workflows" in _invoke("runs", "list")[1]


def test_submit_wait_exits_1_when_the_run_fails(cli_env: Api, tmp_path: Path) -> None:
    body = shell_workflow("fails", "echo about to fail; echo 'error: no rows in the dataset' >&2; exit 3")
    result = CliRunner().invoke(cli, ["submit", str(_manifest(tmp_path, body)), "--wait", "-o", "name"])
    assert result.exit_code == 1
    assert result.stdout == "fails\n"  # -o name: names only, even with --wait
    headline = "✖ fails Failed: step 's0' failed: no rows in the dataset (Error (exit code 3))"
    assert result.stderr.splitlines()[-1] == headline  # the step and its error, not a child node id
    assert _invoke("runs", "get", "fails")[1].splitlines()[0] == headline


def test_runs_stop_a_running_workflow(cli_env: Api) -> None:
    cli_env.service.create_workflow(WorkflowCreateRequest(workflow=Workflow(**shell_workflow("long", "sleep 60"))))
    wait_node_phase(cli_env.service, "long", "s0", "Running")
    code, output = _invoke("runs", "stop", "long")
    assert code == 0 and "stopped" in output
    assert wait_phase(cli_env.service, "long") in {"Failed", "Error"}


def test_error_output_says_what_and_what_to_do(cli_env: Api) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "driftloop", "runs", "get", "no-such-run"],
        capture_output=True, text=True, env=dict(os.environ), timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "error:" in result.stderr and "not found" in result.stderr and "hint:" in result.stderr


def test_pipeline_name_resolves_to_its_template_and_a_referencing_workflow() -> None:
    templates, workflows, applied = load_submission("training", ["trigger=drift", "trigger-ref=abc123", "git-commit=c0ffee"])
    assert applied
    assert [t["kind"] for t in templates] == ["WorkflowTemplate"]
    workflow = workflows[0]
    assert workflow["spec"]["workflowTemplateRef"] == {"name": templates[0]["metadata"]["name"]}
    assert workflow["metadata"]["labels"]["driftloop.io/trigger"] == "drift"
    arguments = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert arguments["trigger-ref"] == "abc123"


def test_pipeline_submission_rejects_unknown_parameters_and_enum_values() -> None:
    with pytest.raises(ValidationError, match="no-such-parameter"):
        load_submission("training", ["no-such-parameter=1"])
    with pytest.raises(ValidationError, match="trigger"):
        load_submission("training", ["trigger=whenever"])


def test_concurrent_submissions_get_distinct_names(api: Api) -> None:
    body = shell_workflow("unused", "true")
    body["metadata"] = {"generateName": "burst-"}
    names: list[str] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            created = api.service.create_workflow(WorkflowCreateRequest(workflow=Workflow(**body)))
            names.append(str(created.metadata.name))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(set(names)) == 16
    listed = {w.metadata.name for w in api.service.list_workflows().items or []}
    assert listed == set(names)


def test_submit_starts_the_engine_loudly_and_stack_down_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only `submit` may start an engine, it says so, and it is the stack's: `stack down` leaves nothing running."""
    home = tmp_path / "home"
    env = {**os.environ, "DRIFTLOOP_HOME": str(home), "DRIFTLOOP_NAMESPACE": NAMESPACE,
           "DRIFTLOOP_ARGO_SERVER": f"http://127.0.0.1:{free_port()}"}  # fmt: skip
    version_url = env["DRIFTLOOP_ARGO_SERVER"] + "/api/v1/version"
    manifest = _manifest(tmp_path, shell_workflow("auto", "echo started-for-me"))
    for key in ("DRIFTLOOP_HOME", "DRIFTLOOP_NAMESPACE", "DRIFTLOOP_ARGO_SERVER"):
        monkeypatch.setenv(key, env[key])
    with pytest.raises(SystemExit) as refused:  # the console script's entry point, in-process
        main(["runs", "list"])
    assert refused.value.code == 1
    stderr = capsys.readouterr().err
    assert "error: no Argo Server answers" in stderr and "driftloop stack up engine" in stderr
    assert not (home / "stack" / "engine.pid").exists()
    pid = 0
    try:
        result = driftloop(env, "submit", str(manifest), "--wait", timeout=120)
        assert result.returncode == 0, result.stderr
        assert "Succeeded" in result.stdout
        assert "the embedded engine was started there" in result.stderr
        assert "`driftloop stack down engine` stops it" in result.stderr
        pid = int(json.loads((home / "stack" / "engine.pid").read_text())["pid"])
        token = (home / "engine" / "token").read_text().strip()  # generated by the engine that submit started
        assert requests.get(version_url, headers={"Authorization": f"Bearer {token}"}, timeout=10).ok
        assert "engine         running" in driftloop(env, "stack", "status").stdout
        down = driftloop(env, "stack", "down", timeout=60)
        assert down.returncode == 0 and "stopped: engine" in down.stdout
        with pytest.raises(requests.ConnectionError):
            requests.get(version_url, timeout=5)
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    finally:
        if pid and Path(f"/proc/{pid}").exists():
            os.killpg(pid, signal.SIGKILL)


def test_submitting_a_template_file_twice_updates_the_template(cli_env: Api, tmp_path: Path) -> None:
    template = shell_workflow("tmpl-cli", "echo v1")
    template["kind"] = "WorkflowTemplate"
    path = _manifest(tmp_path, template)
    code, output = _invoke("submit", str(path), "--wait", "-o", "name")
    assert code == 0, output
    first_version = int(cli_env.service.get_workflow_template("tmpl-cli").metadata.resource_version)
    template["spec"]["templates"][1]["container"]["args"] = ["echo v2"]
    path.write_text(yaml.safe_dump(template))
    code, output = _invoke("submit", str(path), "--wait", "-o", "name")
    assert code == 0, output
    updated = cli_env.service.get_workflow_template("tmpl-cli")
    assert int(updated.metadata.resource_version) > first_version
    assert updated.spec.templates[1].container.args == ["echo v2"]
    code, output = _invoke("runs", "logs", "@latest", "--no-prefix")
    assert output.splitlines() == ["v2"]


def test_client_submit_and_wait_for_programmatic_use(api: Api, tmp_path: Path) -> None:
    home = str(api.engine.home)  # the client finds the engine's token in <home>/engine/token
    client = ArgoClient(
        get_settings({"DRIFTLOOP_ARGO_SERVER": api.url, "DRIFTLOOP_NAMESPACE": api.namespace, "DRIFTLOOP_HOME": home})
    )
    body = shell_workflow("retrain", "echo $0", labels={"existing": "yes"})
    body["spec"]["templates"][1]["container"]["args"] = ["echo {{workflow.parameters.reason}}"]
    body["spec"]["arguments"] = {"parameters": [{"name": "reason", "value": "manual"}]}
    [created] = client.submit(str(_manifest(tmp_path, body)), parameters=["reason=drift"], labels={"trigger": "alert"})
    assert created["metadata"]["labels"] == {"existing": "yes", "trigger": "alert"}
    seen: list[str] = []
    final = client.wait(
        created["metadata"]["name"], poll_seconds=0.1, on_update=lambda w: seen.append(w["metadata"]["name"])
    )
    assert final["status"]["phase"] == "Succeeded" and seen
    assert [entry["content"] for entry in client.logs("retrain")] == ["drift"]
    assert [w["metadata"]["name"] for w in client.list_workflows("trigger=alert")] == ["retrain"]


# ---- commands that used to say "fine" (or crash) on bad input --------------------------------------------------
# The console script's entry point (``driftloop.cli.main``, which turns errors into ``error:``/``hint:`` lines)
# runs in-process where a subprocess would only add Hera's import time; a subprocess is used where "no traceback
# from the console script" is the point.

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


@pytest.fixture
def run_main(api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``driftloop ARGS`` through the console script's entry point, in this process: (exit code, stdout, stderr)."""

    def invoke(*args: str, **env: str) -> tuple[int, str, str]:
        for key, value in _env(api, **env).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def other(api: Api) -> Api:
    """A second namespace on the same engine."""
    return Api(api.engine, api.namespace[:40] + "-other")


def test_engine_run_lints_exactly_as_the_api(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(yaml.safe_dump(CYCLE))
    refused = api.http.post(api.workflows_url(), json={"workflow": CYCLE}, timeout=30)
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

    binary = driftloop(_env(api), "engine", "run", "/bin/ls")
    assert binary.returncode == 1 and "Traceback" not in binary.stderr
    assert "error: /bin/ls: not a text file (not UTF-8)" in binary.stderr
    port = driftloop(_env(api), "engine", "serve", "--port", "99999")
    assert port.returncode == 2 and "Traceback" not in port.stderr
    assert "99999 is not in the range 0<=x<=65535" in port.stderr


def test_runs_list_namespaces_status_and_logs_node(api: Api, other: Api, run_main) -> None:
    mine, theirs = shell_workflow("mine", "echo mine"), shell_workflow("theirs", "echo theirs")
    assert api.http.post(api.workflows_url(), json={"workflow": mine}, timeout=30).ok
    assert other.http.post(other.workflows_url(), json={"workflow": theirs}, timeout=30).ok
    assert wait_phase(api.service, "mine") == "Succeeded"
    assert wait_phase(other.service, "theirs") == "Succeeded"

    code, out, _ = run_main("runs", "list", "-n", other.namespace, "-o", "name")
    assert code == 0 and out.split() == ["theirs"]
    code, out, err = run_main("runs", "list", "-A")
    assert code == 0, err
    assert out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    rows = {tuple(line.split()[:2]) for line in out.splitlines()[1:]}
    assert {(api.namespace, "mine"), (other.namespace, "theirs")} <= rows

    code, out, _ = run_main("runs", "list", "--status", "succeeded,running", "-o", "name")
    assert code == 0 and out.split() == ["mine"]  # lowercase accepted; the default namespace only
    code, out, err = run_main("runs", "list", "--status", "Bogus")
    assert code == 2 and out == ""
    assert "Bogus is not a workflow phase; valid phases: Pending, Running, Succeeded, Failed, Error" in err

    code, out, err = run_main("runs", "logs", "mine", "--node", "nope")
    assert code == 1 and out == ""
    assert "error: workflow mine has no node 'nope'" in err
    assert "s0 (mine-step0-" in err  # the display and pod names that do exist
    # (a valid --node still prints its log: tests/engine_api/test_cli.py)


def test_tracebacks_became_messages(api: Api, tmp_path: Path, run_main) -> None:
    binary = driftloop(_env(api), "submit", "/bin/ls")
    assert binary.returncode == 1 and "Traceback" not in binary.stderr
    assert "error: /bin/ls is not a text file (not UTF-8)" in binary.stderr and "hint: " in binary.stderr

    # the Argo CLI's host:port form (ARGO_SERVER) reaches the same engine over plain HTTP on loopback
    host_port = api.url.removeprefix("http://")
    code, _, err = run_main("runs", "list", DRIFTLOOP_ARGO_SERVER=host_port)
    assert code == 0, err
    code, _, err = run_main("runs", "list", DRIFTLOOP_ARGO_SERVER="ftp://" + host_port)
    assert code == 2
    assert "is not an http(s) URL or host:port" in err and "hint: e.g. DRIFTLOOP_ARGO_SERVER=" in err

    # a pipeline with an MLflow *store* URI is refused before anything reaches the server
    templates_url = f"{api.url}/api/v1/workflow-templates/{api.namespace}"
    before = api.http.get(templates_url, timeout=10).json()
    code, _, err = run_main("submit", "training", DRIFTLOOP_MLFLOW_URI=f"sqlite:///{tmp_path}/mlflow.db")
    assert code == 2 and "is an MLflow store, not a server" in err and "driftloop stack up mlflow" in err
    assert api.http.get(templates_url, timeout=10).json().get("items") == before.get("items")
    assert not (tmp_path / "mlflow.db").exists()
