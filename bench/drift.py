"""Drift speed: driftloop (precomputed reference profile) vs Evidently's DataDriftPreset, same data, same run.

Cases (issue 5): 1M rows x 10 numeric columns, and 100k rows x 50 numeric columns, reference and current of
the same size (half of the columns shifted); plus a monitor-like case, a 1M-row reference against a 100k-row
window (equal sizes take an exact shortcut in the Wasserstein distance; this case does not). Timed separately:

* ``driftloop evaluate``: ``compute_drift(profile, current)`` — the per-evaluation work the monitor does,
  given the reference profile built once per model version (the point of the design);
* ``driftloop profile``: ``build_profile(reference)`` — the one-off work, done at ``register`` time;
* ``evidently``: ``Report([DataDriftPreset()]).run(current, reference)`` with the same column types.

Every score is checked against Evidently's (equal within 1e-9), and the verdicts must match.

Whole process (issue 10), as a user runs it: the 1M x 10 files written as parquet, then, side by side in the same
run, ``driftloop drift --reference R.parquet --current C.parquet --json`` (a new process each time: start-up, reading,
the reference profiled, drift) and a Python process that reads the same files and runs Evidently's
``Report([DataDriftPreset()])`` on them; scores compared. Goal: >= 50x.

Usage: ``python bench/drift.py [--runs 5] [--evidently-runs 1] [--quick] [--skip-evidently] [--whole-process-only]
[--before REV]`` (``--before``: the whole-process CLI also run from ``git archive REV``, alternated with this tree).
The machine is shared: read medians and ratios, not single numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitors.drift import build_profile, compute_drift
from monitors.drift._evidently import evidently_drift


def make_case(rows: int, columns: int, seed: int, current_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({f"f{i}": rng.normal(0, 1 + i % 3, rows) for i in range(columns)})
    current = pd.DataFrame({f"f{i}": rng.normal(0.2 * (i % 2), 1 + i % 3, current_rows) for i in range(columns)})
    return reference, current


def timed(function: Callable[[], Any], runs: int) -> tuple[float, Any]:
    durations, value = [], None
    for _ in range(runs):
        start = time.perf_counter()
        value = function()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations), value


def check_agreement(ours: Any, theirs: dict[str, Any]) -> str:
    worst = 0.0
    for name, expected in theirs["columns"].items():
        got = ours.columns[name]
        if got.method != expected["method"] or got.drifted != expected["drifted"]:
            return f"MISMATCH on {name}: {got} vs {expected}"
        worst = max(worst, abs(got.score - expected["score"]) / max(1.0, abs(expected["score"])))
    if ours.dataset_drift != theirs["dataset_drift"] or ours.drifted_share != theirs["drifted_share"]:
        return "MISMATCH on the dataset verdict"
    return f"agree (max score difference {worst:.1e})" if worst <= 1e-9 else f"MISMATCH (difference {worst:.1e})"


_EVIDENTLY_PROCESS = """
import json, sys
import pandas as pd
from monitors.drift._evidently import evidently_drift
reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
json.dump(evidently_drift(reference, current), open(sys.argv[3], "w"))
"""


def whole_process(args: argparse.Namespace, rows: int) -> None:
    """``driftloop drift`` on parquet files, a new process per run, against Evidently's whole process."""
    reference, current = make_case(rows, 10, rows + 10, rows)
    root = Path(__file__).resolve().parents[1]
    driftloop = [str(Path(sys.executable).with_name("driftloop"))]
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        files = [Path(tmp) / "R.parquet", Path(tmp) / "C.parquet"]
        reference.to_parquet(files[0])
        current.to_parquet(files[1])
        command = [*driftloop, "drift", "--reference", str(files[0]), "--current", str(files[1]), "--json"]

        def ours() -> dict[str, Any]:
            done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=root)
            return dict(json.loads(done.stdout))

        ours_s, result = timed(ours, args.runs)
        if args.before:
            before_vs_after(args, root, files)
        theirs_s, theirs = float("nan"), None
        if not args.skip_evidently:
            out = Path(tmp) / "evidently.json"
            script = [sys.executable, "-c", _EVIDENTLY_PROCESS, str(files[0]), str(files[1]), str(out)]
            env = {**os.environ, "PYTHONPATH": str(root)}
            theirs_s, _ = timed(lambda: subprocess.run(script, check=True, cwd=root, env=env), args.evidently_runs)
            theirs = json.loads(out.read_text())
    check = "not checked"
    if theirs is not None:
        worst, same = 0.0, result["dataset_drift"] == theirs["dataset_drift"]
        for name, expected in theirs["columns"].items():
            got = result["columns"][name]
            same = same and got["method"] == expected["method"] and got["drifted"] == expected["drifted"]
            worst = max(worst, abs(got["score"] - expected["score"]) / max(1.0, abs(expected["score"])))
        check = f"agree (max score difference {worst:.1e})" if same and worst <= 1e-9 else "MISMATCH"
    ratio = theirs_s / ours_s if ours_s else float("nan")
    label = f"{rows // 1000}k x 10" if rows < 1_000_000 else f"{rows // 1_000_000}M x 10"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{label:<11} {'driftloop drift CLI':<20} {ours_s:>9.3f} {args.runs:>5} {ratio:>12.0f}x {1.5:>5}s  "
          f"{'met' if ours_s <= 1.5 and ratio >= 50 else 'MISSED'} (whole process)")  # fmt: skip
    print(f"{label:<11} {'evidently process':<20} {theirs_s:>9.3f} {args.evidently_runs:>5} {'1x':>13} {'':>6}  "
          f"{check}; load average {load}")  # fmt: skip


