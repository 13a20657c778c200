"""Every attack of issue 14's Security section, replayed against a real engine started by the stack.

The engine is the stack's own (``driftloop stack``'s process manager starts it exactly as ``stack up`` does), so
these tests also prove that its token is generated on start, private, read by the stack's health check and absent
from ``ps``. Each refusal is paired with a request that is accepted, so a check that refuses everything fails.
"""

from __future__ import annotations

import json
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from driftloop.cli import cli
from driftloop.config import get_settings, read_argo_token
from driftloop.stack import ProcessManager
from driftloop.stack.services import service
from tests._support import free_port
from tests.engine_api.conftest import EngineProcess, shell_workflow
from workflows.engine._auth import ensure_token_file
from workflows.engine._names import name_problem

NAMESPACE = "sec"


class Target:
    """The engine under attack: its URL, its token, and the folders that must stay untouched."""

    def __init__(self, root: Path, port: int, manager: ProcessManager, pid: int) -> None:
        self.root = root
        self.home = root / "home"
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.manager = manager
        self.pid = pid
        self.token = (self.home / "engine" / "token").read_text().strip()
        self.auth = {"Authorization": f"Bearer {self.token}"}
        self.json = {**self.auth, "Content-Type": "application/json"}
        self.shared = root / "shared"
        self.shared.mkdir()

    def workflows(self, suffix: str = "") -> str:
        return f"{self.url}/api/v1/workflows/{NAMESPACE}{suffix}"

    def names(self) -> list[str]:
        items = requests.get(self.workflows(), headers=self.auth, timeout=10).json()["items"] or []
        return [item["metadata"]["name"] for item in items]

    def log(self) -> str:
        return self.manager.log_file(service("engine")).read_text()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("security")
    port = free_port()
    with pytest.MonkeyPatch.context() as env:
        env.delenv("DRIFTLOOP_ARGO_TOKEN", raising=False)
        env.delenv("DRIFTLOOP_ARGO_TOKEN_FILE", raising=False)
        env.setenv("DRIFTLOOP_HOME", str(root / "home"))
        env.setenv("DRIFTLOOP_ARGO_SERVER", f"http://127.0.0.1:{port}")
        env.setenv("DRIFTLOOP_NAMESPACE", NAMESPACE)
        env.setenv("DRIFTLOOP_ENGINE_ALLOWED_HOSTS", "engine.internal, Build-Box")
        manager = ProcessManager(get_settings())
        engine = service("engine")
        state = manager.start(engine)  # healthy only with the token: the health check read it from the file
        assert state.pid is not None
        try:
            yield Target(root, port, manager, state.pid)
        finally:
            manager.stop(engine)


def _runs_id_workflow(target: Target, name: str) -> dict[str, Any]:
    """The issue's payload: a step that runs ``sh -c id`` and leaves the proof in a host folder."""
    return shell_workflow(
        name, f"id > /shared/{name}.tmp && mv /shared/{name}.tmp /shared/{name}", host_dir=target.shared
    )


def _wait_for(path: Path, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.1)
    return False


def test_cross_site_simple_post_is_refused_and_nothing_runs(target: Target) -> None:
    body = json.dumps({"workflow": _runs_id_workflow(target, "pwned")})
    foreign = {"Content-Type": "text/plain", "Origin": "http://evil.example", "Host": f"evil.example:{target.port}"}
    attempts = {
        "the issue's request (text/plain, foreign Origin and Host, no token)": (foreign, 403),
        "a rebinding page with a stolen token": ({**target.json, "Host": f"evil.example:{target.port}"}, 403),
        "a foreign page with a stolen token": ({**target.json, "Origin": "http://evil.example"}, 403),
        "a null Origin (sandboxed iframe)": ({**target.json, "Origin": "null"}, 403),
        "the engine's own port on another scheme": ({**target.json, "Origin": f"https://127.0.0.1:{target.port}"}, 403),
        "a simple request with the token": ({**target.auth, "Content-Type": "text/plain"}, 415),
        "a form post with the token": ({**target.auth, "Content-Type": "application/x-www-form-urlencoded"}, 415),
        "no token": ({"Content-Type": "application/json"}, 401),
        "a wrong token": ({"Content-Type": "application/json", "Authorization": "Bearer nope"}, 401),
    }
    for what, (headers, status) in attempts.items():
        answer = requests.post(target.workflows(), data=body, headers=headers, timeout=10)
        assert answer.status_code == status, (what, answer.text)
        assert answer.json()["code"] in {7, 3, 16} and answer.json()["message"], what
    unauthorized = requests.get(target.workflows(), timeout=10)
    assert unauthorized.status_code == 401 and "engine/token" in unauthorized.json()["message"]
    assert "pwned" not in target.names() and not _wait_for(target.shared / "pwned", timeout=1)

    # the same payload from the engine's own origin, with the token, runs: the refusals above were not luck
    own = {**target.json, "Origin": f"http://localhost:{target.port}", "Host": f"localhost:{target.port}"}
    body = json.dumps({"workflow": _runs_id_workflow(target, "allowed")})
    assert requests.post(target.workflows(), data=body, headers=own, timeout=60).status_code == 200
    assert _wait_for(target.shared / "allowed") and "uid=" in (target.shared / "allowed").read_text()


