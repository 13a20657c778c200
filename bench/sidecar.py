"""Sidecar benchmark: latency added by the sidecar, and an overload with the lake down.

1. Latency: p50/p99 at --rps (default 500) straight to the model server vs through the sidecar, each
   leg a separate load process (open-loop, keep-alive), legs alternated --repeats times; medians and the
   added p99 (sidecar minus direct, same repeat). Goal: <= 1 ms p99 added.
2. Overload: the lake unwritable for --overload-s (default 60) at 2x the rate; the sidecar's RSS is sampled
   throughout (goal: stays under --rss-bound-mb) and, after the lake comes back, every answered request id
   must be in the lake exactly once.

The model server is the stub MLflow-protocol server (``monitors.sidecar.testing``), so what is measured is
the proxy, not a model. The machine is shared and has 2 cores: numbers are noisy, read the medians.

    .venv/bin/python bench/sidecar.py                       # full run (~3 min)
    .venv/bin/python bench/sidecar.py --duration 5 --overload-s 20 --repeats 2   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitors.lake import LakeRow, read_window, write_rows  # noqa: E402
from monitors.traffic import scenario_records  # noqa: E402

MODEL = "bench-model"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], health: str, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[:4]} exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(health, timeout=1).status_code < 500:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{health} never came up")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def load(target: str, rps: float, duration: float) -> dict[str, object]:
    """Run the load in a separate process so it does not share the sidecar's or the upstream's GIL."""
    code = (
        "import json,sys; from monitors.traffic import replay, scenario_records; "
        "r = replay(scenario_records('baseline', 2000, 5), sys.argv[1], rps=float(sys.argv[2]), duration_s=float(sys.argv[3])); "
        "open(sys.argv[4], 'w').write(json.dumps({'lat': r.latencies_ms, 'answered': r.answered_ids, "
        "'statuses': dict(r.statuses), 'errors': dict(r.errors), 'rps': r.achieved_rps}))"
    )
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        command = [sys.executable, "-c", code, target, str(rps), str(duration), result.name]
        out = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr[-2000:])
        return dict(json.loads(Path(result.name).read_text()))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def sidecar_command(port: int, upstream: str, work: Path) -> list[str]:
    return [
        sys.executable, "-m", "driftloop", "sidecar", "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
        "--lake", str(work / "lake"), "--spool", str(work / "spool"), "--model", MODEL, "--model-version", "1",
        "--max-spool-mb", "512", "--segment-age", "2",
    ]  # fmt: skip


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the sidecar and its lake-writer process), in MiB."""
    total = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += rss_mb(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (the sidecar's proxy process, not its lake writer)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency_legs(args: argparse.Namespace, upstream: str, sidecar: str, sidecar_pid: int) -> None:
    for url in (upstream, sidecar):  # warm-up, discarded: connections, lazy imports, the writer's first segment
        load(f"{url}/invocations", args.rps, 3)
    rows = []
    cpu_per_request = []
    for repeat in range(args.repeats):
        for leg, url in (("direct", upstream), ("sidecar", sidecar)):
            cpu_before = cpu_seconds(sidecar_pid)
            result = load(f"{url}/invocations", args.rps, args.duration)
            if leg == "sidecar":
                answered = sum(result["statuses"].values())  # type: ignore[attr-defined]
                cpu_per_request.append((cpu_seconds(sidecar_pid) - cpu_before) / max(1, answered) * 1000)
            lat = list(result["lat"])  # type: ignore[call-overload]
            rows.append((repeat, leg, result["rps"], pct(lat, 50), pct(lat, 99), result["statuses"], result["errors"]))
    print(f"\n## latency at {args.rps:g} req/s, {args.duration:g}s per leg (ms)")
    print(f"{'run':>3} {'leg':8} {'achieved':>9} {'p50':>7} {'p99':>7}  statuses / errors")
    for repeat, leg, achieved, p50, p99, statuses, errors in rows:
        print(f"{repeat:>3} {leg:8} {achieved:9.1f} {p50:7.2f} {p99:7.2f}  {statuses} {errors or ''}")
    direct = [r for r in rows if r[1] == "direct"]
    proxied = [r for r in rows if r[1] == "sidecar"]
    med = {
        name: (statistics.median(r[3] for r in group), statistics.median(r[4] for r in group))
        for name, group in (("direct", direct), ("sidecar", proxied))
    }
    added = statistics.median(p[4] - d[4] for d, p in zip(direct, proxied, strict=True))
    added50 = statistics.median(p[3] - d[3] for d, p in zip(direct, proxied, strict=True))
    print(f"median direct  p50 {med['direct'][0]:.2f}  p99 {med['direct'][1]:.2f}")
    print(f"median sidecar p50 {med['sidecar'][0]:.2f}  p99 {med['sidecar'][1]:.2f}")
    print(
        f"added by the sidecar (median of paired runs): p50 {added50:+.2f} ms  p99 {added:+.2f} ms  (goal <= 1 ms p99)"
    )
    print(f"sidecar proxy CPU per request (median): {statistics.median(cpu_per_request):.3f} ms")


def overload(args: argparse.Namespace, upstream: str, work: Path) -> None:
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    shutil.rmtree(work / "spool", ignore_errors=True)
    lake.write_text("the lake is down")  # unwritable even for root: its root is a file
    port = free_port()
    sidecar = start(sidecar_command(port, upstream, work), f"http://127.0.0.1:{port}/healthz", work / "sidecar2.log")
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(rss_mb(sidecar.pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    rss_before = rss_mb(sidecar.pid)
    result = load(f"http://127.0.0.1:{port}/invocations", 2 * args.rps, args.overload_s)
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    spooled = next(line for line in metrics.splitlines() if line.startswith("driftloop_sidecar_spooled_bytes"))
    lake.unlink()  # recovery
    recovered_at = time.monotonic()
    answered = set(result["answered"])  # type: ignore[call-overload]
    seen: set[str] = set()
    while time.monotonic() - recovered_at < 300:
        frame = read_window(str(lake), MODEL).frame
        seen = set(frame["_request_id"])
        if answered <= seen:
            break
        time.sleep(1)
    drain_s = time.monotonic() - recovered_at
    done.set()
    sampler.join()
    stop(sidecar)
    frame = read_window(str(lake), MODEL).frame
    duplicates = int(frame["_request_id"].duplicated().sum())
    print(f"\n## overload: lake down {args.overload_s:g}s at {2 * args.rps:g} req/s")
    print(f"achieved {result['rps']:.1f} req/s, statuses {result['statuses']}, errors {result['errors'] or 'none'}")
    print(f"spool at the end of the outage: {spooled.split()[-1]} bytes")
    print(f"sidecar RSS MB: before {rss_before:.1f}  peak {max(samples):.1f}  bound {args.rss_bound_mb}  ->"
          f" {'OK' if max(samples) <= args.rss_bound_mb else 'OVER'}")  # fmt: skip
    print(f"after recovery ({drain_s:.1f}s to drain): lake rows {len(frame)}, answered {len(answered)},"
          f" answered but missing from the lake {len(answered - seen)}, duplicated {duplicates}")  # fmt: skip


def lake_read(work: Path, files: int = 720, rows_per_file: int = 5, runs: int = 3) -> None:
    """read_window over one hour of small part files (the default 5 s segment age makes 720 per hour)."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    lake = str(work / "read-lake")
    for f in range(files):
        rows = [
            LakeRow(
                f"r{f}-{i}", start + timedelta(seconds=5 * f + i / 2), "1", 200, 1.0, inputs={"age": i, "x": 1.5 * i}
            )
            for i in range(rows_per_file)
        ]
        write_rows(lake, MODEL, rows, part_id=f"seg{f:05d}")
    print(f"\n## read_window over {files} part files x {rows_per_file} rows (one hour), median of {runs}")
    for options in ({"last_rows": 1000}, {}):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            window = read_window(lake, MODEL, **options)  # type: ignore[arg-type]
            times.append(time.perf_counter() - started)
        print(f"{options or 'whole hour'}: {len(window.frame)} rows in {statistics.median(times):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rps", type=float, default=500)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--overload-s", type=float, default=60)
    parser.add_argument("--lake-read-only", action="store_true", help="only the read_window measurement")
    parser.add_argument("--rss-bound-mb", type=float, default=400, help="sidecar + lake writer, resident MiB")
    args = parser.parse_args()
    scenario_records("baseline", 10, 5)  # fail early if the generator is missing
    with tempfile.TemporaryDirectory(prefix="bench-sidecar-") as tmp:
        work = Path(tmp)
        lake_read(work)
        if args.lake_read_only:
            return
        up_port, side_port = free_port(), free_port()
        upstream_url = f"http://127.0.0.1:{up_port}"
        upstream = start(
            [sys.executable, "-m", "monitors.sidecar.testing", str(up_port)], f"{upstream_url}/ping", work / "up.log"
        )
        try:
            sidecar = start(
                sidecar_command(side_port, upstream_url, work),
                f"http://127.0.0.1:{side_port}/healthz",
                work / "sidecar.log",
            )
            try:
                latency_legs(args, upstream_url, f"http://127.0.0.1:{side_port}", sidecar.pid)
            finally:
                stop(sidecar)
            if args.overload_s > 0:
                overload(args, upstream_url, work)
        finally:
            stop(upstream)


if __name__ == "__main__":
    main()
