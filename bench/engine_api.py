"""Latency of the embedded Argo Server API, through Hera, against a real ``driftloop engine serve``.

    .venv/bin/python bench/engine_api.py --runs 5

Prints one table of medians: request round trips (version, create incl. lint, get, list), a one-step workflow
from create to Succeeded through the API next to the same workflow run in-process by ``run_workflow`` (ratio),
and concurrent create throughput. Numbers on a shared 2-core machine are noisy: read medians and ratios.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from hera.workflows import WorkflowsService
from hera.workflows.models import Workflow, WorkflowCreateRequest

from driftloop.config import read_argo_token

NAMESPACE = "bench"


def _workflow(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "container": {"image": "busybox", "command": ["true"]}}],
        },
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _timed(action: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _wait(service: WorkflowsService, name: str) -> None:
    while True:
        status = service.get_workflow(name).status
        if status is not None and status.phase in {"Succeeded", "Failed", "Error"}:
            return
        time.sleep(0.02)


class Bench:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.url = f"http://127.0.0.1:{_free_port()}"
        env = {**os.environ, "DRIFTLOOP_HOME": str(home), "DRIFTLOOP_ARGO_SERVER": self.url}
        self.log = open(home / "bench-serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "driftloop", "engine", "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        for _ in range(300):
            try:
                requests.get(self.url + "/api/v1/version", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        token = read_argo_token(env, home, self.url)  # the engine generated it on start, as every client reads it
        self.service = WorkflowsService(host=self.url + "/", namespace=NAMESPACE, token=token or None)
        self.counter = 0
        self.created: list[str] = []

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self.log.close()

    def create(self) -> str:
        self.counter += 1
        name = f"b{self.counter}"
        self.service.create_workflow(WorkflowCreateRequest(workflow=Workflow(**_workflow(name))))
        self.created.append(name)
        return name

    def round(self) -> dict[str, float]:
        results = {"GET /api/v1/version": _timed(lambda: self.service.get_version(), 30)}
        results["create workflow (lint + store)"] = _timed(self.create, 10)
        for name in self.created:
            _wait(self.service, name)
        results["get workflow"] = _timed(lambda: self.service.get_workflow(self.created[0]), 30)
        results["list workflows (all of them)"] = _timed(lambda: self.service.list_workflows(), 10)
        results["one-step workflow, create -> Succeeded (API)"] = _timed(lambda: _wait(self.service, self.create()), 3)
        results["same, run_workflow in-process"] = _timed(self._direct_run, 3)
        results["concurrent creates per second (8 threads x 4)"] = self._throughput()
        return results

    def _direct_run(self) -> None:
        from workflows.engine.runner import EngineContext, run_workflow

        self.counter += 1
        run_workflow(_workflow(f"direct{self.counter}"), EngineContext.local(self.home / "direct"))

    def _throughput(self) -> float:
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(4):
                with lock:
                    self.counter += 1
                    name = f"c{self.counter}"
                self.service.create_workflow(WorkflowCreateRequest(workflow=Workflow(**_workflow(name))))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return 32 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rounds, each on a fresh engine (default 3)")
    args = parser.parse_args()
    rounds: list[dict[str, float]] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as home:
            bench = Bench(Path(home))
            try:
                bench.round()  # warm-up round on the same engine: linter schemas, imports
                rounds.append(bench.round())
            finally:
                bench.stop()
    print(f"engine API, median of {args.runs} rounds (shared 2-core machine: noisy)")
    print(f"{'measure':<50} {'median':>12}")
    for key in rounds[0]:
        value = statistics.median(r[key] for r in rounds)
        shown = f"{value:.1f} /s" if key.startswith("concurrent") else f"{value * 1000:.1f} ms"
        print(f"{key:<50} {shown:>12}")
    api = statistics.median(r["one-step workflow, create -> Succeeded (API)"] for r in rounds)
    direct = statistics.median(r["same, run_workflow in-process"] for r in rounds)
    print(f"{'API / in-process ratio (one-step workflow)':<50} {api / direct:>11.2f}x")


if __name__ == "__main__":
    main()
