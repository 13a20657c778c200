"""What capture costs a client: MLflow's scoring server alone vs the driftloop serving paths, same champion.

Legs, all one uvicorn worker serving the credit-risk champion (bench/serving_model.py builds it):
- ``mlflow``: ``mlflow models serve`` alone, no capture (what a user would run instead);
- ``inprocess``: ``driftloop scoring-server`` (MLflow's scoring app + the capture middleware) with
  ``driftloop ship`` moving the spool to the lake next to it;
- ``proxy``: ``driftloop sidecar`` (reverse proxy) in front of the ``mlflow`` leg;
- ``stack``: what ``driftloop stack up`` runs: ``driftloop sidecar --no-capture`` (the route-only router the local
  deployer splits canaries with) in front of the ``inprocess`` leg.

First MLflow's saturation rate is measured (closed-loop, --clients keep-alive clients); then each leg gets
open-loop keep-alive one-row load at 50% and 80% of it, legs alternated --repeats times, latency measured
from each request's *scheduled* send time (no coordinated omission); then each leg's own ceiling. Medians and
added p99 (leg minus mlflow, paired by repeat). Goal: inprocess adds <= 1 ms p99, ceiling within 10%.

    .venv/bin/python bench/serving_path.py --model-dir /tmp/champ          # ~6 min
    .venv/bin/python bench/serving_path.py --repeats 1 --duration 5
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

from bench.serving_model import build_champion, ceiling, cpu_tree  # noqa: E402
from bench.sidecar import free_port, pct, stop  # noqa: E402

MODEL = "credit-risk"


def start(command: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, cwd=REPO)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[:4]} exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} never answered")


async def open_loop(url: str, bodies: list[bytes], rps: float, duration: float) -> dict[str, object]:
    """Requests leave on schedule; latency = answer time - scheduled time (a late send counts against the server)."""
    latencies: list[float] = []
    refused: list[float] = []  # answers other than 200 (a shed 503), timed the same way
    outcomes: dict[str, int] = {}
    headers = {"Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256), timeout=timeout) as session:

        async def one(n: int, scheduled: float) -> None:
            try:
                async with session.post(url, data=bodies[n % len(bodies)], headers=headers) as response:
                    await response.read()
                    key = str(response.status)
                    elapsed = (time.perf_counter() - scheduled) * 1000.0
                    (latencies if response.status == 200 else refused).append(elapsed)
            except (TimeoutError, aiohttp.ClientError) as exc:
                key = type(exc).__name__
            outcomes[key] = outcomes.get(key, 0) + 1

        start_at = time.perf_counter() + 0.05
        tasks = []
        for n in range(round(rps * duration)):
            scheduled = start_at + n / rps
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, scheduled)))
        await asyncio.gather(*tasks)
    return {"lat": latencies, "refused": refused, "outcomes": outcomes}


def latency(url: str, rps: float, duration: float) -> tuple[float, float, dict[str, int]]:
    p50, p99, outcomes, _ = timed(url, rps, duration)
    return p50, p99, outcomes


def timed(url: str, rps: float, duration: float) -> tuple[float, float, dict[str, int], list[float]]:
    """The load in its own process (uvloop), so it shares no GIL with a server."""
    code = (
        "import asyncio,json,sys; sys.path.insert(0, sys.argv[4]); from bench.serving_path import open_loop; "
        "from bench.serving_model import rows; from monitors.sidecar._run import new_loop; loop = new_loop(); "
        "print(json.dumps(loop.run_until_complete(open_loop(sys.argv[1], rows(), float(sys.argv[2]), float(sys.argv[3])))))"
    )
    out = subprocess.run([sys.executable, "-c", code, url, str(rps), str(duration), str(REPO)], capture_output=True,
                         text=True, cwd=REPO)  # fmt: skip
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    result = json.loads(out.stdout.splitlines()[-1])
    return pct(result["lat"], 50), pct(result["lat"], 99), result["outcomes"], result["refused"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--no-proxy", action="store_true", help="skip the reverse-proxy leg")
    parser.add_argument("--no-stack", action="store_true", help="skip the route-only router + in-process leg")
    parser.add_argument("--no-overload", action="store_true", help="skip the 150%%-of-saturation leg")
    parser.add_argument("--model-dir", type=Path, default=None, help="build the champion here once, reuse it after")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serving-path-") as tmp:
        work = Path(tmp)
        model = build_champion(args.model_dir or work)
        ports = {"mlflow": free_port(), "inprocess": free_port(), "proxy": free_port(), "stack": free_port()}
        py = sys.executable
        processes: list[subprocess.Popen[bytes]] = []
        shipper: subprocess.Popen[bytes] | None = None
        legs = ["mlflow", "inprocess"] + ([] if args.no_proxy else ["proxy"]) + ([] if args.no_stack else ["stack"])
        base = {leg: f"http://127.0.0.1:{port}" for leg, port in ports.items()}
        mlflow_cmd = f"{py} -m mlflow models serve -m {model} --env-manager local --host 127.0.0.1"
        mlflow_cmd += f" --port {ports['mlflow']} --workers 1"
        capture_cmd = f"{py} -m driftloop scoring-server --model-uri {model} --listen 127.0.0.1:{ports['inprocess']}"
        capture_cmd += f" --spool {work / 'spool'} --model-version 1 --segment-age 2"
        ship_cmd = f"{py} -m driftloop ship --spool {work / 'spool'} --lake {work / 'lake'} --model {MODEL}"
        proxy_cmd = f"{py} -m driftloop sidecar --listen 127.0.0.1:{ports['proxy']} --upstream {base['mlflow']}"
        proxy_cmd += f" --lake {work / 'proxy-lake'} --spool {work / 'proxy-spool'} --model {MODEL}"
        proxy_cmd += " --model-version 1 --segment-age 2"
        router_cmd = f"{py} -m driftloop sidecar --listen 127.0.0.1:{ports['stack']} --upstream {base['inprocess']}"
        router_cmd += f" --spool {work / 'router-spool'} --model {MODEL} --model-version 1 --no-capture"
        try:  # started inside the try: whatever came up is stopped even when a later start fails
            processes.append(start(mlflow_cmd.split(), f"{base['mlflow']}/ping", work / "mlflow.log"))
            processes.append(start(capture_cmd.split(), f"{base['inprocess']}/ping", work / "inprocess.log"))
            shipper = subprocess.Popen(ship_cmd.split(), cwd=REPO)
            proxy = router = None
            if "proxy" in legs:
                proxy = start(proxy_cmd.split(), f"{base['proxy']}/healthz", work / "proxy.log")
                processes.append(proxy)
            if "stack" in legs:
                router = start(router_cmd.split(), f"{base['stack']}/healthz", work / "router.log")
                processes.append(router)
            urls = {leg: f"{base[leg]}/invocations" for leg in legs}
            for url in urls.values():
                latency(url, 20, 2)  # warm-up, discarded
            saturation = statistics.median(ceiling(urls["mlflow"], args.clients, args.duration) for _ in range(2))
            table = []
            for share in (0.5, 0.8):
                for repeat in range(args.repeats):
                    for leg in legs:
                        p50, p99, outcomes = latency(urls[leg], share * saturation, args.duration)
                        table.append((share, repeat, leg, p50, p99, outcomes))
            pids = {"mlflow": [processes[0].pid], "inprocess": [processes[1].pid, shipper.pid]}
            pids["proxy"] = [processes[0].pid] + ([proxy.pid] if proxy is not None else [])
            pids["stack"] = pids["inprocess"] + ([router.pid] if router is not None else [])
            ceilings: dict[str, list[float]] = {leg: [] for leg in legs}
            cpu: dict[str, list[float]] = {leg: [] for leg in legs}
            for _ in range(args.repeats):
                for leg in legs:
                    before = sum(map(cpu_tree, pids[leg]))
                    rate = ceiling(urls[leg], args.clients, args.duration)
                    ceilings[leg].append(rate)
                    cpu[leg].append((sum(map(cpu_tree, pids[leg])) - before) * 1000 / max(1.0, rate * args.duration))
            overload = []  # beyond the ceiling: how each leg sheds (fast errors, or answers piling up late)
            for share in () if args.no_overload else (1.5,):
                for leg in legs:
                    p50, p99, outcomes, refused = timed(urls[leg], share * saturation, args.duration)
                    overload.append((leg, p50, p99, outcomes, pct(refused, 99) if refused else float("nan")))
                    time.sleep(2)  # let the queue drain before the next leg
            time.sleep(4)  # segments seal after 2 s; the shipper moves them
            shipped = pd_rows(work / "lake")
            lake_rows = f"{len(shipped)} rows, {len(set(shipped))} distinct request ids"
        finally:
            for process in processes:
                stop(process)
            if shipper is not None:  # after the scoring server: it drains what the server sealed on its way out
                shipper.terminate()
                shipper.wait(timeout=60)
    report(args, saturation, table, ceilings, cpu, legs, lake_rows)
    if overload:
        print(
            f"\n## beyond the ceiling: open loop at 150% of MLflow's saturation for {args.duration:g} s "
            "(client timeout 10 s; all timed from the scheduled send)"
        )
        print(f"{'leg':10} {'200 p50':>9} {'200 p99':>9} {'refused p99':>12}  outcomes")
        for leg, p50, p99, outcomes, refused_p99 in overload:
            print(f"{leg:10} {p50:9.1f} {p99:9.1f} {refused_p99:12.1f}  {outcomes}")


def pd_rows(lake: Path) -> list[str]:
    from monitors.lake import read_window

    return list(read_window(str(lake), MODEL).frame["_request_id"])


def report(args, saturation, table, ceilings, cpu, legs, lake_rows: str) -> None:  # type: ignore[no-untyped-def]
    print(f"\n## serving path, one-row requests (load average now {os.getloadavg()[0]:.2f})")
    print(f"MLflow alone saturates at {saturation:.1f} req/s ({args.clients} closed-loop clients)")
    print(f"{'load':>5} {'run':>3} {'leg':10} {'p50 ms':>8} {'p99 ms':>8}  outcomes")
    for share, repeat, leg, p50, p99, outcomes in table:
        print(f"{share:5.0%} {repeat:>3} {leg:10} {p50:8.2f} {p99:8.2f}  {outcomes}")
    for share in (0.5, 0.8):
        base = [r for r in table if r[0] == share and r[2] == "mlflow"]
        for leg in legs:
            rows_ = [r for r in table if r[0] == share and r[2] == leg]
            line = f"{share:.0%} of saturation, {leg:10} median p50 {statistics.median(r[3] for r in rows_):7.2f}"
            line += f"  p99 {statistics.median(r[4] for r in rows_):7.2f}"
            if leg != "mlflow":
                added = statistics.median(r[4] - b[4] for r, b in zip(rows_, base, strict=True))
                line += f"  added p99 {added:+.2f} ms (goal <= 1 ms)"
            print(line)
    top = statistics.median(ceilings["mlflow"])
    for leg in legs:
        mine = statistics.median(ceilings[leg])
        print(
            f"ceiling {leg:10} {mine:7.1f} req/s  ({mine / top:.0%} of MLflow alone; goal >= 90%)"
            f"  CPU {statistics.median(cpu[leg]):.2f} ms/req (all its processes)"
        )
    print(f"in-process capture shipped to the lake: {lake_rows}")


if __name__ == "__main__":
    main()