def before_vs_after(args: argparse.Namespace, root: Path, files: list[Path]) -> None:
    """The same CLI run from ``git archive REV`` and from this tree, alternated, ``python -m driftloop`` for both
    (PYTHONPATH wins over the editable install): what a change to the CLI bought, same files, same run."""
    with tempfile.TemporaryDirectory(prefix="bench-drift-before-") as tmp:
        archive = subprocess.run(["git", "archive", args.before, "driftloop", "monitors", "workflows", "features"],
                                 cwd=root, capture_output=True, check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        trees = {f"before ({args.before})": Path(tmp), "after (this tree)": root}
        durations: dict[str, list[float]] = {leg: [] for leg in trees}
        outputs: dict[str, str] = {}
        for _ in range(args.runs):
            for leg, tree in trees.items():
                command = [
                    sys.executable,
                    "-m",
                    "driftloop",
                    "drift",
                    "-r",
                    str(files[0]),
                    "-c",
                    str(files[1]),
                    "--json",
                ]
                started = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=tree,
                                      env={**os.environ, "PYTHONPATH": str(tree)})  # fmt: skip
                durations[leg].append(time.perf_counter() - started)
                outputs[leg] = done.stdout
    same = len(set(outputs.values())) == 1
    for leg, values in durations.items():
        spread = " ".join(f"{value:.3f}" for value in values)
        print(f"{'':<11} {leg:<20} {statistics.median(values):>9.3f} {args.runs:>5}  runs: {spread}")
    print(f"{'':<11} {'':<20} JSON output identical: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of driftloop per case (median reported)")
    parser.add_argument("--evidently-runs", type=int, default=1, help="timed runs of Evidently (it is slow)")
    parser.add_argument("--quick", action="store_true", help="10x smaller cases, for a smoke test")
    parser.add_argument("--skip-evidently", action="store_true", help="time driftloop only (no agreement check)")
    parser.add_argument("--whole-process-only", action="store_true", help="only the CLI-vs-Evidently process case")
    parser.add_argument(
        "--before", metavar="REV", help="also run the CLI from git revision REV, alternated with this tree"
    )
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    # (label, reference rows, columns, current rows, goal in seconds for the per-evaluation work)
    cases = [
        ("1M x 10", 1_000_000 // scale, 10, 1_000_000 // scale, 1.0),
        ("100k x 50", 100_000 // scale, 50, 100_000 // scale, 0.5),
        (
            "1M/100k x10",
            1_000_000 // scale,
            10,
            100_000 // scale,
            1.0,
        ),  # a monitor window: fewer rows than the reference
    ]
    header = f"{'case':<11} {'what':<20} {'median s':>9} {'runs':>5} {'vs evidently':>13} {'goal':>6}  check"
    print(header)
    print("-" * len(header))
    whole_process(args, 1_000_000 // scale)
    if args.whole_process_only:
        return
    for label, rows, columns, current_rows, goal in cases:
        reference, current = make_case(rows, columns, rows + columns, current_rows)
        profile_s, profile = timed(lambda reference=reference: build_profile(reference), max(1, args.runs // 2))
        evaluate_s, result = timed(lambda profile=profile, current=current: compute_drift(profile, current), args.runs)
        check, evidently_s = "not checked", float("nan")
        if not args.skip_evidently:
            kinds = {name: column.kind for name, column in profile.columns.items()}
            evidently_s, theirs = timed(
                lambda reference=reference, current=current, kinds=kinds: evidently_drift(
                    reference, current, None, kinds
                ),
                args.evidently_runs,
            )
            check = check_agreement(result, theirs)
        ratio = evidently_s / evaluate_s if evaluate_s else float("nan")
        met = "met" if evaluate_s <= goal else "MISSED"
        print(
            f"{label:<11} {'driftloop evaluate':<20} {evaluate_s:>9.3f} {args.runs:>5} {ratio:>12.0f}x {goal:>5}s  {met}"
        )
        print(f"{label:<11} {'driftloop profile':<20} {profile_s:>9.3f} {max(1, args.runs // 2):>5} {'(one-off)':>13}")
        print(f"{label:<11} {'evidently':<20} {evidently_s:>9.3f} {args.evidently_runs:>5} {'1x':>13} {'':>6}  {check}")


if __name__ == "__main__":
    main()
