"""Lake compaction and retention on real files: exactly-once reads while compacting, after a kill -9 at any step,
with a replayed part, a late write and a concurrent reader; pruning; the CLI; the monitor's upkeep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from driftloop.cli import cli
from monitors.lake import list_parts, read_window, write_frame
from monitors.lake_compaction import compact, prune

MODEL = "m"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def _write_part(lake: str, index: int, rows: int = 5, start: datetime = T0, prefix: str = "seg") -> set[str]:
    """One writer's part of ``rows`` records, 20 s apart per part: 180 parts fill an hour."""
    stamps = [start + timedelta(seconds=20 * index + s) for s in range(rows)]
    frame = pd.DataFrame({"a": [index * 100 + s for s in range(rows)], "b": [float(s) for s in range(rows)]})
    write_frame(lake, MODEL, frame, ts=stamps, part_id=f"{prefix}-{index}")
    return {f"{prefix}-{index}-{s}" for s in range(rows)}


def _ids(lake: str) -> list[str]:
    return read_window(lake, MODEL).frame["_request_id"].tolist()


def _files(lake: str) -> list[str]:
    return sorted(str(p.relative_to(lake)) for p in Path(lake).rglob("*") if p.is_file() and p.name != "_last_write")


def test_compaction_merges_each_finished_hour_and_reads_the_same_frame(tmp_path: Path) -> None:
    lake = str(tmp_path)
    expected = set().union(*(_write_part(lake, i) for i in range(200)))  # 180 parts in hour 09, 20 in hour 10
    before = read_window(lake, MODEL)
    assert before.files_read == 200
    report = compact(lake, MODEL)
    assert [(Path(h.folder).name, h.inputs, h.outputs, h.rows) for h in report.hours] == [
        ("hour=10", 20, 1, 100),  # newest first: the hours readers read most
        ("hour=09", 180, 1, 900),
    ]
    after = read_window(lake, MODEL)
    assert after.files_read == 2 and len(list_parts(lake, MODEL)) == 2
    pd.testing.assert_frame_equal(before.frame, after.frame)
    assert set(after.frame["_request_id"]) == expected and len(after.frame) == len(expected)
    files = _files(lake)
    assert compact(lake, MODEL).hours == [] and _files(lake) == files  # a second run changes nothing


def test_bounded_reads_and_since_see_the_same_rows_after_compaction(tmp_path: Path) -> None:
    lake = str(tmp_path)
    for i in range(200):
        _write_part(lake, i)
    since = T0 + timedelta(minutes=50)
    before = [read_window(lake, MODEL, last_rows=120).frame, read_window(lake, MODEL, since=since).frame]
    compact(lake, MODEL)
    after = [read_window(lake, MODEL, last_rows=120).frame, read_window(lake, MODEL, since=since).frame]
    for old, new in zip(before, after, strict=True):
        pd.testing.assert_frame_equal(old, new)


def test_an_open_hour_waits_and_a_late_write_is_read_then_merged(tmp_path: Path) -> None:
    lake = str(tmp_path)
    expected = set().union(*(_write_part(lake, i) for i in range(10)))
    assert compact(lake, MODEL, now=T0 + timedelta(minutes=62)).hours == []  # hour 09 ended 2 min ago: settling
    compact(lake, MODEL)
    expected |= _write_part(lake, 50, prefix="late")  # a spool backlog landing in an already compacted hour
    assert sorted(_ids(lake)) == sorted(expected)
    (hour,) = compact(lake, MODEL).hours
    assert (hour.inputs, hour.outputs) == (2, 1)  # the compacted file + the late part
    assert sorted(_ids(lake)) == sorted(expected) and len(list_parts(lake, MODEL)) == 1


def test_a_part_replayed_after_compaction_is_never_counted_twice(tmp_path: Path) -> None:
    lake = str(tmp_path)
    expected = set().union(*(_write_part(lake, i) for i in range(5)))
    compact(lake, MODEL)
    _write_part(lake, 3)  # a writer killed between its lake write and deleting its segment replays it
    assert sorted(_ids(lake)) == sorted(expected)
    report = compact(lake, MODEL)
    assert report.hours == [] and report.cleaned == 1  # the replayed part is superseded: deleted, not merged
    assert sorted(_ids(lake)) == sorted(expected)


def test_rows_beyond_one_file_are_split_into_a_few(tmp_path: Path) -> None:
    lake = str(tmp_path)
    expected = set().union(*(_write_part(lake, i, rows=10) for i in range(30)))
    (hour,) = compact(lake, MODEL, max_rows_per_file=120).hours
    assert (hour.rows, hour.outputs) == (300, 3)
    assert sorted(_ids(lake)) == sorted(expected)


_CRASHING = """
import os, signal, sys
from monitors.lake_compaction import compact
step = sys.argv[2]
def fault(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)
compact(sys.argv[1], "m", fault=fault)
"""


