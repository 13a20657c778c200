"""Serving the credit-risk champion with MLflow's own scoring server: this code's pyfunc against an earlier one.

Both legs are ``mlflow models serve -m DIR --env-manager local --workers 1`` on the same model directory (same
weights, same signature); the "before" leg imports the pyfunc from ``git archive REV`` (PYTHONPATH wins over the
editable install), so the two differ only in ``workflows/steps/_pyfunc.py`` / ``_tabular.py``. Legs alternate in
one run, --repeats times:

- one-row latency: open-loop at --rps (well under either ceiling), keep-alive, p50/p99 from each request's send;
- ceiling: --clients closed-loop keep-alive clients for --duration s, answered 200s per second;
- the two servers' predictions on the same rows, compared.

Two more legs (unless --no-floor) show MLflow's own floor: the same server serving a pyfunc that does no work and
answers the champion's output frame, once with the champion's signature (``floor``: MLflow still parses, casts and
enforces the schema) and once without one (``floor-nosig``). No model code can make a request cheaper than ``floor``.

    .venv/bin/python bench/serving_model.py                 # ~8 min
    .venv/bin/python bench/serving_model.py --repeats 1 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.sidecar import free_port, pct, stop  # noqa: E402
from monitors.traffic import encode_body, scenario_records  # noqa: E402

BEFORE = "c86618f"  # the last commit with the pandas preprocessing and two torch threads


def build_champion(directory: Path, rows: int = 4000, seed: int = 42) -> Path:
    """Train and save the pyfunc under ``directory/model`` (reused when it exists); returns that path."""
    model_dir = directory / "model"
    if (model_dir / "MLmodel").exists():
        return model_dir
    import mlflow
    import torch

    from features.generator import generate
    from features.store import code_schema
    from workflows.steps._dataset import TrainingSet
    from workflows.steps._environment import pip_requirements, skip_installed_package_scan
    from workflows.steps._pyfunc import PREPROCESSING, WEIGHTS, CreditRiskModel, signature_for
    from workflows.steps._training import fit

    schema = code_schema("credit-risk")
    data = TrainingSet(generate("baseline", rows=rows, seed=seed), schema)
    fitted = fit(data, epochs=1, seed=seed, device=torch.device("cpu"))
    skip_installed_package_scan()
    with tempfile.TemporaryDirectory() as tmp:
        weights, config = Path(tmp) / "weights.pt", Path(tmp) / "preprocessing.json"
        torch.save(fitted.net.state_dict(), weights)
        config.write_text(json.dumps(fitted.config()))
        mlflow.pyfunc.save_model(
            str(model_dir),
            python_model=CreditRiskModel(),
            artifacts={WEIGHTS: str(weights), PREPROCESSING: str(config)},
            signature=signature_for(schema),
            pip_requirements=pip_requirements(),
        )
    return model_dir


def build_floor(directory: Path, signed: bool) -> Path:
    """A pyfunc that does no work (a constant per row, the champion's output frame), saved like the champion with or
    without its signature: what MLflow's own request path costs when the model costs nothing."""
    model_dir = directory / ("floor-signed" if signed else "floor-unsigned")
    if (model_dir / "MLmodel").exists():
        return model_dir
    import mlflow
    import pandas as pd

    from features.store import code_schema
    from workflows.steps._environment import pip_requirements, skip_installed_package_scan
    from workflows.steps._pyfunc import OUTPUT_COLUMN, signature_for

    class NoWork(mlflow.pyfunc.PythonModel):  # local: cloudpickle saves it by value, the server needs no import
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return pd.DataFrame({OUTPUT_COLUMN: [0.5] * len(model_input)})

    skip_installed_package_scan()
    mlflow.pyfunc.save_model(
        str(model_dir),
        python_model=NoWork(),
        signature=signature_for(code_schema("credit-risk")) if signed else None,
        pip_requirements=pip_requirements(),
    )
    return model_dir


def serve(model: Path, port: int, pythonpath: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model), "--env-manager", "local",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # MLflow execs `uvicorn`
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "PATH": path}
    where = subprocess.run([sys.executable, "-c", "import workflows.steps._tabular as t; print(t.__file__)"],
                           env=env, cwd=pythonpath, capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    if not where.startswith(str(pythonpath)):
        raise SystemExit(f"the pyfunc would come from {where}, not from {pythonpath}")
    process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, cwd=pythonpath)
    deadline = time.monotonic() + 600  # a loaded 2-core machine: MLflow + torch imports take minutes
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"mlflow models serve exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"port {port} never answered /ping")


async def _closed_loop(url: str, bodies: list[bytes], clients: int, duration: float) -> float:
    ok = 0
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        deadline = time.perf_counter() + duration

        async def client(offset: int) -> None:
            nonlocal ok
            n = offset
            while time.perf_counter() < deadline:
                async with session.post(url, data=bodies[n % len(bodies)], headers=headers) as response:
                    await response.read()
                    ok += response.status == 200
                n += clients

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        return ok / (time.perf_counter() - started)


def ceiling(url: str, clients: int, duration: float, server_pid: int | None = None) -> float:
    """Closed-loop throughput, the load in a separate process (it must not share a GIL with anything).

    With ``server_pid`` also the server's CPU per answered request (its whole process tree, from /proc): on a
    loaded machine throughput says how much CPU the server got, CPU per request says what it needs.
    """
    rate, _ = ceiling_and_cpu(url, clients, duration, server_pid)
    return rate


