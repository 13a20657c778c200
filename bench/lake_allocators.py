"""Every row of a day of the lake, read again and again in fresh processes, under each of arrow's memory pools.

A read of every row of 24 h at 100 req/s builds a 1.2 GB frame; on a VM that hands freed memory back to its host,
what that memory costs depends on whether the process has touched it before. This prints, per pool (mimalloc, arrow's
default here; glibc's ``system``; jemalloc), the time of each of ``--reads`` reads in one fresh process, and the
median of all but the first — ``--rounds`` processes per pool, alternated.

The lake is written once (as ``bench/lake.py`` writes it: 5 s parts for 24 h, then compacted) into ``--work``,
and reused when it is there.

    .venv/bin/python bench/lake_allocators.py --work /tmp/lake-allocators     # ~4 min the first time, ~1 min after
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_READS = """
import json, sys, time
from datetime import UTC, datetime, timedelta
sys.path.insert(0, sys.argv[1])
import pyarrow as pa
from monitors.lake import read_window
since = datetime.now(UTC) - timedelta(hours=30)
times = []
for _ in range(int(sys.argv[4])):
    began = time.perf_counter()
    rows = len(read_window(sys.argv[2], sys.argv[3], since=since).frame)
    times.append(time.perf_counter() - began)
print(json.dumps({"pool": pa.default_memory_pool().backend_name, "rows": rows, "times": times}))
"""


def build(lake: Path, rps: float) -> None:
    from bench.lake import MODEL, payload_pool, write_hour_as_parts
    from monitors.lake_compaction import compact

    now = datetime.now(UTC)
    current = now.replace(minute=0, second=0, microsecond=0)
    pool = payload_pool()
    write_hour_as_parts(lake, current, rps, pool, until=now)
    for back in range(1, 24):
        write_hour_as_parts(lake, current - timedelta(hours=back), rps, pool)
    compact(str(lake), MODEL, now=now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="where the lake is written once and reused")
    parser.add_argument("--rps", type=float, default=100.0)
    parser.add_argument("--reads", type=int, default=6, help="reads per process")
    parser.add_argument("--rounds", type=int, default=2, help="processes per pool, alternated")
    parser.add_argument("--pools", default="mimalloc,system,jemalloc")
    args = parser.parse_args()
    from bench.lake import MODEL

    lake = args.work / "lake"
    if not lake.exists():
        build(lake, args.rps)
    results: dict[str, list[list[float]]] = {}
    rows = 0
    for _ in range(args.rounds):
        for pool in args.pools.split(","):
            env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": pool}
            out = subprocess.run([sys.executable, "-c", _READS, str(REPO), str(lake), MODEL, str(args.reads)],
                                 env=env, capture_output=True, text=True, check=True)  # fmt: skip
            report = json.loads(out.stdout.splitlines()[-1])
            rows = report["rows"]
            results.setdefault(report["pool"], []).append(report["times"])
    print(f"\n## every row of the last 24 h ({rows} rows), {args.reads} reads per fresh process; "
          f"load average now {os.getloadavg()[0]:.2f}")  # fmt: skip
    print("| arrow pool | each process's reads, s | median of all but the first read, per process |")
    print("|---|---|---|")
    for pool, runs in results.items():
        reads = " / ".join(", ".join(f"{t:.2f}" for t in times) for times in runs)
        medians = " / ".join(f"{statistics.median(times[1:]):.3f}" for times in runs)
        print(f"| {pool} | {reads} | {medians} |")


if __name__ == "__main__":
    main()
