"""What one hop costs per request: the route-only router (``driftloop sidecar --no-capture``, the stack's canary
split) against the capturing aiohttp proxy (``driftloop sidecar``) and against no hop at all.

One keep-alive client sends one-row requests one after another (no concurrency: the cost of a request, not of
queueing) to the stub model server (``python -m monitors.sidecar.testing``), directly and through each hop; for each
leg it prints the client's mean and p99 round trip and the hop process's CPU per request (from /proc: user +
system). The load under concurrency, against MLflow's own server, is ``bench/serving_path.py``'s ``stack`` leg.

    .venv/bin/python bench/route_only.py                 # 3 repeats of 5,000 requests per leg, ~1 min
    .venv/bin/python bench/route_only.py --requests 1000 --repeats 1
    .venv/bin/python bench/route_only.py --profile      # the router in this process under cProfile: where its CPU goes
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.serving_model import cpu_tree  # noqa: E402
from bench.serving_path import start  # noqa: E402
from bench.sidecar import free_port, pct, stop  # noqa: E402

_BODY = b'{"inputs": [{"age": 41, "income": 52000.0}]}'


async def sequential(url: str, requests: int) -> list[float]:
    """Round trips in ms of ``requests`` POSTs, one after another on one keep-alive connection."""
    latencies = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for _ in range(requests):
            began = time.perf_counter()
            async with session.post(url, data=_BODY, headers={"Content-Type": "application/json"}) as answer:
                await answer.read()
                assert answer.status == 200, answer.status
            latencies.append((time.perf_counter() - began) * 1000)
    return latencies


def profile(requests: int) -> None:
    """The router served by this process's loop, under cProfile, while a client process sends ``requests`` one after
    another: its CPU per request and the functions that spend it (``transport.write`` is inside ``send``/``begin``)."""
    from monitors.sidecar import SidecarConfig
    from monitors.sidecar._route_only import RouteOnly
    from monitors.sidecar._run import new_loop

    port = free_port()
    model = subprocess.Popen([sys.executable, "-m", "monitors.sidecar.testing", str(port)], cwd=REPO)
    with tempfile.TemporaryDirectory(prefix="bench-route-only-") as tmp:
        try:
            start_url = f"http://127.0.0.1:{port}"
            loop = new_loop()
            config = SidecarConfig(upstream=start_url, lake_uri="unused", spool_dir=Path(tmp) / "spool", model="m",
                                   model_version="1", capture=False)  # fmt: skip
            router = RouteOnly(config)
            loop.run_until_complete(_wait_for(f"{start_url}/ping"))
            loop.run_until_complete(router.start("127.0.0.1", 0))
            code = ("import asyncio, sys; sys.path.insert(0, sys.argv[3]); from bench.route_only import sequential; "
                    "asyncio.run(sequential(sys.argv[1], int(sys.argv[2])))")  # fmt: skip
            url = f"http://127.0.0.1:{router.port}/invocations"
            client = subprocess.Popen([sys.executable, "-c", code, url, str(requests), str(REPO)], cwd=REPO)
            profiler = cProfile.Profile()
            began = time.process_time()
            profiler.enable()
            loop.run_until_complete(_until_exits(client))
            profiler.disable()
            cpu_ms = (time.process_time() - began) * 1000 / requests
            loop.run_until_complete(router.close())
            loop.close()
        finally:
            model.terminate()
            model.wait(timeout=30)
    print(f"\n## the route-only router under cProfile, {requests} sequential requests: {cpu_ms:.3f} ms CPU per request "
          "(cProfile's own overhead included)")  # fmt: skip
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


async def _wait_for(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url) as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} never answered")


async def _until_exits(process: subprocess.Popen[bytes]) -> None:
    while process.poll() is None:
        await asyncio.sleep(0.05)
    if process.returncode:
        raise SystemExit(f"the client exited with {process.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile the router instead (--requests of them)")
    args = parser.parse_args()
    if args.profile:
        profile(args.requests)
        return
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-route-only-") as tmp:
        work = Path(tmp)
        ports = {"model": free_port(), "router": free_port(), "proxy": free_port()}
        model_url = f"http://127.0.0.1:{ports['model']}"
        commands = {
            "model": [py, "-m", "monitors.sidecar.testing", str(ports["model"])],
            "router": [py, "-m", "driftloop", "sidecar", "--listen", f"127.0.0.1:{ports['router']}", "--upstream",
                       model_url, "--spool", str(work / "router-spool"), "--model", "m", "--model-version", "1",
                       "--no-capture"],
            "proxy": [py, "-m", "driftloop", "sidecar", "--listen", f"127.0.0.1:{ports['proxy']}", "--upstream",
                      model_url, "--spool", str(work / "proxy-spool"), "--lake", str(work / "lake"), "--model", "m",
                      "--model-version", "1"],
        }  # fmt: skip
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            processes["model"] = start(commands["model"], f"{model_url}/ping", work / "model.log")
            for leg in ("router", "proxy"):
                processes[leg] = start(commands[leg], f"http://127.0.0.1:{ports[leg]}/healthz", work / f"{leg}.log")
            urls = {"direct": model_url, "router": f"http://127.0.0.1:{ports['router']}",
                    "proxy": f"http://127.0.0.1:{ports['proxy']}"}  # fmt: skip
            rows: dict[str, list[tuple[float, float, float]]] = {leg: [] for leg in urls}
            loop = asyncio.new_event_loop()
            for url in urls.values():
                loop.run_until_complete(sequential(f"{url}/invocations", 200))  # warm-up, discarded
            for _ in range(args.repeats):
                for leg, url in urls.items():
                    hop = processes.get(leg)
                    before = cpu_tree(hop.pid) if hop is not None else 0.0
                    latencies = loop.run_until_complete(sequential(f"{url}/invocations", args.requests))
                    cpu_ms = (cpu_tree(hop.pid) - before) * 1000 / args.requests if hop is not None else 0.0
                    rows[leg].append((statistics.mean(latencies), pct(latencies, 99), cpu_ms))
            loop.close()
        finally:
            for process in reversed(list(processes.values())):
                stop(process)
    load = os.getloadavg()[0]
    print(f"\n## one hop, {args.requests} sequential one-row requests x {args.repeats} (load average now {load:.2f})")
    print("| leg | mean round trip ms | p99 ms | hop CPU ms / request | added mean vs direct |")
    print("|---|---|---|---|---|")
    direct = statistics.median(r[0] for r in rows["direct"])
    names = {"direct": "direct to the model server", "router": "route-only router (--no-capture)",
             "proxy": "capturing proxy (aiohttp)"}  # fmt: skip
    for leg, results in rows.items():
        mean, p99, cpu = (statistics.median(r[i] for r in results) for i in range(3))
        added = f"+{mean - direct:.3f} ms" if leg != "direct" else "–"
        cpu_text = f"{cpu:.3f}" if leg != "direct" else "–"
        print(f"| {names[leg]} | {mean:.3f} | {p99:.3f} | {cpu_text} | {added} |")


if __name__ == "__main__":
    main()