def ceiling_and_cpu(url: str, clients: int, duration: float, server_pid: int | None) -> tuple[float, float]:
    code = (
        "import asyncio,json,sys; sys.path.insert(0, sys.argv[4]); from bench.serving_model import _closed_loop, rows; "
        "print(asyncio.run(_closed_loop(sys.argv[1], rows(), int(sys.argv[2]), float(sys.argv[3]))))"
    )
    cpu_before = cpu_tree(server_pid) if server_pid else 0.0
    out = subprocess.run([sys.executable, "-c", code, url, str(clients), str(duration), str(REPO)],
                         capture_output=True, text=True, cwd=REPO)  # fmt: skip
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    rate = float(out.stdout.split()[-1])
    cpu_ms = (cpu_tree(server_pid) - cpu_before) * 1000 / max(1.0, rate * duration) if server_pid else float("nan")
    return rate, cpu_ms


def cpu_tree(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (mlflow models serve execs uvicorn as a child)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_tree(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def rows() -> list[bytes]:
    frame = scenario_records("baseline", 500, 5)
    return [encode_body(frame.iloc[i : i + 1], "dataframe_split") for i in range(len(frame))]


def latency(url: str, rps: float, duration: float) -> tuple[float, float, dict[str, int]]:
    code = (
        "import json,sys; from monitors.traffic import replay, scenario_records; "
        "r = replay(scenario_records('baseline', 500, 5), sys.argv[1], rps=float(sys.argv[2]), "
        "duration_s=float(sys.argv[3])); print(json.dumps({'lat': r.latencies_ms, 'st': dict(r.statuses), "
        "'err': dict(r.errors)}))"
    )
    out = subprocess.run([sys.executable, "-c", code, url, str(rps), str(duration)], capture_output=True, text=True,
                         cwd=REPO)  # fmt: skip
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    result = json.loads(out.stdout.splitlines()[-1])
    return pct(result["lat"], 50), pct(result["lat"], 99), {**result["st"], **result["err"]}


def predictions(url: str) -> list[float]:
    answers = []
    for body in rows()[:50]:
        answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
        answers.append(float(answer.json()["predictions"][0]["default_probability"]))
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=BEFORE, help="git revision of the 'before' pyfunc")
    parser.add_argument("--rps", type=float, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, default=None, help="build the champion here once, reuse it after")
    parser.add_argument("--no-floor", action="store_true", help="skip the no-work pyfunc legs (MLflow's own floor)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        model = build_champion(args.model_dir or work)
        models = {"before": model, "after": model}
        if not args.no_floor:
            models["floor"] = build_floor(args.model_dir or work, signed=True)
            models["floor-nosig"] = build_floor(args.model_dir or work, signed=False)
        before_tree = work / "before"
        before_tree.mkdir()
        archive = subprocess.run(["git", "archive", args.before, "workflows", "features", "monitors", "driftloop"],
                                 cwd=REPO, capture_output=True, check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(before_tree)], input=archive, check=True)
        ports = {leg: free_port() for leg in models}
        servers: dict[str, subprocess.Popen[bytes]] = {}
        try:  # started inside the try: a server that came up is stopped even when the next one fails
            for leg, served in models.items():
                tree = before_tree if leg == "before" else REPO
                servers[leg] = serve(served, ports[leg], tree, work / f"{leg}.log")
            urls = {leg: f"http://127.0.0.1:{port}/invocations" for leg, port in ports.items()}
            same = predictions(urls["before"]) == predictions(urls["after"])
            if not args.no_floor:
                predictions(urls["floor"])  # answers 200 with the champion's output shape, or raises
            for url in urls.values():  # warm-up, discarded
                latency(url, args.rps, 2)
            table = []
            for repeat in range(args.repeats):
                for leg, url in urls.items():
                    p50, p99, statuses = latency(url, args.rps, args.duration)
                    top, cpu_ms = ceiling_and_cpu(url, args.clients, args.duration, servers[leg].pid)
                    table.append((repeat, leg, p50, p99, top, cpu_ms, statuses))
        finally:
            for process in servers.values():
                stop(process)
    print(f"\n## MLflow scoring server, one worker, one-row requests (load average {os.getloadavg()[0]:.2f})")
    print(f"predictions identical on 50 rows: {same}")
    print(f"{'run':>3} {'leg':11} {'p50 ms':>8} {'p99 ms':>8} {'ceiling req/s':>14} {'CPU ms/req':>10}  statuses")
    for repeat, leg, p50, p99, top, cpu_ms, statuses in table:
        print(f"{repeat:>3} {leg:11} {p50:8.2f} {p99:8.2f} {top:14.1f} {cpu_ms:10.2f}  {statuses}")
    med = {leg: [statistics.median(r[i] for r in table if r[1] == leg) for i in (2, 3, 4, 5)] for leg in ports}
    for leg, (p50, p99, top, cpu_ms) in med.items():
        print(
            f"median {leg:11} p50 {p50:.2f} ms  p99 {p99:.2f} ms  ceiling {top:.1f} req/s  server CPU {cpu_ms:.2f} ms/req"
            f" (one core: {1000 / cpu_ms:.0f} req/s)"
        )
    print(f"after/before: p50 x{med['after'][0] / med['before'][0]:.2f}, ceiling x{med['after'][2] / med['before'][2]:.2f},"
          f" CPU per request x{med['after'][3] / med['before'][3]:.2f}"
          "  (goal: p50 <= 5 ms, ceiling >= 150 req/s)")  # fmt: skip
    if not args.no_floor:
        print("floor = a pyfunc that does no work, same signature; floor-nosig = the same without a signature: "
              "what MLflow's server costs when the model costs nothing")  # fmt: skip


if __name__ == "__main__":
    main()
