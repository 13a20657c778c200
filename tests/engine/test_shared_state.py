"""State shared across workflows of one engine: memoization, mutexes/semaphores, and the GPU pool."""

from __future__ import annotations

import threading

from tests.engine.conftest import SHARED_MOUNT, make_workflow, nodes_by_display, sh, shared_volume
from workflows.engine._gpu import GpuPool
from workflows.engine.runner import run_workflow


def test_memoize_hit_skips_the_second_run(run, shared_dir):
    def workflow():
        return make_workflow(
            [
                {
                    "name": "main",
                    **sh("echo x >> /shared/runs; echo computed", volumeMounts=SHARED_MOUNT),
                    "memoize": {"key": "fixed-key", "maxAge": "1h", "cache": {"configMap": {"name": "test-cache"}}},
                }
            ],
            **shared_volume(shared_dir),
        )

    first, second = run(workflow()), run(workflow())
    first_node = nodes_by_display(first)[first["metadata"]["name"]]
    second_node = nodes_by_display(second)[second["metadata"]["name"]]
    assert first_node["memoizationStatus"]["hit"] is False
    assert second_node["memoizationStatus"] == {"hit": True, "key": "fixed-key", "cacheName": "test-cache"}
    assert second_node["outputs"]["result"] == "computed"
    assert (shared_dir / "runs").read_text().count("x") == 1


def test_mutex_serialises_two_workflows(ctx, shared_dir):
    template = sh("echo start >> /shared/log; sleep 0.3; echo end >> /shared/log", volumeMounts=SHARED_MOUNT)
    workflows = [
        make_workflow(
            [{"name": "main", **template, "synchronization": {"mutex": {"name": "one-at-a-time"}}}],
            **shared_volume(shared_dir),
        )
        for _ in range(3)
    ]
    results: list[dict] = []
    threads = [threading.Thread(target=lambda w=w: results.append(run_workflow(w, ctx))) for w in workflows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [r["status"]["phase"] for r in results] == ["Succeeded"] * 3
    assert (shared_dir / "log").read_text().split() == ["start", "end"] * 3


def test_gpu_nodes_get_free_devices_or_fall_back(ctx, run):
    gpu_step = {"name": "main", **sh('echo "[$CUDA_VISIBLE_DEVICES]"', resources={"limits": {"nvidia.com/gpu": 1}})}
    ctx.gpus = GpuPool(["0", "1"])
    node = nodes_by_display(run(make_workflow([gpu_step])))
    (only,) = node.values()
    assert only["outputs"]["result"] in ("[0]", "[1]")

    ctx.gpus = GpuPool([])
    ctx.gpu_fallback = "cpu"
    (fallback,) = nodes_by_display(run(make_workflow([gpu_step]))).values()
    assert fallback["phase"] == "Succeeded" and "ran on CPU" in fallback["message"]
    assert fallback["outputs"]["result"] == "[]"

    ctx.gpu_fallback = "error"
    (refused,) = nodes_by_display(run(make_workflow([gpu_step]))).values()
    assert refused["phase"] == "Error" and "has no GPU" in refused["message"]


def test_gpu_pool_hands_out_distinct_devices():
    pool = GpuPool(["0", "1", "2"])
    first = pool.acquire(2, lambda: False)
    second = pool.acquire(1, lambda: False)
    assert first is not None and second is not None and not set(first) & set(second)
    assert pool.acquire(1, lambda: True) is None  # none free and the caller gives up
    pool.release(first)
    assert pool.acquire(2, lambda: False) is not None
    assert pool.acquire(4, lambda: False) is None  # more than the machine has


def test_semaphore_size_comes_from_the_local_configmap_file(ctx, shared_dir):
    (ctx.home / "semaphores.yaml").write_text("workers: {slots: 2}\n")
    script = "echo start >> /shared/log; sleep 0.4; echo end >> /shared/log"
    sync = {"semaphore": {"configMapKeyRef": {"name": "workers", "key": "slots"}}}
    workflow = make_workflow(
        [
            {"name": "main", "steps": [[{"name": f"w{i}", "template": "work"} for i in range(4)]]},
            {"name": "work", **sh(script, volumeMounts=SHARED_MOUNT), "synchronization": sync},
        ],
        **shared_volume(shared_dir),
    )
    assert run_workflow(workflow, ctx)["status"]["phase"] == "Succeeded"
    running, peak = 0, 0
    for line in (shared_dir / "log").read_text().split():
        running += 1 if line == "start" else -1
        peak = max(peak, running)
    assert peak == 2