@pytest.mark.parametrize("step", ["read", "written", "published", "deleting"])
def test_a_kill_9_at_any_step_loses_nothing_duplicates_nothing_and_a_rerun_finishes(tmp_path: Path, step: str) -> None:
    lake = str(tmp_path / "lake")
    expected = set().union(*(_write_part(lake, i) for i in range(40)))
    compact(lake, MODEL)
    expected |= set().union(*(_write_part(lake, i, prefix="late") for i in range(40, 60)))  # a second generation
    crashed = subprocess.run([sys.executable, "-c", _CRASHING, lake, step], cwd=ROOT, capture_output=True, timeout=120)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
    ids = _ids(lake)
    assert len(ids) == len(set(ids)) and set(ids) == expected, f"after a crash at {step!r}"
    compact(lake, MODEL)  # the lock died with the process: a rerun finishes the job
    ids = _ids(lake)
    assert len(ids) == len(set(ids)) and set(ids) == expected
    names = [Path(f).name for f in _files(lake)]
    assert sorted(n.split("-")[0] for n in names) == ["_compacted.json", "_compaction.lock", "compacted"]


def test_a_concurrent_reader_never_sees_a_row_twice_nor_loses_one(tmp_path: Path) -> None:
    """A compactor process merges, over and over, while late parts keep landing; a reader thread reads meanwhile."""
    lake = str(tmp_path / "lake")
    initial = set().union(*(_write_part(lake, i) for i in range(150)))
    script = (
        "import sys\nfrom tests.sidecar.test_lake_compaction import _write_part\n"
        "from monitors.lake_compaction import compact\n"
        "for i in range(150, 180):\n    _write_part(sys.argv[1], i, prefix='late')\n    compact(sys.argv[1], 'm')\n"
    )
    compactor = subprocess.Popen([sys.executable, "-c", script, lake], cwd=ROOT, stderr=subprocess.PIPE)
    problems: list[str] = []
    reads = 0
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads, seen
        while not stop.is_set():
            try:
                ids = _ids(lake)
            except Exception as exc:  # a read that fails mid-compaction is a lost window too
                problems.append(f"read {reads + 1}: {type(exc).__name__}: {exc}")
                return
            reads += 1
            if len(ids) != len(set(ids)):
                problems.append(f"read {reads}: {len(ids) - len(set(ids))} duplicated")
            if not seen <= set(ids) or not initial <= set(ids):
                problems.append(f"read {reads}: lost {len((seen | initial) - set(ids))} rows")
            seen = set(ids)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert compactor.wait(timeout=300) == 0, compactor.stderr.read() if compactor.stderr else ""
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not problems, problems[:5]
    assert reads >= 3  # the reader really ran while the compactor did
    final = _ids(lake)
    assert len(final) == len(set(final)) == len(initial) + 30 * 5


