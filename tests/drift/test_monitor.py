"""The monitor end to end on a real lake (monitors.lake) and a real /metrics endpoint on a random port."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from driftloop.errors import ServiceUnavailableError
from monitors.drift import DriftOptions, build_profile, compute_drift
from monitors.drift._monitor import Monitor, MonitorConfig
from monitors.drift._sources import LoadedReference, LocalReference
from monitors.lake import LakeRow, write_frame, write_rows

MODEL = "credit-risk"


def _features(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "income": rng.lognormal(10 + shift, 0.5, rows),
            "age": rng.integers(18, 80, rows) + int(shift * 20),
            "purpose": rng.choice(["car", "house", "education"], rows, p=[0.5 - shift / 4, 0.3, 0.2 + shift / 4]),
        }
    )


@pytest.fixture
def reference_dir(tmp_path):
    rng = np.random.default_rng(11)
    reference = _features(rng, 2000)
    folder = tmp_path / "reference"
    build_profile(reference, metadata={"version": "7"}).save(folder / "profile")
    reference.to_parquet(folder / "sample.parquet")
    return folder


def _config(tmp_path, **overrides) -> MonitorConfig:
    values = dict(model=MODEL, lake_uri=str(tmp_path / "lake"), reports_dir=tmp_path / "reports", last_rows=500,
                  last_minutes=None, interval_s=60.0, options=DriftOptions())  # fmt: skip
    values.update(overrides)
    return MonitorConfig(**values)


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("driftloop_"):
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def served(tmp_path, reference_dir):
    """A monitor whose metrics are served on a random free port; stopped afterwards."""
    monitor = Monitor(_config(tmp_path, html_reports=False), LocalReference(reference_dir))
    server, thread = start_http_server(0, addr="127.0.0.1", registry=monitor.metrics.registry)
    yield monitor, server.server_port
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_empty_window_exports_no_drift(served):
    monitor, port = served
    evaluation = monitor.evaluate()
    assert evaluation.rows == 0 and evaluation.result is None
    samples = _scrape(port)
    assert samples[("driftloop_window_rows", (("model", MODEL),))] == 0
    assert not [key for key in samples if key[0] in ("driftloop_feature_drift_score", "driftloop_drift_share")]
    assert samples[("driftloop_monitor_last_success_timestamp_seconds", ())] > 0


def test_a_window_under_min_rows_is_counted_not_scored_and_scored_once_full(tmp_path, reference_dir):
    """The first seconds of traffic: a handful of shifted rows would make a noisy verdict (and an alert)."""
    monitor = Monitor(_config(tmp_path, html_reports=False, min_rows=300), LocalReference(reference_dir))
    rng = np.random.default_rng(9)
    write_frame(str(tmp_path / "lake"), MODEL, _features(rng, 120, shift=0.6), model_version="7")
    partial = monitor.evaluate()
    assert partial.rows == 120 and partial.result is None
    assert monitor.metrics.window_rows.labels(MODEL)._value.get() == 120
    write_frame(str(tmp_path / "lake"), MODEL, _features(rng, 300, shift=0.6), model_version="7")
    full = monitor.evaluate()
    assert full.rows == 420 and full.result is not None and full.result.dataset_drift


def test_drift_metrics_match_compute_drift(served, tmp_path, reference_dir):
    monitor, port = served
    rng = np.random.default_rng(5)
    window = _features(rng, 500, shift=0.6)
    write_frame(str(tmp_path / "lake"), MODEL, window, model_version="7")
    evaluation = monitor.evaluate()
    expected = compute_drift(LocalReference(reference_dir).resolve().profile, window)
    samples = _scrape(port)
    assert samples[("driftloop_window_rows", (("model", MODEL),))] == 500
    for name, column in expected.columns.items():
        labels = (("feature", name), ("method", column.method), ("model", MODEL), ("version", "7"))
        assert samples[("driftloop_feature_drift_score", labels)] == pytest.approx(column.score, rel=1e-12)
        assert samples[("driftloop_feature_drifted", labels)] == float(column.drifted)
    version = (("model", MODEL), ("version", "7"))
    assert samples[("driftloop_drift_share", version)] == expected.drifted_share
    assert samples[("driftloop_dataset_drift", version)] == 1.0
    assert evaluation.result is not None and evaluation.result.dataset_drift
    # the window empties (records age out of --last-minutes): the drift series disappear
    monitor.config = _config(tmp_path, html_reports=False, last_minutes=1e-9)
    monitor.evaluate()
    assert not [key for key in _scrape(port) if key[0] == "driftloop_drift_share"]


def test_bad_payloads_are_counted_not_fatal(served, tmp_path):
    monitor, port = served
    rng = np.random.default_rng(9)
    good = _features(rng, 300)
    bad = good.head(4).astype({"income": object}).drop(columns=["purpose"])
    bad.loc[bad.index[:2], "income"] = "12k"  # the seeds' incident: a string where a number belongs
    bad["coupon"] = "SPRING"  # a column the model does not know
    lake = str(tmp_path / "lake")
    now = datetime.now(UTC)
    write_frame(lake, MODEL, good, ts=now - timedelta(seconds=5))
    write_frame(lake, MODEL, bad, ts=now)
    malformed = LakeRow("broken-1", now, "7", 400, 0.0, error="not JSON", raw="{oops")
    write_rows(lake, MODEL, [malformed], "broken")
    evaluation = monitor.evaluate()
    assert evaluation.rows == 304 and evaluation.result is not None
    assert evaluation.mismatches == {"income": 2, "purpose": 4, "coupon": 4}
    assert evaluation.malformed == 1
    assert "income" in evaluation.result.columns  # computed on the 302 good incomes
    assert evaluation.result.columns["income"].current_rows == 302
    samples = _scrape(port)
    for column, count in evaluation.mismatches.items():
        key = ("driftloop_payload_schema_mismatch_total", (("column", column), ("model", MODEL)))
        assert samples[key] == count
    assert samples[("driftloop_payload_malformed_total", (("model", MODEL),))] == 1
    # the same window again: nothing new, so the counters do not move
    monitor.evaluate()
    assert _scrape(port)[("driftloop_payload_schema_mismatch_total", (("column", "income"), ("model", MODEL)))] == 2


class _Switching:
    """A reference source whose champion changes between calls (a promotion)."""

    def __init__(self, references: list[LoadedReference]) -> None:
        self.references = references

    def resolve(self) -> LoadedReference:
        return self.references.pop(0) if len(self.references) > 1 else self.references[0]


def test_new_champion_replaces_the_old_series(tmp_path, reference_dir):
    loaded = LocalReference(reference_dir).resolve()
    promoted = LoadedReference("8", loaded.profile, loaded.directory)
    monitor = Monitor(_config(tmp_path, html_reports=False), _Switching([loaded, promoted]))
    write_frame(str(tmp_path / "lake"), MODEL, _features(np.random.default_rng(1), 200))
    monitor.evaluate()
    monitor.evaluate()
    versions = {
        dict(labels)["version"]
        for (name, labels) in _registry_samples(monitor)
        if name in ("driftloop_feature_drift_score", "driftloop_drift_share")
    }
    assert versions == {"8"}


def _registry_samples(monitor: Monitor):
    for family in monitor.metrics.registry.collect():
        for sample in family.samples:
            yield sample.name, tuple(sorted(sample.labels.items()))


@pytest.mark.slow
def test_drift_writes_an_html_report(tmp_path, reference_dir):
    monitor = Monitor(_config(tmp_path, last_rows=300), LocalReference(reference_dir))
    write_frame(str(tmp_path / "lake"), MODEL, _features(np.random.default_rng(2), 300, shift=0.8))
    evaluation = monitor.evaluate()
    assert evaluation.report is not None and evaluation.report.parent == tmp_path / "reports"
    assert evaluation.report.stat().st_size > 10_000 and "<html" in evaluation.report.read_text()[:2000].lower()
    assert monitor.evaluate().report is None  # at most one report per version per report_every_s


def test_run_survives_failures_and_stops(tmp_path, reference_dir):
    calls = []

    def flaky_reader(*args, **kwargs):
        calls.append(1)
        raise OSError("the lake's disk went away")  # a fault we cannot cause portably

    monitor = Monitor(_config(tmp_path, interval_s=0.01), LocalReference(reference_dir), read_window=flaky_reader)
    monitor.run(threading.Event(), max_evaluations=3)
    assert len(calls) == 3
    errors = next(s for s in monitor.metrics.registry.collect() if s.name == "driftloop_monitor_errors")
    assert sum(sample.value for sample in errors.samples if sample.name.endswith("_total")) == 3


class _FailsAfterFirst:
    """A champion source that answers once, then loses its server."""

    def __init__(self, reference: LoadedReference) -> None:
        self.reference, self.calls = reference, 0

    def resolve(self) -> LoadedReference:
        self.calls += 1
        if self.calls > 1:
            raise ServiceUnavailableError("cannot reach MLflow", hint="start it")
        return self.reference


def test_mlflow_outage_keeps_the_known_champion(tmp_path, reference_dir):
    source = _FailsAfterFirst(LocalReference(reference_dir).resolve())
    monitor = Monitor(_config(tmp_path, html_reports=False), source)
    write_frame(str(tmp_path / "lake"), MODEL, _features(np.random.default_rng(4), 100))
    assert monitor.evaluate().version == "7"
    assert monitor.evaluate().version == "7" and source.calls == 2
    fresh = Monitor(_config(tmp_path, html_reports=False), _FailsAfterFirst(source.reference))
    fresh.source.calls = 1  # type: ignore[attr-defined]
    with pytest.raises(ServiceUnavailableError):  # nothing known yet: the error is the answer
        fresh.evaluate()


def test_a_per_column_option_naming_no_column_stops_the_monitor_loudly(tmp_path, reference_dir):
    from driftloop.errors import ConfigError

    options = DriftOptions(per_column_threshold={"incme": 0.2})
    monitor = Monitor(_config(tmp_path, interval_s=0.01, options=options), LocalReference(reference_dir))
    with pytest.raises(ConfigError, match=r"--column-threshold names unknown column\(s\) \['incme'\]") as raised:
        monitor.run(threading.Event(), max_evaluations=3)
    assert "columns with a drift test: income, age, purpose" in str(raised.value.hint)


def _drift_share(monitor: Monitor) -> float | None:
    samples = (s for f in monitor.metrics.registry.collect() for s in f.samples if s.name == "driftloop_drift_share")
    return next((sample.value for sample in samples), None)


def test_a_watching_monitor_evaluates_when_the_lake_gets_data_not_an_interval_later(tmp_path, reference_dir):
    """--wake-on-write: a 60 s interval, yet drift written to the lake is evaluated within about a second."""
    lake = str(tmp_path / "lake")
    write_frame(lake, MODEL, _features(np.random.default_rng(3), 300))  # a baseline window first
    monitor = Monitor(_config(tmp_path, interval_s=60, wake_on_write=True, min_gap_s=0.2, html_reports=False),
                      LocalReference(reference_dir))  # fmt: skip
    stop = threading.Event()
    loop = threading.Thread(target=monitor.run, args=(stop,), daemon=True)
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while _drift_share(monitor) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _drift_share(monitor) is not None and _drift_share(monitor) < 0.5  # the first pass saw the baseline
        written = time.monotonic()
        write_frame(lake, MODEL, _features(np.random.default_rng(4), 500, shift=0.8))
        while (_drift_share(monitor) or 0) < 0.5 and time.monotonic() - written < 20:
            time.sleep(0.05)
        assert (_drift_share(monitor) or 0) >= 0.5, "the write did not wake the monitor"
        assert time.monotonic() - written < 10  # far below the 60 s interval (~0.1 s poll + one evaluation)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()


def test_the_write_signal_is_off_by_default_and_follows_the_lake(tmp_path, reference_dir):
    monitor = Monitor(_config(tmp_path, interval_s=0.3), LocalReference(reference_dir))
    assert monitor._last_write() is None  # off by default (production): the interval alone decides
    watching = Monitor(_config(tmp_path, interval_s=0.3, wake_on_write=True), LocalReference(reference_dir))
    assert watching._last_write() == 0  # a local lake nobody wrote yet
    write_frame(str(tmp_path / "lake"), MODEL, _features(np.random.default_rng(5), 10))
    assert (watching._last_write() or 0) > 0