def test_configured_host_names_are_allowed(target: Target) -> None:
    for host in ("engine.internal", "build-box", "BUILD-BOX.", "[::1]", "127.8.9.10", "app.localhost"):
        headers = {**target.auth, "Host": f"{host}:{target.port}", "Origin": f"http://{host}:{target.port}"}
        answer = requests.get(target.workflows(), headers=headers, timeout=10)
        assert answer.status_code == 200, (host, answer.text)
    for host in ("engine.internal.evil.example", "10.0.0.1", "build-box.evil", "0.0.0.0"):
        answer = requests.get(target.workflows(), headers={**target.auth, "Host": host}, timeout=10)
        assert answer.status_code == 403, host


def _files_outside(root: Path, home: Path) -> set[Path]:
    return {path for path in root.rglob("*") if home not in path.parents and path != home}


def test_path_traversal_names_are_refused_and_nothing_written_outside_home(target: Target) -> None:
    before = _files_outside(target.root, target.home)
    escape = "../../../outside/pwned"
    suspend = {"entrypoint": "a", "templates": [{"name": "a", "suspend": {}}]}
    template_url = f"{target.url}/api/v1/workflow-templates/{NAMESPACE}"
    posts = [
        (target.workflows(), {"workflow": {"metadata": {"name": escape}, "spec": suspend}}),
        (target.workflows(), {"workflow": {"metadata": {"generateName": "../../x-"}, "spec": suspend}}),
        (target.workflows(), {"workflow": {"metadata": {"name": "ok", "namespace": "../.."}, "spec": suspend}}),
        (target.workflows("/lint"), {"workflow": {"metadata": {"name": escape}, "spec": suspend}}),
        (template_url, {"template": {"metadata": {"name": escape}, "spec": suspend}}),
        (
            f"{target.url}/api/v1/cluster-workflow-templates",
            {"template": {"metadata": {"name": "a/b"}, "spec": suspend}},
        ),
        (f"{target.url}/api/v1/cron-workflows/{NAMESPACE}", {"cronWorkflow": {"metadata": {"name": escape}}}),
        (target.workflows("/submit"), {"resourceKind": "WorkflowTemplate", "resourceName": escape}),
    ]
    for url, body in posts:
        answer = requests.post(url, json=body, headers=target.auth, timeout=10)
        assert answer.status_code == 400, (url, body, answer.text)
        assert "DNS-1123" in answer.json()["message"] or "not a" in answer.json()["message"]
    paths = [
        "/api/v1/workflows/..%2F..%2Foutside/x",
        f"/api/v1/workflows/{NAMESPACE}/..%2F..%2F..%2Foutside",
        f"/api/v1/workflows/{NAMESPACE}/%2e%2e",
        f"/api/v1/workflows/{NAMESPACE}/UPPER",
        f"/api/v1/workflows/{NAMESPACE}/x/%2e%2e/log",
        f"/api/v1/workflow-templates/{NAMESPACE}/..%2Fx",
        f"/api/v1/workflows/{NAMESPACE}/%ff",
    ]
    for path in paths:
        for method in ("GET", "DELETE"):
            answer = requests.request(method, target.url + path, headers=target.auth, timeout=10)
            assert answer.status_code in {400, 405}, (method, path, answer.text)  # 405: no DELETE on /log
    assert _files_outside(target.root, target.home) == before
    assert not (target.root / "outside").exists()
    # and the store is not broken for everyone: listing (what `runs get @latest` reads) still works
    assert requests.get(target.workflows(), headers=target.auth, timeout=10).status_code == 200