def test_a_second_compactor_skips_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    lake = str(tmp_path)
    _write_part(lake, 0)
    held = "import sys, time\nfrom monitors.lake_compaction import compact\n" \
           "compact(sys.argv[1], 'm', fault=lambda step: (print(step, flush=True), time.sleep(30)))\n"  # fmt: skip
    first = subprocess.Popen([sys.executable, "-c", held, lake], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "read"
        assert compact(lake, MODEL).busy and prune(lake, MODEL, 3600).busy
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    assert not compact(lake, MODEL).busy


def test_prune_deletes_expired_hours_and_their_empty_dates(tmp_path: Path) -> None:
    lake = str(tmp_path)
    for day in range(3):
        for i in (0, 100, 190):  # 09:00, 09:33 and 10:03 each day
            _write_part(lake, i, start=T0 + timedelta(days=day))
    compact(lake, MODEL)
    now = T0 + timedelta(days=2, hours=3)
    assert len(prune(lake, MODEL, 25 * 3600, now=now, dry_run=True).hours) == 4 and len(_ids(lake)) == 45
    report = prune(lake, MODEL, 25 * 3600, now=now)  # cutoff: 2 March, 11:00
    assert [Path(h).relative_to(tmp_path / f"model={MODEL}").as_posix() for h in report.hours] == [
        "date=2026-03-01/hour=09",
        "date=2026-03-01/hour=10",
        "date=2026-03-02/hour=09",
        "date=2026-03-02/hour=10",
    ]
    assert sorted({p.name for p in (tmp_path / f"model={MODEL}").iterdir() if p.is_dir()}) == ["date=2026-03-03"]
    frame = read_window(lake, MODEL).frame
    assert len(frame) == 15 and frame["_ts"].min() >= pd.Timestamp(T0 + timedelta(days=2))


def test_the_cli_compacts_and_prunes_and_its_help_teaches(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    for i in range(20):
        _write_part(lake, i)
    runner = CliRunner()
    for command in (["lake"], ["lake", "compact"], ["lake", "prune"]):
        shown = runner.invoke(cli, [*command, "--help"])
        assert shown.exit_code == 0 and "Examples:" in shown.output and f"driftloop {' '.join(command)}" in shown.output
    done = runner.invoke(cli, ["lake", "compact", "-m", MODEL, "--lake", lake, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["files_merged"] == 20
    pruned = runner.invoke(cli, ["lake", "prune", "-m", MODEL, "--lake", lake, "--retention", "7d"])
    assert pruned.exit_code == 0 and "deleted 1 hour(s)" in pruned.output and _ids(lake) == []
    refused = runner.invoke(cli, ["lake", "prune", "--lake", lake, "--retention", "soon"])
    assert refused.exit_code != 0 and "not a duration" in str(refused.exception or refused.output)


def test_the_monitor_loop_compacts_and_applies_retention(tmp_path: Path) -> None:
    from monitors.drift import DriftOptions, build_profile
    from monitors.drift._monitor import Monitor, MonitorConfig
    from monitors.drift._sources import LocalReference

    lake = str(tmp_path / "lake")
    for i in range(10):
        _write_part(lake, i)  # 2026-03-01: more than 30 days before any "now" this test runs at
        _write_part(lake, i, start=datetime.now(UTC) - timedelta(hours=3), prefix="recent")
    build_profile(pd.DataFrame({"a": range(100), "b": [0.5] * 100}), metadata={"version": "1"}).save(
        tmp_path / "reference" / "profile"
    )
    config = MonitorConfig(model=MODEL, lake_uri=lake, reports_dir=tmp_path / "reports", last_rows=50,
                           last_minutes=None, interval_s=60.0, options=DriftOptions(), html_reports=False,
                           compact_interval_s=600.0, retention_s=30 * 86400.0)  # fmt: skip
    Monitor(config, LocalReference(tmp_path / "reference")).run(threading.Event(), max_evaluations=1)
    ids = _ids(lake)
    assert sorted(ids) == sorted(f"recent-{i}-{s}" for i in range(10) for s in range(5))
    live = [Path(path).name for path in list_parts(lake, MODEL)]  # the recent hour(s) compacted, the old day gone
    assert 1 <= len(live) <= 2 and all(name.startswith("compacted-") for name in live)


def test_a_capped_pass_merges_the_newest_hours_first_and_the_next_passes_the_rest(tmp_path: Path) -> None:
    lake = str(tmp_path)
    for hour in range(5):
        _write_part(lake, 0, start=T0 + timedelta(hours=hour), prefix=f"h{hour}")
        _write_part(lake, 1, start=T0 + timedelta(hours=hour), prefix=f"h{hour}")
    first = compact(lake, MODEL, max_hours=2)
    assert [Path(h.folder).name for h in first.hours] == ["hour=13", "hour=12"]
    second = compact(lake, MODEL, max_hours=2)
    assert [Path(h.folder).name for h in second.hours] == ["hour=11", "hour=10"]
    assert [Path(h.folder).name for h in compact(lake, MODEL).hours] == ["hour=09"]
    assert len(_ids(lake)) == 50 and len(list_parts(lake, MODEL)) == 5
    assert compact(str(tmp_path / "other"), "never-written").hours == [] and not (tmp_path / "other").exists()


def test_a_compaction_between_a_readers_listing_and_its_manifest_read_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving the concurrent test can only hit by chance, made certain: the reader reads the manifest,
    then a whole first compaction runs (publishes, deletes the parts), then the reader goes on."""
    import monitors._lake_partitions as partitions

    lake = str(tmp_path)
    expected = set().union(*(_write_part(lake, i) for i in range(10)))
    real = partitions.read_manifest
    raced: list[str] = []

    def racing(fs: object, folder: str) -> object:
        found = real(fs, folder)  # type: ignore[arg-type]
        if not raced:
            raced.append(folder)
            compact(lake, MODEL)
        return found

    monkeypatch.setattr(partitions, "read_manifest", racing)
    ids = _ids(lake)
    assert raced and len(ids) == len(set(ids)) and set(ids) == expected


def test_an_open_hour_merges_its_settled_parts_and_leaves_the_recent_ones(tmp_path: Path) -> None:
    lake = str(tmp_path)
    now = datetime.now(UTC).replace(minute=40, second=0, microsecond=0)
    hour_start = now.replace(minute=0)
    expected = set().union(*(_write_part(lake, i, start=hour_start) for i in range(12)))  # 00:00-04:00 of the hour
    parts = sorted(Path(lake).rglob("part-*.parquet"))
    for index, path in enumerate(parts):  # the first 9 sealed long ago, the last 3 a minute ago
        sealed = (now - timedelta(minutes=30 if index < 9 else 1)).timestamp()
        os.utime(path, (sealed, sealed))
    before = read_window(lake, MODEL).frame
    (hour,) = compact(lake, MODEL, now=now).hours
    assert (hour.inputs, hour.outputs, hour.rows) == (9, 1, 45)
    live = sorted(Path(p).name.split("-")[0] for p in list_parts(lake, MODEL))
    assert live == ["compacted", "part", "part", "part"]
    pd.testing.assert_frame_equal(read_window(lake, MODEL).frame, before)
    expected |= _write_part(lake, 30, start=hour_start)  # written after the pass: live, read, merged next time
    assert sorted(_ids(lake)) == sorted(expected)
    (hour,) = compact(lake, MODEL, now=now + timedelta(hours=1)).hours  # the hour has ended: everything merges
    assert (hour.inputs, hour.rows) == (5, 65)  # the compacted file and the 4 parts
    assert sorted(_ids(lake)) == sorted(expected) and len(list_parts(lake, MODEL)) == 1
