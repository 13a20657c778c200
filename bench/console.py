"""How fast the operator console renders at scale: the list page over 1,000 workflows and a 200-node DAG's page.

    .venv/bin/python bench/console.py --runs 15

Fills a fresh engine home through the engine's store directly (1,000 finished workflows with titles, labels and
progress, one of them a 200-task DAG with its 201 nodes; submitting them would only measure the runner), serves it
with the real ``EngineServer`` (token on, as by default) and times full HTTP round trips with a logged-in session:
the console pages side by side with the API answer holding the same data (the JSON the Argo UI would fetch and
render in the browser). The goal (issue 16): each console page under 1 s. Prints one table of medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from workflows.engine.server import EngineServer
from workflows.engine.store import Store

NAMESPACE = "bench"
TOKEN = "bench-console-token-0123456789abcdefghijkl"
GOAL_S = 1.0


def _finished(name: str, index: int, nodes: dict[str, Any] | None = None) -> dict[str, Any]:
    started = f"2026-12-01T{index // 3600 % 24:02d}:{index // 60 % 60:02d}:{index % 60:02d}Z"
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {
                "driftloop.io/model": f"model-{index % 5}",
                "driftloop.io/trigger": "drift" if index % 3 else "manual",
            },
            "annotations": {
                "workflows.argoproj.io/title": f"Retrain **model-{index % 5}**",
                "workflows.argoproj.io/description": "after a drift alert on `age`",
            },
        },
        "spec": {"entrypoint": "main", "workflowTemplateRef": {"name": "training"}},
        "status": {
            "phase": "Succeeded" if index % 7 else "Failed",
            "progress": "5/5",
            "startedAt": started,
            "finishedAt": started,
            **({"nodes": nodes} if nodes else {}),
        },
    }


def _dag_nodes(name: str, tasks: int) -> dict[str, Any]:
    """A root DAG node and ``tasks`` pods in layers of 10, each depending on the one above it and on a neighbour."""
    nodes: dict[str, Any] = {name: {"id": name, "name": name, "displayName": name, "type": "DAG", "phase": "Succeeded",
                                    "children": [f"{name}-0", f"{name}-1"]}}  # fmt: skip
    for index in range(tasks):
        children = [f"{name}-{c}" for c in (index + 10, index + 11) if c < tasks and (c % 10 or c == index + 10)]
        nodes[f"{name}-{index}"] = {
            "id": f"{name}-{index}", "name": f"{name}.task-{index}", "displayName": f"task-{index}", "type": "Pod",
            "phase": "Succeeded", "children": children, "templateName": "t",
            "startedAt": "2026-12-01T00:00:00Z", "finishedAt": "2026-12-01T00:00:05Z",
            "outputs": {"exitCode": "0", "parameters": [{"name": "rows", "value": str(index)}]},
        }  # fmt: skip
    return nodes


def _fill(home: Path, count: int, dag_tasks: int) -> float:
    began = time.perf_counter()
    store = Store.open(home)
    try:
        for index in range(count - 1):
            store.create(_finished(f"run-{index:04d}", index))
        store.create(_finished("big-dag", count, _dag_nodes("big-dag", dag_tasks)))
    finally:
        store.close()
    return time.perf_counter() - began


def _median(session: requests.Session, url: str, runs: int, **params: str) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        answer = session.get(url, params=params, timeout=60)
        times.append(time.perf_counter() - began)
        answer.raise_for_status()
        size = len(answer.content)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="repeats per page (median reported)")
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--dag-tasks", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="driftloop-bench-console-") as tmp:
        home = Path(tmp)
        os.environ["DRIFTLOOP_HOME"] = str(home)
        fill_s = _fill(home, args.workflows, args.dag_tasks)
        server = EngineServer(home, host="127.0.0.1", port=0, namespace=NAMESPACE, token=TOKEN)
        server.start_background()
        try:
            console = requests.Session()
            console.get(f"{server.url}/workflows?token={TOKEN}", timeout=60).raise_for_status()
            api = requests.Session()
            api.headers["Authorization"] = f"Bearer {TOKEN}"
            wf = f"{server.url}/api/v1/workflows/{NAMESPACE}"
            rows = [
                ("list page 1 (50 of all)", _median(console, f"{server.url}/workflows", args.runs),
                 _median(api, wf, args.runs, fields="-items.status.nodes")),
                ("list, last page", _median(console, f"{server.url}/workflows", args.runs, page="20"), None),
                ("list, label filter", _median(console, f"{server.url}/workflows", args.runs,
                                               label="driftloop.io/model=model-3"),
                 _median(api, wf, args.runs, **{"listOptions.labelSelector": "driftloop.io/model=model-3",
                                                "fields": "-items.status.nodes"})),
                (f"{args.dag_tasks}-node DAG page", _median(console, f"{server.url}/workflows/{NAMESPACE}/big-dag",
                                                            args.runs),
                 _median(api, f"{wf}/big-dag", args.runs)),
                (f"{args.dag_tasks}-node DAG + node panel",
                 _median(console, f"{server.url}/workflows/{NAMESPACE}/big-dag", args.runs, node="big-dag-150"), None),
            ]  # fmt: skip
        finally:
            server.shutdown()
    print(f"console benchmark: {args.workflows} workflows (filled through the store in {fill_s:.1f} s), "
          f"{args.runs} runs each, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'page':34} {'console (median)':>17} {'HTML':>9} {'API JSON (peer)':>16} {'JSON':>9} {'goal':>6}")
    for label, (seconds, size), peer in rows:
        peer_text = f"{peer[0] * 1000:13.1f} ms {peer[1] / 1024:7.0f} KB" if peer else f"{'—':>16} {'':>9}"
        verdict = "ok" if seconds < GOAL_S else "SLOW"
        print(f"{label:34} {seconds * 1000:14.1f} ms {size / 1024:6.0f} KB {peer_text} {verdict:>6}")


if __name__ == "__main__":
    main()
