"""Daemon steps/tasks: Running + daemoned while the followers use them, killed (and Succeeded) when the template
that started them finishes; readiness probes against 127.0.0.1."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest

from tests._support import free_port as _free_port
from tests.engine.conftest import make_workflow, nodes_by_display, processes_running
from workflows.engine._daemon import probe_once
from workflows.engine.runner import run_workflow


def _python(*args: str, **extra: Any) -> dict[str, Any]:
    return {"container": {"image": "python:3.12", "command": ["python3", *args], **extra}}


def test_daemon_step_serves_its_followers_and_is_killed_when_the_steps_finish(ctx):
    port = _free_port()
    fetch = f"import urllib.request as u; print(u.urlopen('http://{{{{inputs.parameters.host}}}}:{port}/').status)"
    server = _python("-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", "/tmp")
    server["container"]["readinessProbe"] = {"httpGet": {"path": "/", "port": port}, "periodSeconds": 0.2}
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "server", "template": "server"}],
                    [
                        {
                            "name": "client",
                            "template": "client",
                            "arguments": {"parameters": [{"name": "host", "value": "{{steps.server.ip}}"}]},
                        }
                    ],
                ],
            },
            {"name": "server", "daemon": True, **server},
            {"name": "client", "inputs": {"parameters": [{"name": "host"}]}, **_python("-c", fetch)},
        ]
    )
    snapshots: list[dict[str, Any]] = []
    done = run_workflow(workflow, ctx, on_change=snapshots.append)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    assert nodes["client"]["outputs"]["result"] == "200"
    assert nodes["server"]["phase"] == "Succeeded" and "daemoned" not in nodes["server"]
    # while the client ran, the server was a Running, daemoned node
    seen = [nodes_by_display(s) for s in snapshots]
    assert any(
        n.get("client", {}).get("phase") == "Running"
        and n["server"]["phase"] == "Running"
        and n["server"].get("daemoned") is True
        for n in seen
    )
    assert processes_running(f"python3 -m http.server {port}") == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_retried_daemon_task_is_daemoned_for_depends_and_killed_with_its_dag(ctx):
    token = uuid.uuid4().hex[:12]
    loop = f"while true; do sleep 1; done # {token}"
    workflow = make_workflow(
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "looper", "template": "looper"},
                        {"name": "by-name", "template": "echo", "depends": "looper"},
                        {"name": "by-daemoned", "template": "echo", "depends": "looper.Daemoned"},
                        {"name": "by-succeeded", "template": "echo", "depends": "looper.Succeeded"},
                    ]
                },
            },
            {
                "name": "looper",
                "daemon": True,
                "retryStrategy": {"limit": 1},
                "container": {
                    "image": "busybox",
                    "command": ["sh", "-c", loop],
                    "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 0.2},
                },
            },
            {"name": "echo", "container": {"image": "busybox", "command": ["echo", "ok"]}},
        ]
    )
    done = run_workflow(workflow, ctx)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    assert nodes["by-name"]["phase"] == "Succeeded"
    assert nodes["by-daemoned"]["phase"] == "Succeeded"
    assert nodes["by-succeeded"]["phase"] == "Omitted"  # a daemon is not Succeeded while it serves
    assert nodes["looper"]["type"] == "Retry" and nodes["looper"]["phase"] == "Succeeded"
    assert nodes["looper(0)"]["phase"] == "Succeeded" and "looper(1)" not in nodes
    assert processes_running(f"sh -c {loop}") == []


def test_a_daemon_that_exits_before_it_is_ready_fails_its_step(ctx):
    workflow = make_workflow(
        [
            {"name": "main", "steps": [[{"name": "broken", "template": "broken"}]]},
            {
                "name": "broken",
                "daemon": True,
                "container": {
                    "image": "busybox",
                    "command": ["sh", "-c", "exit 4"],
                    "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 0.2},
                },
            },
        ]
    )
    done = run_workflow(workflow, ctx)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Failed"
    assert nodes["broken"]["phase"] == "Failed" and nodes["broken"]["message"] == "Error (exit code 4)"


def test_readiness_probes_tcp_and_exec():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert probe_once({"tcpSocket": {"port": port}}) is True
    # a port bound but never listening refuses connections, and stays ours while held: a port merely closed could be
    # taken by another test meanwhile (it was, once in CI, and the probe found a listener there)
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        closed = reserved.getsockname()[1]
        assert probe_once({"tcpSocket": {"port": closed}, "timeoutSeconds": 0.5}) is False
        assert probe_once({"httpGet": {"port": closed, "path": "/"}, "timeoutSeconds": 0.5}) is False
    assert probe_once({"exec": {"command": ["true"]}}) is True
    assert probe_once({"exec": {"command": ["false"]}}) is False
