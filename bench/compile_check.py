"""How long a no-change `driftloop compile --check` takes, each run a fresh process as in CI or a pre-commit hook:
the source-digest cache hit, side by side with the full build + validate (`--no-cache`, what every check did before),
and one `python -c "import hera.workflows"` for scale. Medians of several runs; the load average is printed.

    .venv/bin/python bench/compile_check.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    driftloop = [sys.executable, "-m", "driftloop", "compile", "--check"]
    cases = {
        "compile --check, nothing changed (cache hit)": driftloop,
        "compile --check --no-cache (build + validate)": [*driftloop, "--no-cache"],
        'python -c "import hera.workflows" (for scale)': [sys.executable, "-c", "import hera.workflows"],
    }
    _seconds(driftloop)  # warm-up; also records the passing check the cached runs hit
    load = os.getloadavg()[0]
    rows = []
    for label, argv in cases.items():
        samples = sorted(_seconds(argv) for _ in range(runs))
        rows.append((label, statistics.median(samples), samples[0], samples[-1]))
    base = rows[1][1]
    print(f"load average (1 min) at start: {load:.2f}; {runs} runs each, fresh processes")
    print("| case | median s | min s | max s | x --no-cache |\n|---|---|---|---|---|")
    for label, median, low, high in rows:
        print(f"| {label} | {median:.2f} | {low:.2f} | {high:.2f} | {median / base:.2f} |")
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
