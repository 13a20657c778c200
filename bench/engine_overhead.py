"""Engine overhead: how long the embedded engine takes to run tiny workflows, next to its local-run peers.

Cases (all in the same run, medians of several runs after one untimed warm-up):
  (a) a 10-step chain of no-op Python steps (python image -> host python), in-process and via the CLI;
  (b) a 200-task fan-out of ``true``;
  (c) the same 10-step chain in Kubeflow Pipelines' local ``SubprocessRunner`` (kfp 2.x) and as a Metaflow
      local run, installed by this script into ``.bench-venv/`` (pip install kfp metaflow) if missing.

Usage: .venv/bin/python bench/engine_overhead.py [--runs 5] [--peer-runs 3] [--skip-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_VENV = REPO / ".bench-venv"
CHAIN_LENGTH = 10
FAN_OUT = 200

KFP_CHAIN = f"""
from kfp import dsl, local
import sys
local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[1])
@dsl.component
def noop():
    pass
@dsl.pipeline
def chain():
    previous = noop()
    for _ in range({CHAIN_LENGTH - 1}):
        current = noop()
        current.after(previous)
        previous = current
chain()
"""


def metaflow_chain_source() -> str:
    steps = ["start"] + [f"s{i}" for i in range(1, CHAIN_LENGTH - 1)] + ["end"]
    lines = ["from metaflow import FlowSpec, step", "", "class ChainFlow(FlowSpec):"]
    for index, name in enumerate(steps):
        body = f"self.next(self.{steps[index + 1]})" if index + 1 < len(steps) else "pass"
        lines += ["    @step", f"    def {name}(self):", f"        {body}", ""]
    lines += ['if __name__ == "__main__":', "    ChainFlow()", ""]
    return "\n".join(lines)


def chain_workflow(image: str = "python:3.11") -> dict[str, Any]:
    tasks = [
        {"name": f"s{i}", "template": "noop", **({"depends": f"s{i - 1}"} if i else {})} for i in range(CHAIN_LENGTH)
    ]
    noop = {"name": "noop", "script": {"image": image, "command": ["python"], "source": "pass"}}
    return _workflow("chain-", [{"name": "main", "dag": {"tasks": tasks}}, noop])


def fan_workflow() -> dict[str, Any]:
    fan = [[{"name": "t", "template": "t", "withSequence": {"count": str(FAN_OUT)}}]]
    return _workflow(
        "fan-", [{"name": "main", "steps": fan}, {"name": "t", "container": {"image": "busybox", "command": ["true"]}}]
    )


def _workflow(prefix: str, templates: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": prefix},
        "spec": {"entrypoint": "main", "templates": templates},
    }


def measure(action: Callable[[], None], runs: int) -> list[float]:
    action()  # warm-up: compiles the launcher, fills caches, loads pip/.pyc for the peers
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return timings


def in_process(build: Callable[[], dict[str, Any]], home: Path) -> Callable[[], None]:
    from workflows.engine.runner import EngineContext, run_workflow

    ctx = EngineContext.local(home)
    counter = iter(range(10**6))

    def action() -> None:
        workflow = build()
        workflow["metadata"]["name"] = f"{workflow['metadata']['generateName']}{next(counter)}-{os.getpid()}"
        finished = run_workflow(workflow, ctx)
        if finished["status"]["phase"] != "Succeeded":
            raise SystemExit(f"benchmark workflow failed: {finished['status'].get('message')}")

    return action


def command(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Callable[[], None]:
    def action() -> None:
        done = subprocess.run(argv, env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    return action


def ensure_bench_venv() -> Path:
    python = BENCH_VENV / "bin" / "python"
    probe = [str(python), "-c", "import kfp, metaflow"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print("installing kfp and metaflow into .bench-venv/ (once)…", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(BENCH_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "kfp>=2,<3", "metaflow"], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each engine case")
    parser.add_argument("--peer-runs", type=int, default=3, help="timed runs of each peer (they are slow)")
    parser.add_argument("--skip-peers", action="store_true", help="only measure the embedded engine")
    options = parser.parse_args()
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as scratch:
        work = Path(scratch)
        home = work / "home"
        rows.append(
            (
                f"engine: {CHAIN_LENGTH}-step python chain (in-process)",
                measure(in_process(chain_workflow, home), options.runs),
            )
        )
        chain_file = work / "chain.yaml"
        chain_file.write_text(json.dumps(chain_workflow()))
        cli = [str(REPO / ".venv" / "bin" / "driftloop"), "engine", "run", str(chain_file), "-o", "json"]
        rows.append(
            (
                f"engine: {CHAIN_LENGTH}-step python chain (driftloop engine run)",
                measure(command(cli, {"DRIFTLOOP_HOME": str(home)}), options.runs),
            )
        )
        rows.append(
            (
                f"engine: {CHAIN_LENGTH}-step chain, project image (venv python)",
                measure(in_process(lambda: chain_workflow("ghcr.io/driftloop/driftloop:latest"), home), options.runs),
            )
        )
        rows.append(
            (
                f"engine: {FAN_OUT}-task fan-out of true (in-process)",
                measure(in_process(fan_workflow, home), options.runs),
            )
        )
        if not options.skip_peers:
            python = str(ensure_bench_venv())
            (work / "kfp_chain.py").write_text(KFP_CHAIN)
            (work / "chain_flow.py").write_text(metaflow_chain_source())
            kfp = command([python, str(work / "kfp_chain.py"), str(work / "kfp-root")], cwd=work)
            rows.append((f"kfp {CHAIN_LENGTH}-step chain (local SubprocessRunner)", measure(kfp, options.peer_runs)))
            metaflow_env = {
                "USERNAME": "bench",
                "METAFLOW_HOME": str(work / "mf-home"),
                "METAFLOW_DEFAULT_DATASTORE": "local",
                "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(work / "mf"),
            }
            metaflow = command([python, str(work / "chain_flow.py"), "--quiet", "run"], metaflow_env, work)
            rows.append((f"metaflow {CHAIN_LENGTH}-step chain (local run)", measure(metaflow, options.peer_runs)))
    reference = statistics.median(rows[1][1])
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine: noisy)")
    print("| case | runs | median s | min s | max s | x engine CLI chain |")
    print("|---|---|---|---|---|---|")
    for name, timings in rows:
        median = statistics.median(timings)
        print(
            f"| {name} | {len(timings)} | {median:.3f} | {min(timings):.3f} | {max(timings):.3f} | {median / reference:.1f} |"
        )


if __name__ == "__main__":
    main()
