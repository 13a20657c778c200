"""Benchmark: Feast get_historical_features for N labelled entity rows, DuckDB offline store vs the default file store.

Each store runs in its own child process (so peak memory is per store), on the same generated data, in the same
run. Prints a table of median / min seconds, peak RSS and the ratio to DuckDB. Goal: DuckDB <= 2 s for 100k rows.

    .venv/bin/python bench/training_set.py                       # 100k rows, 3 DuckDB runs, 1 file-store run
    .venv/bin/python bench/training_set.py --rows 20000 --runs 5 --file-runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _child(store: str, rows: int, runs: int) -> None:
    """Time `runs` joins with one offline store; print JSON (times and this process's peak RSS)."""
    import pandas as pd

    from features.generator import resolve_dataset
    from features.store import entity_rows, historical_features, open_repo

    source = resolve_dataset("baseline", rows=rows)
    repo = open_repo(source, "credit-risk", offline_store=store)
    entities = entity_rows(pd.read_parquet(source))
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        frame = historical_features(repo, entities)
        times.append(time.perf_counter() - began)
        assert len(frame) == rows, (len(frame), rows)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"store": store, "times": times, "peak_mb": peak_mb}))


def _measure(store: str, rows: int, runs: int, home: str) -> dict[str, object]:
    env = {**os.environ, "DRIFTLOOP_HOME": home, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, __file__, "--child", store, "--rows", str(rows), "--runs", str(runs)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{store} store failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(lines[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="timed joins with DuckDB")
    parser.add_argument("--file-runs", type=int, default=1, help="timed joins with the file store (slow, 0 = skip)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.rows, args.runs)
        return
    with tempfile.TemporaryDirectory(prefix="bench-training-set-") as home:
        results = [_measure("duckdb", args.rows, args.runs, home)]
        if args.file_runs:
            results.append(_measure("file", args.rows, args.file_runs, home))
    baseline = statistics.median(results[0]["times"])  # type: ignore[arg-type]
    print(f"get_historical_features, {args.rows:,} entity rows, 11 features (3 views); 2 shared, busy cores: noisy")
    print(f"{'offline store':14} {'runs':>4} {'median s':>9} {'min s':>7} {'peak RSS MB':>12} {'x DuckDB':>9}")
    for result in results:
        times = result["times"]
        median = statistics.median(times)  # type: ignore[arg-type]
        print(
            f"{result['store']:14} {len(times):>4} {median:>9.2f} {min(times):>7.2f} "  # type: ignore[arg-type]
            f"{result['peak_mb']:>12.0f} {median / baseline:>9.1f}"
        )


if __name__ == "__main__":
    main()
