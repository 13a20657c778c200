"""Engine at scale: an N-node ``withSequence`` fan-out of no-op pods through the real API of ``engine serve``.

For each size (default 1,000 / 5,000 / 10,000) a fresh ``driftloop engine serve`` (own home, free port) runs
one fan-out to the end, then three more that are cut short by ``terminate``, ``stop`` and ``DELETE``:

* **wall s**: submit -> phase Succeeded (every node finished), seen through the API;
* **start / end ms/node**: wall time per finished node between 5 % and 25 % of the nodes finished, and
  between 75 % and 95 % (flat overhead: the two are close; engine warm-up and the last stragglers excluded);
* **peak RSS MB**: the engine process' high-water mark (``VmHWM`` in /proc, children excluded);
* **terminate / stop / delete s**: from the request until the API shows it done (phase Failed, or 404 for
  DELETE) *and* no pod process of the engine is left; a deleted run must still be gone after an engine restart;
* **shrinks**: how often a full GET, polled every 2 s during the run (progress every 0.5 s), showed fewer nodes than the poll
  before (must be 0).

The no-op node is the cheapest pod the engine runs: ``image: busybox, command: [true]`` (the host's ``true``
in a node sandbox: mount+pid namespace, overlay root, private /tmp, via the compiled launcher).

Usage: .venv/bin/python bench/engine_scale.py [--sizes 1000 5000 10000] [--parallelism N] [--timeout 600]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

NAMESPACE = "bench"
DONE = {"Succeeded", "Failed", "Error"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fan_out(size: int, parallelism: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "entrypoint": "main",
        "templates": [
            {"name": "main", "steps": [[{"name": "noop", "template": "noop", "withSequence": {"count": str(size)}}]]},
            {"name": "noop", "container": {"image": "busybox", "command": ["true"]}},
        ],
    }
    if parallelism:
        spec["parallelism"] = parallelism
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "scale-"},
        "spec": spec,
    }


class Engine:
    """A real ``driftloop engine serve`` on a free port with its own home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = "bench-token"
        token_file = home / "bench.token"
        home.mkdir(parents=True, exist_ok=True)
        token_file.write_text(self.token)
        self.env = {
            **os.environ,
            "DRIFTLOOP_HOME": str(home),
            "DRIFTLOOP_ARGO_SERVER": self.url,
            "DRIFTLOOP_ARGO_TOKEN": self.token,
            "DRIFTLOOP_NAMESPACE": NAMESPACE,
        }
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.home / "serve.log", "ab")  # noqa: SIM115 - lives as long as the engine
        argv = [sys.executable, "-m", "driftloop", "engine", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"engine exited:\n{(self.home / 'serve.log').read_text()[-3000:]}")
            with contextlib.suppress(requests.ConnectionError):
                self.session.get(self.url + "/api/v1/version", timeout=2)
                return
            time.sleep(0.1)
        raise SystemExit("engine did not answer within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def peak_rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def pods_alive(self) -> int:
        """Pod processes of the engine: its descendants, from /proc (the sandbox cleaner's ``rm`` is no pod)."""
        assert self.process is not None
        parents: dict[int, tuple[int, str]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                text = stat.read_text()
                name = text[text.index("(") + 1 : text.rindex(")")]
                parents[int(stat.parent.name)] = (int(text.rsplit(")", 1)[1].split()[1]), name)
        family = {self.process.pid}
        grew = True
        while grew:
            grew = False
            for pid, (parent, _) in parents.items():
                if parent in family and pid not in family:
                    family.add(pid)
                    grew = True
        return sum(1 for pid in family - {self.process.pid} if parents.get(pid, (0, ""))[1] != "rm")

    def api(self, suffix: str = "") -> str:
        return f"{self.url}/api/v1/workflows/{NAMESPACE}{suffix}"

    def submit(self, workflow: dict[str, Any]) -> str:
        answer = self.session.post(self.api(), json={"workflow": workflow}, timeout=120)
        answer.raise_for_status()
        return str(answer.json()["metadata"]["name"])

    def status(self, name: str, fields: str | None = "status.phase,status.progress") -> dict[str, Any] | None:
        answer = self.session.get(self.api(f"/{name}"), params={"fields": fields} if fields else None, timeout=120)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return dict(answer.json().get("status") or {})


def _done_count(status: dict[str, Any]) -> int:
    progress = str(status.get("progress") or "0/0")
    return int(progress.split("/")[0] or 0)


@dataclass
class Result:
    size: int
    wall: float = float("nan")
    start_ms: float = float("nan")
    end_ms: float = float("nan")
    rss_mb: float = float("nan")
    shrinks: int = 0
    control: dict[str, float] = field(default_factory=dict)
    resumed_after_delete: bool | None = None
    phase: str = ""


def _seconds_per_node(samples: list[tuple[float, int]], size: int, low: float, high: float) -> float:
    """ms per node between the moments ``low`` and ``high`` fractions of the nodes had finished."""

    def moment(fraction: float) -> float:
        target = fraction * size
        previous = samples[0]
        for sample in samples:
            if sample[1] >= target:
                if sample[1] == previous[1]:
                    return sample[0]
                share = (target - previous[1]) / (sample[1] - previous[1])
                return previous[0] + share * (sample[0] - previous[0])
            previous = sample
        return samples[-1][0]

    return 1000 * (moment(high) - moment(low)) / ((high - low) * size)


def full_run(engine: Engine, size: int, parallelism: int | None, timeout: float, result: Result) -> None:
    started = time.monotonic()
    name = engine.submit(fan_out(size, parallelism))
    samples: list[tuple[float, int]] = [(0.0, 0)]
    last_full = 0.0
    last_nodes = 0
    while True:
        now = time.monotonic() - started
        if now > timeout:
            result.phase = f"timeout after {timeout:.0f} s"
            break
        if now - last_full >= 2.0:
            last_full = now
            nodes = len((engine.status(name, fields=None) or {}).get("nodes") or {})
            result.shrinks += nodes < last_nodes
            last_nodes = nodes
        status = engine.status(name) or {}
        samples.append((time.monotonic() - started, _done_count(status)))
        if status.get("phase") in DONE:
            result.phase = str(status["phase"])
            result.wall = time.monotonic() - started
            break
        time.sleep(0.5)
    result.start_ms = _seconds_per_node(samples, size, 0.05, 0.25)
    result.end_ms = _seconds_per_node(samples, size, 0.75, 0.95)
    result.rss_mb = engine.peak_rss_mb()


def control_latency(engine: Engine, size: int, parallelism: int | None, verb: str) -> float:
    """Seconds from the request until the run is over (API) and none of its pods is left."""
    name = engine.submit(fan_out(size, parallelism))
    deadline = time.monotonic() + 120
    while _done_count(engine.status(name) or {}) < min(50, size // 10) and time.monotonic() < deadline:
        time.sleep(0.1)
    asked = time.monotonic()
    if verb == "delete":
        engine.session.delete(engine.api(f"/{name}"), timeout=120).raise_for_status()
    else:
        engine.session.put(engine.api(f"/{name}/{verb}"), json={}, timeout=120).raise_for_status()
    while time.monotonic() - asked < 120:
        status = engine.status(name)
        over = status is None if verb == "delete" else (status or {}).get("phase") in DONE
        if over and engine.pods_alive() == 0:
            return time.monotonic() - asked
        time.sleep(0.02)
    return float("inf")


def bench_size(size: int, parallelism: int | None, timeout: float) -> Result:
    result = Result(size)
    with tempfile.TemporaryDirectory(prefix=f"driftloop-scale-{size}-") as scratch:
        engine = Engine(Path(scratch) / "home")
        engine.start()
        try:
            full_run(engine, size, parallelism, timeout, result)
            if result.phase == "Succeeded":
                for verb in ("terminate", "stop", "delete"):
                    result.control[verb] = control_latency(engine, size, parallelism, verb)
                deleted = [w["metadata"]["name"] for w in _list(engine)]
                engine.stop()
                engine.start()
                time.sleep(2)
                result.resumed_after_delete = len(_list(engine)) != len(deleted) or engine.pods_alive() > 0
        finally:
            engine.stop()
    return result


def _list(engine: Engine) -> list[dict[str, Any]]:
    answer = engine.session.get(engine.api(), params={"fields": "items.metadata.name"}, timeout=120)
    answer.raise_for_status()
    return list(answer.json().get("items") or [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--parallelism", type=int, default=None, help="spec.parallelism of the fan-out")
    parser.add_argument("--timeout", type=float, default=600, help="give up on one run after this many seconds")
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    rows = []
    for size in args.sizes:
        result = bench_size(size, args.parallelism, args.timeout)
        rows.append(result)
        print(f"  {size} nodes: {result.phase} in {result.wall:.1f} s (load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("| nodes | phase | wall s | start ms/node | end ms/node | peak RSS MB | GET shrinks "
          "| terminate s | stop s | delete s | gone after restart |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        control = " | ".join(f"{r.control[v]:.2f}" if v in r.control else "-" for v in ("terminate", "stop", "delete"))
        gone = "-" if r.resumed_after_delete is None else ("no" if r.resumed_after_delete else "yes")
        print(f"| {r.size} | {r.phase} | {r.wall:.1f} | {r.start_ms:.1f} | {r.end_ms:.1f} | {r.rss_mb:.0f} "
              f"| {r.shrinks} | {control} | {gone} |")  # fmt: skip


if __name__ == "__main__":
    main()
