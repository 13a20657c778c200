"""Serving the credit-risk champion with MLflow's own scoring server: this code's pyfunc against earlier ones.

Every leg is ``mlflow models serve -m DIR --env-manager local --workers 1``, same weights:

- ``before``: the pyfunc of ``git archive REV`` (PYTHONPATH wins over the editable install) with the column
  signature, sent ``dataframe_split`` bodies (MLflow builds a frame, casts it to the signature, enforces it);
- ``columns``: this tree's pyfunc, same column signature, same bodies (what ``train`` logged until the typed model);
- ``after``: what ``train`` logs now, the typed model (``_pyfunc.served_model``: the signature from type hints,
  each row validated by pydantic), sent ``inputs`` bodies (a list of records, the one body it takes).

Legs alternate in one run, --repeats times:

- one-row latency: open-loop at --rps (well under either ceiling), keep-alive, p50/p99 from each request's send;
- ceiling: --clients closed-loop keep-alive clients for --duration s, answered 200s per second;
- the two servers' predictions on the same rows, compared.

Three more legs (unless --no-floor) show MLflow's own floor: the same server serving a pyfunc that does no work and
answers the champion's output, with the champion's column signature (``floor``: MLflow still parses, casts and
enforces the schema), typed like the champion (``floor-typed``: MLflow validates each row), and without a signature
(``floor-nosig``). No model code can make a request cheaper than its floor.

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


def build_champion(directory: Path, rows: int = 4000, seed: int = 42, *, typed: bool = True) -> Path:
    """Train and save the pyfunc as ``train`` logs it (``typed``) under ``directory/model``, or with the column
    signature under ``directory/model-columns``, reused when it exists (a ``model`` saved before the typed model is
    rebuilt); returns that path."""
    model_dir = directory / ("model" if typed else "model-columns")
    if (model_dir / "MLmodel").exists() and _is_typed(model_dir) == typed:
        return model_dir
    import shutil

    shutil.rmtree(model_dir, ignore_errors=True)
    import mlflow
    import torch

    from features.generator import generate
    from features.store import code_schema
    from workflows.steps._dataset import TrainingSet
    from workflows.steps._environment import pip_requirements, skip_installed_package_scan
    from workflows.steps._pyfunc import PREPROCESSING, WEIGHTS, CreditRiskModel, served_model, signature_for
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
            python_model=served_model(schema) if typed else CreditRiskModel(),
            artifacts={WEIGHTS: str(weights), PREPROCESSING: str(config)},
            signature=None if typed else signature_for(schema),
            pip_requirements=pip_requirements(),
        )
    return model_dir


def _is_typed(model_dir: Path) -> bool:
    return "is_signature_from_type_hint: true" in (model_dir / "MLmodel").read_text()


def build_floor(directory: Path, signature: str) -> Path:
    """A pyfunc that does no work (a constant per row, the champion's output), saved like the champion with its
    column signature (``columns``), typed like it (``typed``) or without a signature (``none``): what MLflow's own
    request path costs when the model costs nothing."""
    model_dir = directory / f"floor-{signature}"
    if (model_dir / "MLmodel").exists():
        return model_dir
    import mlflow
    import pandas as pd

    from features.store import code_schema
    from workflows.steps._environment import pip_requirements, skip_installed_package_scan
    from workflows.steps._pyfunc import OUTPUT_COLUMN, served_model, signature_for

    class NoWork(mlflow.pyfunc.PythonModel):  # local: cloudpickle saves it by value, the server needs no import
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return pd.DataFrame({OUTPUT_COLUMN: [0.5] * len(model_input)})

    python_model: mlflow.pyfunc.PythonModel = NoWork()
    if signature == "typed":  # the champion's typed predict, answering the constant without loading any weights
        python_model = served_model(code_schema("credit-risk"))
        python_model.predict_records = lambda rows: [{OUTPUT_COLUMN: 0.5} for _ in rows]  # type: ignore[method-assign]
        python_model.load_context = lambda context: None  # type: ignore[method-assign]
    skip_installed_package_scan()
    mlflow.pyfunc.save_model(
        str(model_dir),
        python_model=python_model,
        signature=signature_for(code_schema("credit-risk")) if signature == "columns" else None,
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


def ceiling(
    url: str, clients: int, duration: float, server_pid: int | None = None, body_format: str = "inputs"
) -> float:
    """Closed-loop throughput, the load in a separate process (it must not share a GIL with anything).

    With ``server_pid`` also the server's CPU per answered request (its whole process tree, from /proc): on a
    loaded machine throughput says how much CPU the server got, CPU per request says what it needs.
    """
    rate, _ = ceiling_and_cpu(url, clients, duration, server_pid, body_format)
    return rate


def ceiling_and_cpu(
    url: str, clients: int, duration: float, server_pid: int | None, body_format: str = "inputs"
) -> tuple[float, float]:
    code = (
        "import asyncio,json,sys; sys.path.insert(0, sys.argv[4]); from bench.serving_model import _closed_loop, rows; "
        "print(asyncio.run(_closed_loop(sys.argv[1], rows(sys.argv[5]), int(sys.argv[2]), float(sys.argv[3]))))"
    )
    cpu_before = cpu_tree(server_pid) if server_pid else 0.0
    out = subprocess.run([sys.executable, "-c", code, url, str(clients), str(duration), str(REPO), body_format],
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


def rows(body_format: str = "inputs") -> list[bytes]:
    frame = scenario_records("baseline", 500, 5)
    return [encode_body(frame.iloc[i : i + 1], body_format) for i in range(len(frame))]


def latency(url: str, rps: float, duration: float, body_format: str = "inputs") -> tuple[float, float, dict[str, int]]:
    code = (
        "import json,sys; from monitors.traffic import replay, scenario_records; "
        "r = replay(scenario_records('baseline', 500, 5), sys.argv[1], rps=float(sys.argv[2]), "
        "duration_s=float(sys.argv[3]), body_format=sys.argv[4]); print(json.dumps({'lat': r.latencies_ms, "
        "'st': dict(r.statuses), 'err': dict(r.errors)}))"
    )
    out = subprocess.run([sys.executable, "-c", code, url, str(rps), str(duration), body_format], capture_output=True,
                         text=True, cwd=REPO)  # fmt: skip
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    result = json.loads(out.stdout.splitlines()[-1])
    return pct(result["lat"], 50), pct(result["lat"], 99), {**result["st"], **result["err"]}


def predictions(url: str, body_format: str) -> list[float]:
    answers = []
    for body in rows(body_format)[:50]:
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
        columns = build_champion(args.model_dir or work, typed=False)
        models = {"before": columns, "columns": columns, "after": build_champion(args.model_dir or work)}
        if not args.no_floor:
            for leg, signature in (("floor", "columns"), ("floor-typed", "typed"), ("floor-nosig", "none")):
                models[leg] = build_floor(args.model_dir or work, signature)
        formats = {leg: "inputs" if leg in ("after", "floor-typed") else "dataframe_split" for leg in models}
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
            answers = {leg: predictions(urls[leg], formats[leg]) for leg in ("before", "columns", "after")}
            same = answers["before"] == answers["columns"] == answers["after"]
            if not args.no_floor:
                for leg in ("floor", "floor-typed"):
                    predictions(urls[leg], formats[leg])  # answers 200 with the champion's output shape, or raises
            for leg, url in urls.items():  # warm-up, discarded
                latency(url, args.rps, 2, formats[leg])
            table = []
            for repeat in range(args.repeats):
                for leg, url in urls.items():
                    p50, p99, statuses = latency(url, args.rps, args.duration, formats[leg])
                    top, cpu_ms = ceiling_and_cpu(url, args.clients, args.duration, servers[leg].pid, formats[leg])
                    table.append((repeat, leg, p50, p99, top, cpu_ms, statuses))
        finally:
            for process in servers.values():
                stop(process)
    print(f"\n## MLflow scoring server, one worker, one-row requests (load average {os.getloadavg()[0]:.2f})")
    print(f"predictions identical on 50 rows (before, columns, after): {same}")
    print(f"{'run':>3} {'leg':11} {'p50 ms':>8} {'p99 ms':>8} {'ceiling req/s':>14} {'CPU ms/req':>10}  statuses")
    for repeat, leg, p50, p99, top, cpu_ms, statuses in table:
        print(f"{repeat:>3} {leg:11} {p50:8.2f} {p99:8.2f} {top:14.1f} {cpu_ms:10.2f}  {statuses}")
    med = {leg: [statistics.median(r[i] for r in table if r[1] == leg) for i in (2, 3, 4, 5)] for leg in ports}
    for leg, (p50, p99, top, cpu_ms) in med.items():
        print(
            f"median {leg:11} p50 {p50:.2f} ms  p99 {p99:.2f} ms  ceiling {top:.1f} req/s  server CPU {cpu_ms:.2f} ms/req"
            f" (one core: {1000 / cpu_ms:.0f} req/s)"
        )
    for base in ("before", "columns"):
        print(f"after/{base}: p50 x{med['after'][0] / med[base][0]:.2f}, ceiling x{med['after'][2] / med[base][2]:.2f},"
              f" CPU per request x{med['after'][3] / med[base][3]:.2f}")  # fmt: skip
    p50, _, top, _ = med["after"]
    print(f"goal (after): p50 <= 5 ms: {p50:.2f} ms {'met' if p50 <= 5 else 'missed'}; "
          f"ceiling >= 150 req/s: {top:.1f} {'met' if top >= 150 else 'missed'}")
    if not args.no_floor:
        print("floor / floor-typed / floor-nosig = a pyfunc that does no work with the column signature / typed like "
              "the champion / without a signature: what MLflow's server costs when the model costs nothing")  # fmt: skip


if __name__ == "__main__":
    main()