def test_oversize_body_is_refused_before_it_is_read(target: Target) -> None:
    big = b'{"workflow": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    answer = requests.post(target.workflows(), data=big, headers=target.json, timeout=30)
    assert answer.status_code == 413 and answer.json()["code"] == 8 and "3 MiB" in answer.json()["message"]
    # headers only, no body sent at all: the answer comes anyway, so the engine did not wait to read it
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as sock:
        sock.sendall(
            f"POST /api/v1/workflows/{NAMESPACE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {target.token}"
            f"\r\nContent-Type: application/json\r\nContent-Length: 999999999999\r\n\r\n".encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.0 413")


def test_annotations_and_labels_are_limited_like_kubernetes(target: Target) -> None:
    spec = {"entrypoint": "a", "templates": [{"name": "a", "suspend": {}}]}

    def create(metadata: dict[str, Any]) -> requests.Response:
        body = {"workflow": {"metadata": metadata, "spec": spec}, "serverDryRun": True}
        return requests.post(target.workflows(), json=body, headers=target.auth, timeout=60)

    huge = create({"name": "big-notes", "annotations": {"note": "x" * (256 * 1024)}})
    assert huge.status_code == 400 and "256 KiB" in huge.json()["message"]
    assert create({"name": "big-notes", "annotations": {"note": "x" * (250 * 1024)}}).status_code == 200
    for labels in ({"a b": "x"}, {"team": "has space"}, {"team": "x" * 64}, {"team": 3}, {"/x": "y"}):
        refused = create({"name": "labelled", "labels": labels})
        assert refused.status_code == 400, (labels, refused.text)
    assert create({"name": "labelled", "labels": {"example.com/team": "Risk_1.a"}}).status_code == 200


def test_a_rejected_10000_task_dag_answers_a_short_message(target: Target) -> None:
    tasks = [{"name": f"t{index}", "template": "missing"} for index in range(10_000)]
    workflow = {"metadata": {"name": "huge-dag"}, "spec": {"entrypoint": "main", "templates": [
        {"name": "main", "dag": {"tasks": tasks}}]}}  # fmt: skip
    answer = requests.post(target.workflows(), json={"workflow": workflow}, headers=target.auth, timeout=60)
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert len(answer.content) < 8_000, len(answer.content)
    assert message.startswith("10001 validation error(s):") and "… and 9981 more" in message
    assert message.count("missing") >= 20  # the first problems are shown, not only a count


MALFORMED: list[tuple[str, bytes, dict[str, str], str]] = [
    ("metadata is a string", b'{"workflow":{"metadata":"x"}}', {}, "metadata must be an object"),
    ("invalid UTF-8", b'{"workflow": "\xff\xfe"}', {}, "not UTF-8"),
    ("invalid JSON", b"{oops", {}, "not JSON"),
    ("JSON that is not an object", b"[1, 2]", {}, "must be a JSON object"),
    ("a bare string", b'"workflow"', {}, "must be a JSON object"),
    ("workflow is a list", b'{"workflow": []}', {}, "no 'workflow' object"),
    ("spec is a string", b'{"workflow": {"metadata": {"name": "a"}, "spec": "x"}}', {}, "spec must be an object"),
    ("name is a number", b'{"workflow": {"metadata": {"name": 7}}}', {}, "must be a string"),
    ("labels is a list", b'{"workflow": {"metadata": {"name": "a", "labels": []}}}', {}, "labels must be"),
    ("nesting 100000 deep", b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", {}, "nests deeper"),
]


@pytest.mark.parametrize(("what", "body", "headers", "said"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_answer_4xx_that_name_the_problem(
    target: Target, what: str, body: bytes, headers: dict[str, str], said: str
) -> None:
    answer = requests.post(target.workflows(), data=body, headers={**target.json, **headers}, timeout=30)
    assert answer.status_code == 400, (what, answer.text)
    assert said in answer.json()["message"], answer.json()


def _raw(target: Target, head: str) -> bytes:
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "99999999999999999999999999", " 12x"])
def test_bad_content_length_is_a_4xx(target: Target, length: str) -> None:
    answer = _raw(
        target,
        f"POST /api/v1/workflows/{NAMESPACE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {target.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{}}",
    )
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500 and b'"code"' in answer, answer[:300]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/api/v1/workflow", 404),  # (/api/v1/workflows/ is the every-namespace list)
        ("OPTIONS", f"/api/v1/workflows/{NAMESPACE}", 405),
        ("PATCH", f"/api/v1/workflows/{NAMESPACE}/x", 405),
        ("FOO", "/api/v1/version", 405),
        ("HEAD", "/api/v1/version", 405),
        ("DELETE", "/api/v1/version", 405),
        ("GET", f"/api/v1/workflows/{NAMESPACE}/x/log?grep=(", 404),
    ],
)
def test_unknown_routes_and_methods_are_4xx(target: Target, method: str, path: str, status: int) -> None:
    headers = target.json if method in {"POST", "PUT", "PATCH", "DELETE"} else target.auth
    answer = requests.request(method, target.url + path, headers=headers, timeout=10)
    assert answer.status_code == status, answer.text


def test_invalid_grep_is_a_400(target: Target) -> None:
    body = json.dumps({"workflow": shell_workflow("grepped", "echo hi")})
    assert requests.post(target.workflows(), data=body, headers=target.json, timeout=60).status_code == 200
    answer = requests.get(target.workflows("/grepped/log"), params={"grep": "("}, headers=target.auth, timeout=10)
    assert answer.status_code == 400 and "regular expression" in answer.json()["message"]


