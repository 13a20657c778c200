"""Loop latency: from the first drifted request to the retraining Workflow Running, per hop, median of --runs.

The whole local stack runs for real on free ports in a temporary home (MLflow, engine, model server, sidecar,
monitor, receiver, Alertmanager, Prometheus) with the stack's local profile: the sidecar seals every 0.5 s, the monitor
wakes on each lake write (its interval stays 5 s), 1 s scrape and rule evaluation, a 3 s `min_over_time` window and
`for` 1 s, group_wait 1 s. One champion is
trained once; then the engine's ``training`` WorkflowTemplate is replaced by a one-step no-op, so what is timed is
the alerting path and the submission, not a training run. Each run: baseline traffic until the drift alert is
resolved, then a burst of drifted traffic (720 rows in ~0.6 s), timing each hop by polling its own API every 50 ms.
t0 is the first drifted request as it reached the sidecar (its `_ts` in the lake), so the start-up of the
traffic process is not counted:

  model server answers  first drifted request at the sidecar → the model server answered a window of the burst
                        (a payload is captured with its answer; inference under load, not the loop's own)
  sidecar → lake        → the lake holds them (spool seal, lake writer, parquet)
  monitor evaluation    → the monitor's /metrics shows the drift share over the threshold
  scrape                → Prometheus has that value
  rule window + `for`   → Prometheus's alert is firing
  Alertmanager          → Alertmanager lists it (group_wait, then the webhook)
  group_wait → decision → the receiver has recorded its `submit` decision (Alertmanager's group_wait, or the next
                          group_interval tick when the group already existed, plus the webhook and the decision)
  submission            → the receiver's worker created the Workflow and the engine has it Running

    .venv/bin/python bench/loop_latency.py --runs 5
    .venv/bin/python bench/loop_latency.py --runs 5 --synthetic   # alerting hops only (no training, ~2 min)

``--synthetic`` replaces the model server, sidecar and monitor by a tiny exporter that serves the monitor's
``driftloop_drift_share`` and flips it from 0.1 to 0.5 at t0: it times scrape → rule → Alertmanager → receiver →
Running with the real Prometheus, Alertmanager, receiver and engine, without the minutes a champion costs.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODEL = "credit-risk"
HOPS = ["model server answers", "sidecar → lake", "monitor evaluation", "scrape", "rule window + `for`", "Alertmanager", "group_wait → decision",
        "submission"]  # fmt: skip
OURS = {"sidecar → lake", "monitor evaluation", "submission"}
# 60 requests x 12 rows = 720 rows > the window: the window then holds only the newest burst
TRAFFIC = ["--rps", "30", "--duration", "2", "--batch", "12", "--rows", "2000"]
BURST = ["--rps", "100", "--duration", "0.6", "--batch", "12", "--rows", "2000"]
WINDOW_ROWS = 600
NOOP_TEMPLATE = {  # replaces the training template once the champion exists: a retrain is one 2 s step
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "training"},
    "spec": {
        "entrypoint": "main",
        "arguments": {"parameters": [{"name": n, "value": ""} for n in ("model-name", "trigger", "trigger-ref")]},
        "templates": [
            {"name": "main", "container": {"image": "busybox", "command": ["sh", "-c"], "args": ["sleep 2"]}}
        ],
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def driftloop(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "driftloop", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def until(probe: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(poll)
    raise SystemExit(f"gave up waiting for {what}")


def get_json(url: str, **params: str) -> Any:
    try:
        return httpx.get(url, params=params, timeout=3).json()
    except (httpx.HTTPError, ValueError):
        return None


def monitor_share(env: dict[str, str]) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(env["DRIFTLOOP_MONITOR_URL"] + "/metrics", timeout=3).text
    except httpx.HTTPError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "driftloop_drift_share" and sample.labels.get("model") == MODEL:
                return float(sample.value)
    return None


def prometheus_share(env: dict[str, str]) -> float | None:
    answer = get_json(env["DRIFTLOOP_PROMETHEUS_URL"] + "/api/v1/query", query="max(driftloop_drift_share)")
    result = (answer or {}).get("data", {}).get("result") or []
    return float(result[0]["value"][1]) if result else None


def prometheus_firing(env: dict[str, str]) -> bool:
    answer = get_json(env["DRIFTLOOP_PROMETHEUS_URL"] + "/api/v1/alerts") or {}
    alerts = answer.get("data", {}).get("alerts", [])
    return any(a["labels"]["alertname"] == "DriftloopFeatureDrift" and a["state"] == "firing" for a in alerts)


def alertmanager_alert(env: dict[str, str]) -> str | None:
    alerts = get_json(env["DRIFTLOOP_ALERTMANAGER_URL"] + "/api/v2/alerts", filter='alertname="DriftloopFeatureDrift"')
    active = [a for a in alerts or [] if a["status"]["state"] == "active"]
    return active[0]["fingerprint"] if active else None


def resolved_delivered(env: dict[str, str], token: str, since: float) -> bool:
    """Alertmanager told the receiver the alert resolved (only then is a new firing a new notification: a flap
    inside group_interval is invisible to Alertmanager's notification log)."""
    answer = httpx.get(env["DRIFTLOOP_TRIGGER_URL"] + "/triggers", params={"limit": "20"},
                       headers={"Authorization": f"Bearer {token}"}, timeout=3).json()  # fmt: skip
    for row in answer["decisions"]:
        moment = datetime.fromisoformat(row["time"].replace("Z", "+00:00")).timestamp()
        if row["status"] == "resolved" and moment >= since:
            return True
    return False


def receiver_submitted(env: dict[str, str], token: str, since: float) -> dict[str, Any] | None:
    answer = httpx.get(env["DRIFTLOOP_TRIGGER_URL"] + "/triggers", params={"limit": "20"},
                       headers={"Authorization": f"Bearer {token}"}, timeout=3).json()  # fmt: skip
    for row in answer["decisions"]:
        moment = datetime.fromisoformat(row["time"].replace("Z", "+00:00")).timestamp()
        if row["decision"] == "submit" and moment >= since:
            return dict(row)
    return None


def running(client: Any, name: str) -> bool:
    try:
        phase = (client.get_workflow(name).get("status") or {}).get("phase")
    except Exception:
        return False
    return phase in {"Running", "Succeeded"}


def ping(env: dict[str, str]) -> bool:
    try:
        return httpx.get(env["DRIFTLOOP_MODEL_SERVER_URL"] + "/ping", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def one_run(env: dict[str, str], token: str, client: Any, last_submit: list[float]) -> dict[str, float]:
    from driftloop.config import get_settings

    lake = get_settings(env).lake_uri
    # reset: baseline traffic until the drift alert is gone from Alertmanager
    for _ in range(10):
        driftloop(env, "traffic", "--scenario", "baseline", *TRAFFIC)
        time.sleep(3)
        share = monitor_share(env)
        quiet = share is not None and share < 0.3 and alertmanager_alert(env) is None and not prometheus_firing(env)
        if quiet and (not last_submit or resolved_delivered(env, token, last_submit[-1])):
            break
    else:
        raise SystemExit("the drift alert never resolved on baseline traffic")
    sent_from = datetime.now(UTC)
    replay = subprocess.Popen([sys.executable, "-m", "driftloop", "traffic", "--scenario", "covariate-shift", *BURST],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    captured = until(lambda: burst_in_lake(lake, sent_from), 60, "the lake", poll=0.05)
    marks = {"start": captured[0], "model server answers": captured[2], "sidecar → lake": time.time()}
    burst_s = captured[1] - captured[0]
    until(lambda: (monitor_share(env) or 0) >= 0.3, 60, "the monitor")
    marks["monitor evaluation"] = time.time()
    until(lambda: (prometheus_share(env) or 0) >= 0.3, 60, "the scrape")
    marks["scrape"] = time.time()
    until(lambda: prometheus_firing(env), 60, "the rule")
    marks["rule window + `for`"] = time.time()
    until(lambda: alertmanager_alert(env), 60, "Alertmanager")
    marks["Alertmanager"] = time.time()
    row = until(lambda: receiver_submitted(env, token, marks["start"]), 60, "the receiver")
    marks["group_wait → decision"] = time.time()
    last_submit.append(marks["group_wait → decision"])
    until(lambda: running(client, row["workflow"]), 60, "the workflow Running")
    marks["submission"] = time.time()
    replay.wait(60)
    hops, previous = {}, marks["start"]
    for hop in HOPS:
        hops[hop] = marks[hop] - previous
        previous = marks[hop]
    hops["total"] = marks["submission"] - marks["start"]
    hops["(burst sent)"] = burst_s
    return hops


def burst_in_lake(lake: str, sent_from: datetime) -> tuple[float, float, float] | None:
    """Once the lake holds WINDOW_ROWS of the drifted burst: (first request's arrival at the sidecar, last request's
    arrival, when the model server had answered WINDOW_ROWS of its rows), else None. A payload is captured once it
    is answered (arrival `_ts` + `_latency_ms`), so the lake cannot hold the burst before the model server answered
    it; only parts whose segment opened (their name, ns) since ``sent_from`` are read."""
    import pyarrow.parquet as pq

    from monitors.lake import list_parts

    arrived: list[float] = []
    answered: list[float] = []
    for path in list_parts(lake, MODEL):
        stamp = Path(path).name.removeprefix("part-").split("-", 1)[0]
        if stamp.isdigit() and int(stamp) >= sent_from.timestamp() * 1e9:
            frame = pq.read_table(path, columns=["_ts", "_latency_ms", "_error"]).to_pandas()
            frame = frame[frame["_error"].isna() & (frame["_ts"] >= sent_from)]
            arrived += [ts.timestamp() for ts in frame["_ts"]]
            answered += [ts.timestamp() + ms / 1000 for ts, ms in zip(frame["_ts"], frame["_latency_ms"], strict=True)]
    if len(arrived) < WINDOW_ROWS:
        return None
    return min(arrived), max(arrived), sorted(answered)[WINDOW_ROWS - 1]


class Exporter:
    """Serves ``driftloop_drift_share`` (and a fresh last-success timestamp) at the monitor's URL."""

    def __init__(self, port: int) -> None:
        import http.server
        import threading

        self.share = 0.1
        self.last_submit: float | None = None
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = (f'driftloop_drift_share{{model="{MODEL}",version="1"}} {exporter.share}\n'
                        f"driftloop_monitor_last_success_timestamp_seconds {time.time()}\n").encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def synthetic_run(env: dict[str, str], token: str, client: Any, exporter: Exporter) -> dict[str, float]:
    exporter.share = 0.1
    last = exporter.last_submit
    until(lambda: alertmanager_alert(env) is None and not prometheus_firing(env)
          and (last is None or resolved_delivered(env, token, last)), 120, "the alert to resolve", 0.2)  # fmt: skip
    marks = {"start": time.time()}
    exporter.share = 0.5
    until(lambda: (prometheus_share(env) or 0) >= 0.3, 60, "the scrape")
    marks["scrape"] = time.time()
    until(lambda: prometheus_firing(env), 60, "the rule")
    marks["rule window + `for`"] = time.time()
    until(lambda: alertmanager_alert(env), 60, "Alertmanager")
    marks["Alertmanager"] = time.time()
    row = until(lambda: receiver_submitted(env, token, marks["start"]), 60, "the receiver")
    marks["group_wait → decision"] = time.time()
    exporter.last_submit = marks["group_wait → decision"]
    until(lambda: running(client, row["workflow"]), 60, "the workflow Running")
    marks["submission"] = time.time()
    hops, previous = {}, marks["start"]
    for hop in HOPS[3:]:
        hops[hop] = marks[hop] - previous
        previous = marks[hop]
    hops["total"] = marks["submission"] - marks["start"]
    return hops


def main_synthetic(env: dict[str, str], runs: int) -> list[dict[str, float]]:
    from driftloop.config import get_settings
    from driftloop.stack import ProcessManager
    from driftloop.stack.services import service
    from monitors.receiver._auth import resolve_token
    from workflows.client import ArgoClient

    settings = get_settings(env)
    os.environ.update(env)  # the services read their settings from the environment
    exporter = Exporter(int(env["DRIFTLOOP_MONITOR_URL"].rsplit(":", 1)[1]))
    manager = ProcessManager(settings)
    names = ["engine", "trigger", "alertmanager", "prometheus"]
    try:
        for name in names:
            manager.start(service(name))
        client = ArgoClient(settings, autostart=False)
        client.apply_template(NOOP_TEMPLATE)
        token = resolve_token(settings)
        results = []
        for index in range(runs):
            hops = synthetic_run(env, token, client, exporter)
            results.append(hops)
            print(f"run {index + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in hops.items()), flush=True)
        return results
    finally:
        for name in reversed(names):
            manager.stop(service(name))
        exporter.server.shutdown()


def report(results: list[dict[str, float]]) -> None:
    load = os.getloadavg()
    hops = [hop for hop in [*HOPS, "total"] if hop in results[0]]
    print(f"\nloop latency, median of {len(results)} runs (load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")
    print("| hop | median s | min s | max s | driftloop's own |\n|---|---|---|---|---|")
    for hop in hops:
        values = [r[hop] for r in results]
        own = "yes" if hop in OURS else ""
        print(f"| {hop} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} | {own} |")
    own_hops = [sum(r[h] for h in OURS if h in r) for r in results]
    print(f"| driftloop's own hops | {statistics.median(own_hops):.2f} | {min(own_hops):.2f} | {max(own_hops):.2f} | |")
    if "(burst sent)" in results[0]:
        bursts = [r["(burst sent)"] for r in results]
        print(f"| (inside the model server hop: the client sending the burst) | {statistics.median(bursts):.2f} | "
              f"{min(bursts):.2f} | {max(bursts):.2f} | |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--synthetic", action="store_true", help="alerting hops only: an exporter stands in for the monitor"
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="loop-latency-"))
    env = {
        **os.environ, "DRIFTLOOP_HOME": str(home), "DRIFTLOOP_LAKE_URI": "", "DRIFTLOOP_MODEL_NAME": MODEL,
        "DRIFTLOOP_MONITOR_WINDOW_ROWS": str(WINDOW_ROWS),  # the stack's monitor interval (5 s): it wakes on writes
        "DRIFTLOOP_MONITOR_WINDOW_MINUTES": "30", "DRIFTLOOP_TRIGGER_COOLDOWN": "1",
        **{f"DRIFTLOOP_{name}": f"http://127.0.0.1:{free_port()}"
           for name in ("MLFLOW_URI", "ARGO_SERVER", "MODEL_SERVER_URL", "SERVING_URL", "MONITOR_URL",
                        "PROMETHEUS_URL", "ALERTMANAGER_URL", "TRIGGER_URL")},
    }  # fmt: skip
    if args.synthetic:
        report(main_synthetic(env, args.runs))
        return
    from driftloop.config import get_settings
    from features.generator import generate, write_dataset
    from monitors.receiver._auth import resolve_token
    from workflows.client import ArgoClient

    try:
        print(f"home {home}; starting the stack…", flush=True)
        started = driftloop(env, "stack", "up")
        if started.returncode:
            raise SystemExit(started.stdout + started.stderr)
        dataset = write_dataset(generate("baseline", 6000), home / "inputs" / "b.parquet")
        trained = driftloop(env, "submit", "training", "--wait", "-p", f"dataset={dataset}", "-p", "epochs=2")
        if trained.returncode:
            raise SystemExit(trained.stdout[-3000:] + trained.stderr[-3000:])
        until(lambda: ping(env), 300, "the model server", poll=1)
        client = ArgoClient(get_settings(env), autostart=False)
        client.apply_template(NOOP_TEMPLATE)
        token = resolve_token(get_settings(env))
        results, submits = [], []
        for index in range(args.runs):
            hops = one_run(env, token, client, submits)
            results.append(hops)
            print(f"run {index + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in hops.items()), flush=True)
        report(results)
    finally:
        driftloop(env, "stack", "down", timeout=180)


if __name__ == "__main__":
    main()
