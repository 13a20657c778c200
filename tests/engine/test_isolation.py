"""Each node's private filesystem (/tmp and every path it writes), the image map and the argosay stand-in."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.engine.conftest import make_workflow, nodes_by_display, processes_running, sh
from workflows.engine._pods import isolation_available

pytestmark = pytest.mark.skipif(
    not isolation_available(),
    reason="needs root and unshare (mount namespaces) to isolate nodes",
)


def test_parallel_nodes_writing_the_same_paths_do_not_see_each_other(run):
    marker = f"/tmp/private-{uuid.uuid4().hex}"
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [
                        {
                            "name": f"w{i}",
                            "template": "write",
                            "arguments": {"parameters": [{"name": "v", "value": str(i)}]},
                        }
                        for i in range(3)
                    ]
                ],
            },
            {
                "name": "write",
                "inputs": {"parameters": [{"name": "v"}]},
                **sh(
                    f"echo {{{{inputs.parameters.v}}}} > {marker}; echo {{{{inputs.parameters.v}}}} > /result.txt; "
                    f"sleep 0.3; cat {marker} /result.txt | sort -u | tr -d '\\n'"
                ),
            },
        ]
    )
    done = run(workflow)
    nodes = nodes_by_display(done)
    assert [nodes[f"w{i}"]["outputs"]["result"] for i in range(3)] == ["0", "1", "2"]
    assert not Path(marker).exists() and not Path("/result.txt").exists()


def test_volumes_are_shared_per_workflow_and_proc_is_the_nodes_own(run):
    workflow = make_workflow(
        [
            {"name": "main", "steps": [[{"name": "put", "template": "put"}], [{"name": "get", "template": "get"}]]},
            {
                "name": "put",
                **sh("echo saved > /mnt/vol/file; echo $$", volumeMounts=[{"name": "work", "mountPath": "/mnt/vol"}]),
            },
            {
                "name": "get",
                **sh(
                    "cat /mnt/vol/file; grep -c ' /mnt/vol ' /proc/mounts",
                    volumeMounts=[{"name": "work", "mountPath": "/mnt/vol"}],
                ),
            },
        ],
        volumeClaimTemplates=[{"metadata": {"name": "work"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
    )
    done = run(workflow)
    nodes = nodes_by_display(done)
    assert nodes["get"]["outputs"]["result"].split() == ["saved", "1"]
    # the node has its own pid namespace: pid 1 is the executor stand-in (as argoexec is in an Argo pod), so
    # the main process is pid 2 and a signal it sends itself is not ignored
    assert nodes["put"]["outputs"]["result"] == "2"


def test_argosay_and_cowsay_stand_ins(run):
    workflow = make_workflow(
        [
            {
                "name": "main",
                "steps": [
                    [
                        {"name": "say", "template": "say"},
                        {"name": "write", "template": "write"},
                        {"name": "cow", "template": "cow"},
                        {"name": "code", "template": "code"},
                    ]
                ],
            },
            {"name": "say", "container": {"image": "argoproj/argosay:v2", "args": ["echo", "hi there"]}},
            {
                "name": "write",
                "container": {"image": "argoproj/argosay:v2", "args": ["echo", "x", "/o/f"]},
                "outputs": {"parameters": [{"name": "f", "valueFrom": {"path": "/o/f"}}]},
            },
            {"name": "cow", "container": {"image": "docker/whalesay", "command": ["cowsay"], "args": ["moo"]}},
            {"name": "code", "container": {"image": "argoproj/argosay:v2", "args": ["exit", "4"]}},
        ]
    )
    nodes = nodes_by_display(run(workflow))
    assert nodes["say"]["outputs"]["result"] == "hi there"
    assert nodes["write"]["outputs"]["parameters"][0]["value"] == "x"
    assert "moo" in nodes["cow"]["outputs"]["result"]
    assert nodes["code"]["outputs"]["exitCode"] == "4" and nodes["code"]["phase"] == "Failed"


def test_script_templates_run_their_source_with_the_template_command(run):
    workflow = make_workflow(
        [
            {"name": "main", "steps": [[{"name": "py", "template": "py"}, {"name": "shell", "template": "shell"}]]},
            {"name": "py", "script": {"image": "python:3.12", "command": ["python"], "source": "print(6 * 7)"}},
            {
                "name": "shell",
                "script": {"image": "alpine", "command": ["sh", "-c"], "source": "#!/bin/sh\necho $((2+3))"},
            },
        ]
    )
    nodes = nodes_by_display(run(workflow))
    assert nodes["py"]["outputs"]["result"] == "42"
    assert nodes["shell"]["outputs"]["result"] == "5"


def test_shell_launcher_isolates_like_the_compiled_one(ctx, run):
    """Hosts without a C compiler use the shell launcher: same private /tmp, same pid namespace."""
    ctx.launcher = None
    marker = f"/tmp/shell-{uuid.uuid4().hex}"
    workflow = make_workflow(
        [
            {"name": "main", "steps": [[{"name": "a", "template": "w"}, {"name": "b", "template": "w"}]]},
            {"name": "w", **sh(f"[ ! -e {marker} ] && echo x > {marker} && echo $$")},
        ]
    )
    done = run(workflow)
    nodes = nodes_by_display(done)
    assert done["status"]["phase"] == "Succeeded"
    # both ran in a fresh pid namespace (the same low pid in each), as children of its pid 1 (the executor
    # stand-in, as argoexec is in an Argo pod)
    assert nodes["a"]["outputs"]["result"] == nodes["b"]["outputs"]["result"]
    assert 1 < int(nodes["a"]["outputs"]["result"]) < 100
    assert not Path(marker).exists()


def test_compiled_launcher_is_built_when_a_compiler_exists(ctx):
    import shutil

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the shell launcher is used")
    assert ctx.launcher is not None and ctx.launcher.exists()


def test_init_containers_run_first_and_sidecars_die_with_the_main_container(run):
    token = f"41{uuid.uuid4().int % 10**6}"
    workflow = make_workflow(
        [
            {
                "name": "main",
                "initContainers": [
                    {"name": "init", "image": "busybox", "command": ["sh", "-c", "echo ready > /work/flag"]}
                ],
                "sidecars": [{"name": "helper", "image": "busybox", "command": ["sleep", token]}],
                **sh("cat /work/flag"),
            }
        ]
    )
    done = run(workflow)
    (node,) = nodes_by_display(done).values()
    assert node["phase"] == "Succeeded" and node["outputs"]["result"] == "ready"
    assert processes_running(f"sleep {token}") == []