def test_chunked_bodies_are_refused_with_411(target: Target) -> None:
    answer = requests.post(target.workflows(), data=iter([b"{}"]), headers=target.json, timeout=10)
    assert answer.status_code == 411


def test_no_request_above_ended_in_a_500(target: Target) -> None:
    """Runs after the attacks (pytest keeps file order): none of them reached the catch-all."""
    log = target.log()
    assert "Traceback" not in log and '" 500 ' not in log
    assert "refused" in log  # the 401s are logged, so an operator sees someone trying


def test_token_file_is_private_and_not_on_the_command_line(target: Target) -> None:
    token_file = target.home / "engine" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    assert len(target.token) >= 40
    command_line = Path(f"/proc/{target.pid}/cmdline").read_bytes()
    assert b"serve" in command_line and target.token.encode() not in command_line
    # what every driftloop command and the stack's health check resolve, for this home and a loopback server
    env = {"DRIFTLOOP_HOME": str(target.home), "DRIFTLOOP_ARGO_SERVER": target.url}
    assert read_argo_token(env, target.home, target.url) == target.token
    assert read_argo_token(env, target.home, "https://argo.example:2746") == ""  # never sent to another server
    assert service("engine").health_headers(get_settings(env)) == target.auth


def test_token_is_generated_once_and_reused(tmp_path: Path) -> None:
    first, created = ensure_token_file(tmp_path / "home")
    again, created_again = ensure_token_file(tmp_path / "home")
    assert created and not created_again and first == again
    (tmp_path / "home" / "engine" / "token").chmod(0o644)
    ensure_token_file(tmp_path / "home")
    assert stat.S_IMODE((tmp_path / "home" / "engine" / "token").stat().st_mode) == 0o600


def test_token_file_setting_and_refused_token_option(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    env = {"DRIFTLOOP_ARGO_TOKEN_FILE": str(secret), "DRIFTLOOP_HOME": str(tmp_path / "home")}
    assert get_settings(env).argo_token == "from-a-file"
    assert get_settings({**env, "DRIFTLOOP_ARGO_TOKEN": "from-env"}).argo_token == "from-env"
    refused = CliRunner().invoke(cli, ["engine", "serve", "--token", "s3cret"])
    assert refused.exit_code == 2 and "--token-file" in refused.output and "ps" in refused.output
    helped = CliRunner().invoke(cli, ["engine", "serve", "--help"])
    assert "--auth" in helped.output and "--token-file" in helped.output and "engine/token" in helped.output


def test_auth_none_works_and_is_loud(tmp_path: Path) -> None:
    engine = EngineProcess(tmp_path / "home", serve_args=("--auth", "none"))
    engine.start()
    try:
        info = requests.get(engine.url + "/api/v1/info", timeout=10)
        assert info.status_code == 200 and info.json()["driftloopAuth"] == "none"
        assert requests.get(engine.url + "/api/v1/workflows/x", timeout=10).status_code == 200
        foreign = requests.get(engine.url + "/api/v1/version", headers={"Origin": "http://evil.example"}, timeout=10)
        assert foreign.status_code == 403  # Origin, Host and Content-Type checks stay on without a token
        log = engine.log.read_text()
        assert "WARNING: authentication is OFF" in log and "AUTHENTICATION IS OFF" in log
        assert not (tmp_path / "home" / "engine" / "token").exists()
    finally:
        engine.stop()


@pytest.mark.parametrize(
    ("value", "kwargs", "valid"),
    [
        ("a" * 253, {}, True),
        ("a" * 254, {}, False),
        ("my.pipeline-1", {}, True),
        ("-x", {}, False),
        ("x-", {}, False),
        ("a..b", {}, False),
        ("a" * 63, {"label": True}, True),
        ("a" * 64, {"label": True}, False),
        ("a.b", {"label": True}, False),
        ("train-", {"prefix": True}, True),  # generateName: a trailing '-' is the point
        ("a" * 248, {"prefix": True}, True),  # + 5 random characters = 253
        ("a" * 249, {"prefix": True}, False),
        ("../x-", {"prefix": True}, False),
    ],
)
def test_names_follow_kubernetes_rules(value: str, kwargs: dict[str, bool], valid: bool) -> None:
    assert (name_problem(value, **kwargs) is None) is valid


def test_driftloop_config_never_prints_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_ARGO_TOKEN", "do-not-print-me")
    shown = CliRunner().invoke(cli, ["config"])
    assert shown.exit_code == 0 and "do-not-print-me" not in shown.output and "15 characters" in shown.output
