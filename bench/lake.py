"""The lake as it grows (issue 10): read_window before vs after compaction, and the monitor's evaluation time.

The lake is synthesised as the sidecar writes it at ``--rps`` (default 100 req/s, one row per request): one
``part-<segment-id>.parquet`` per 5 s spool segment (500 rows; 720 files an hour), the stored schema of
``monitors.lake``, 10 numeric features as the JSON ``_inputs``, each file's modification time set to its segment's
seal time. The lake ends now.

1. ``read_window`` over the last 24 h, before and after ``monitors.lake_compaction.compact``: the monitor's read
   (``since`` = 24 h ago, ``last_rows`` = 2000, the stack's window) and, over the newest hour, the whole-window read
   (all 360,000 rows decoded into a DataFrame). Goal: <= 1 s after compaction.
2. ``Monitor.evaluate()`` (window 2000 rows / 60 min, a 10-feature reference profile, drift computed) as the lake
   grows: 1 h, 24 h, 7 days. The hours older than 24 h are written as compaction leaves them (one compacted file per
   hour, same row count), the newest hour as parts (it is still open). Goal: flat.

    .venv/bin/python bench/lake.py                 # ~3-5 min on the shared box, ~3 GB of disk in a temp folder
    .venv/bin/python bench/lake.py --quick         # 10 req/s: a smoke run
    .venv/bin/python bench/lake.py --payload credit-risk --skip-json --days 2   # the credit-risk model's requests
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitors import lake as lake_module
from monitors._lake_partitions import ROW_ORDER, filesystem
from monitors._lake_typed import compacted_write_options, with_typed_columns
from monitors.drift import DriftOptions, build_profile
from monitors.drift._monitor import Monitor, MonitorConfig
from monitors.drift._sources import LocalReference
from monitors.lake import STORED_SCHEMA, read_window
from monitors.lake_compaction import compact

MODEL = "bench"
SEGMENT_S = 5
FEATURES = [f"f{i}" for i in range(10)]
_POOL = 50_000  # distinct JSON payloads, drawn from per row (building 60M json.dumps would dominate the run)


def payload_pool(seed: int = 0, kind: str = "numeric") -> list[str]:
    """Distinct ``_inputs`` texts: 10 normal numbers, or the credit-risk model's requests (the generator's rows:
    text categories, nulls in the nullable columns), as the lake stores them (``json.dumps`` of the record)."""
    if kind == "credit-risk":
        from features.columns import ENTITY_KEY, LABEL, TIMESTAMP
        from features.generator import generate

        frame = generate("baseline", rows=_POOL, seed=seed).drop(columns=[ENTITY_KEY, TIMESTAMP, LABEL])
        return [json.dumps(json.loads(line)) for line in frame.to_json(orient="records", lines=True).splitlines()]
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 1, (_POOL, len(FEATURES))).round(6)
    return [json.dumps(dict(zip(FEATURES, row.tolist(), strict=True))) for row in values]


def segment_table(start: datetime, seconds: float, rows: int, pool: list[str], tag: str) -> pa.Table:
    rng = np.random.default_rng(zlib.crc32(tag.encode()))
    offsets = np.sort(rng.uniform(0, seconds, rows))
    stamps = pa.array(np.datetime64(start.replace(tzinfo=None), "us") + (offsets * 1e6).astype("timedelta64[us]"))
    pick = rng.integers(0, len(pool), rows)
    columns = {
        "_request_id": pa.array([f"{tag}-{i}" for i in range(rows)]),
        "_ts": stamps.cast(pa.timestamp("us", tz="UTC")),
        "_model_version": pa.array(["3"] * rows),
        "_status": pa.array(np.full(rows, 200, dtype=np.int32)),
        "_latency_ms": pa.array(rng.uniform(1, 5, rows)),
        "_row": pa.array(np.zeros(rows, dtype=np.int32)),
        "_inputs": pa.array([pool[i] for i in pick]),
        "_prediction": pa.array([f"{p:.4f}" for p in rng.uniform(0, 1, rows)]),
        "_error": pa.nulls(rows, pa.string()),
        "_raw": pa.nulls(rows, pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=STORED_SCHEMA)


def hour_folder(lake: Path, hour: datetime) -> Path:
    return lake / f"model={MODEL}" / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"


def write_hour_as_parts(
    lake: Path,
    hour: datetime,
    rps: float,
    pool: list[str],
    until: datetime | None = None,
    after: datetime | None = None,
) -> int:
    """One hour as the sidecar leaves it: a part per 5 s segment, mtime = the segment's seal time; with ``until``
    and ``after``, only the segments sealed by ``until`` that started at or after ``after``."""
    folder = hour_folder(lake, hour)
    folder.mkdir(parents=True, exist_ok=True)
    files = 0
    for k in range(3600 // SEGMENT_S):
        start = hour + timedelta(seconds=k * SEGMENT_S)
        if until is not None and start + timedelta(seconds=SEGMENT_S) > until:
            break
        if after is not None and start < after:
            continue
        tag = f"{start:%Y%m%dT%H%M%S}"
        path = folder / f"part-{int(start.timestamp() * 1e9):020d}-1-{k:06d}.parquet"
        pq.write_table(segment_table(start, SEGMENT_S, int(rps * SEGMENT_S), pool, tag), path, compression="zstd")
        sealed = (start + timedelta(seconds=SEGMENT_S + 0.5)).timestamp()
        os.utime(path, (sealed, sealed))
        files += 1
    return files


def write_hour_compacted(lake: Path, hour: datetime, rps: float, pool: list[str]) -> None:
    """An older hour as compaction leaves it (written directly: same rows, one file and its manifest)."""
    folder = hour_folder(lake, hour)
    folder.mkdir(parents=True, exist_ok=True)
    name = "compacted-000001-bench.parquet"
    table = segment_table(hour, 3600, int(rps * 3600), pool, f"{hour:%Y%m%dT%H}")
    table = table.sort_by([(name, "ascending") for name in ROW_ORDER])
    table = with_typed_columns(table)  # as compaction writes it
    pq.write_table(table, folder / name, row_group_size=65_536, **compacted_write_options(table.schema))
    manifest = {"version": 1, "generation": 1, "files": [name], "sources": []}
    (folder / "_compacted.json").write_text(json.dumps(manifest))
    done = (hour + timedelta(hours=1, minutes=6)).timestamp()
    os.utime(folder / name, (done, done))


def median_time(function: Callable[[], Any], runs: int) -> tuple[float, Any]:
    durations, value = [], None
    for _ in range(runs):
        started = time.perf_counter()
        value = function()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations), value


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def fresh_memory() -> str:
    """What touching 1 GiB of memory this process has not used yet costs now. On a VM that reports free pages to
    its host (Firecracker here: "Free page reporting enabled"), memory a read frees goes back to the host and the
    next read faults it in again: that cost, not the decoding, swings a read of every row of a day by ~1 s."""
    started = time.perf_counter()
    touched = np.ones(2**30 // 8)
    seconds = time.perf_counter() - started
    del touched
    return f"touching 1 GiB of fresh memory: {seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rps", type=float, default=100.0)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median reported)")
    parser.add_argument("--days", type=int, default=7, help="how far the growth measurement goes")
    parser.add_argument("--quick", action="store_true", help="10 req/s and 2 days")
    parser.add_argument("--skip-json", action="store_true", help="skip the every-row read through the JSON (~90 s)")
    parser.add_argument(
        "--open-hour-only",
        action="store_true",
        help="only the open hour's compaction passes (one every --compact-every seconds) and a read after each",
    )
    parser.add_argument("--compact-every", type=float, default=600.0, help="the monitor's compaction interval (s)")
    parser.add_argument("--work", type=Path, help="folder for the lake (default: a temporary one, removed)")
    parser.add_argument("--payload", choices=("numeric", "credit-risk"), default="numeric",
                        help="the requests' features: 10 numbers, or the credit-risk model's (text categories, gaps)")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.rps, args.days = 10.0, 2
    with tempfile.TemporaryDirectory(prefix="bench-lake-", dir=args.work) as tmp:
        (open_hour if args.open_hour_only else run)(Path(tmp) / "lake", args)


def open_hour(lake: Path, args: argparse.Namespace) -> None:
    """What the monitor's upkeep costs while an hour is open: a pass every ``--compact-every`` seconds merges the
    parts sealed more than 5 min before it (rewriting the hour's compacted file), then a read of every row of the
    hour. The hour is two hours back, with the compaction clock (``now``) simulated pass by pass."""
    pool = payload_pool()
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    print(f"# one hour at {args.rps:g} req/s, a compaction pass every {args.compact_every:g} s; {load()}\n")
    print("| pass at | new parts | pass | rows rewritten | files merged | then: every row of the hour |")
    print("|---|---|---|---|---|---|")
    written_until = hour
    step = timedelta(seconds=args.compact_every)
    at = hour + step
    while at <= hour + timedelta(hours=1, seconds=args.compact_every):
        files = write_hour_as_parts(lake, hour, args.rps, pool, until=min(at, hour + timedelta(hours=1)),
                                    after=written_until)  # fmt: skip
        written_until = min(at, hour + timedelta(hours=1))
        started = time.perf_counter()
        report = compact(str(lake), MODEL, now=at)
        seconds = time.perf_counter() - started
        rows = sum(h.rows for h in report.hours)
        merged = sum(h.inputs for h in report.hours)
        read_s, window = median_time(lambda: read_window(str(lake), MODEL, since=hour), args.runs)
        print(f"| +{(at - hour).total_seconds() / 60:.0f} min | {files} | {seconds:.2f} s | {rows} | {merged} | "
              f"{read_s:.3f} s ({len(window.frame)} rows, {window.files_read} files) |")  # fmt: skip
        at += step
    print(f"\n{load()}")


def run(lake: Path, args: argparse.Namespace) -> None:
    pool = payload_pool(kind=args.payload)
    now = datetime.now(UTC)
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    print(f"# lake at {args.rps:g} req/s, 5 s segments ({int(args.rps * SEGMENT_S)} rows per part), {args.payload} "
          f"features; {load()}")  # fmt: skip

    reference = pd.DataFrame([json.loads(text) for text in pool[:20_000]])
    profile_dir = lake.parent / "reference"
    build_profile(reference, metadata={"version": "3"}).save(profile_dir / "profile")
    config = MonitorConfig(model=MODEL, lake_uri=str(lake), reports_dir=lake.parent / "reports", last_rows=2000,
                           last_minutes=60.0, interval_s=60.0, options=DriftOptions(), html_reports=False)  # fmt: skip
    monitor = Monitor(config, LocalReference(profile_dir))

    def evaluate() -> int:
        return monitor.evaluate().rows

    started = time.perf_counter()
    files = write_hour_as_parts(lake, current_hour, args.rps, pool, until=now)
    for back in range(1, 24):
        files += write_hour_as_parts(lake, current_hour - timedelta(hours=back), args.rps, pool)
    print(f"wrote 24 h: {files} part files in {time.perf_counter() - started:.0f} s")

    since = now - timedelta(hours=24)
    last_hour = now - timedelta(hours=1)
    reads = {
        "monitor read: since 24 h, last_rows 2000": lambda: read_window(str(lake), MODEL, since=since, last_rows=2000),
        "whole newest hour: since 1 h, every row": lambda: read_window(str(lake), MODEL, since=last_hour),
    }
    results: dict[str, list[str]] = {}
    for label, reader in reads.items():
        seconds, window = median_time(reader, args.runs)
        results[label] = [f"{seconds:.3f} s ({len(window.frame)} rows, {window.files_read} files)"]
    before_eval, rows = median_time(evaluate, args.runs)
    results["Monitor.evaluate() (2000 rows / 60 min)"] = [f"{before_eval:.3f} s ({rows} rows)"]

    started = time.perf_counter()
    report = compact(str(lake), MODEL, now=now)
    merged = sum(hour.inputs for hour in report.hours)
    print(f"compacted {len(report.hours)} hours ({merged} files) in {time.perf_counter() - started:.0f} s; "
          f"the open hour's parts written in the last 5 min stay parts")  # fmt: skip
    for label, reader in reads.items():
        seconds, window = median_time(reader, args.runs)
        results[label].append(f"{seconds:.3f} s ({len(window.frame)} rows, {window.files_read} files)")
    after_eval, rows = median_time(evaluate, args.runs)
    results["Monitor.evaluate() (2000 rows / 60 min)"].append(f"{after_eval:.3f} s ({rows} rows)")
    # every row of the 24 h (what the goal literally says; not what the monitor reads): after compaction only,
    # before it the same read opens ~17,000 part files; each run materialises 8.6M rows (~2 GB). Side by side:
    # the typed columns compaction writes (read_window) and the stored JSON (the path before them), same frame.
    print(f"before the every-row reads: {fresh_memory()}; {load()}")
    every_row: list[float] = []

    def read_every_row() -> lake_module.LakeWindow:
        started = time.perf_counter()
        window = read_window(str(lake), MODEL, since=since)
        every_row.append(time.perf_counter() - started)
        return window

    typed_s, typed = median_time(read_every_row, args.runs)
    print(f"every row of the 24 h, each run: {', '.join(f'{s:.2f} s' for s in every_row)}; after them: "
          f"{fresh_memory()}")  # fmt: skip
    results["every row of the 24 h: since 24 h (typed columns)"] = [
        "(not run)",
        f"{typed_s:.3f} s ({len(typed.frame)} rows, {typed.files_read} files)",
    ]
    if not args.skip_json:
        fs, root = filesystem(str(lake))
        json_s, stored = median_time(
            lambda: lake_module._read_window(fs, root, MODEL, since=since, last_rows=None, typed=False), 1
        )
        pd.testing.assert_frame_equal(typed.frame, stored.frame)
        results["every row of the 24 h: the same read through the JSON (one run)"] = [
            "(not run)",
            f"{json_s:.3f} s ({len(stored.frame)} rows; frame identical to the typed read)",
        ]
        del stored
    del typed
    print(f"\n## read_window over the last 24 h, median of {args.runs}; {load()}\n")
    print("| read | before compaction | after |\n|---|---|---|")
    for label, (before, after) in results.items():
        print(f"| {label} | {before} | {after} |")

    print(f"\n## Monitor.evaluate() as the lake grows (older hours compacted), median of {args.runs}\n")
    print("| lake holds | hours | evaluate | monitor read |\n|---|---|---|---|")
    growth = [(1, "1 h"), (24, "24 h"), (24 * args.days, f"{args.days} days")]
    kept: dict[int, Path | None] = {1: None}
    for hours_kept, label in growth:
        existing = {p.parent.name + p.name for p in (lake / f"model={MODEL}").glob("date=*/hour=*")}
        for back in range(1, hours_kept):
            hour = current_hour - timedelta(hours=back)
            if f"date={hour:%Y-%m-%d}hour={hour:%H}" not in existing:
                write_hour_compacted(lake, hour, args.rps, pool)
        if hours_kept == 1:  # measure the 1 h lake on its own copy: keep only the current hour visible
            kept[1] = _only_current_hour(lake, current_hour)
        seconds, rows = median_time(evaluate, args.runs)
        read_s, _ = median_time(lambda: read_window(str(lake), MODEL, since=now - timedelta(hours=1), last_rows=2000),
                                args.runs)  # fmt: skip
        hours_now = len(list((lake / f"model={MODEL}").glob("date=*/hour=*")))
        print(f"| {label} | {hours_now} | {seconds:.3f} s ({rows} rows) | {read_s:.3f} s |", flush=True)
        if hours_kept == 1 and kept[1] is not None:
            _restore(lake, kept[1])
    print(f"\n{load()}")


def _only_current_hour(lake: Path, current_hour: datetime) -> Path:
    """Move every hour but the current one aside (restored after the 1 h measurement)."""
    aside = lake.parent / "aside"
    for folder in (lake / f"model={MODEL}").glob("date=*/hour=*"):
        if folder != hour_folder(lake, current_hour):
            target = aside / folder.parent.name / folder.name
            target.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(target)
    return aside


def _restore(lake: Path, aside: Path) -> None:
    for folder in aside.glob("date=*/hour=*"):
        target = lake / f"model={MODEL}" / folder.parent.name / folder.name
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)


if __name__ == "__main__":
    main()
