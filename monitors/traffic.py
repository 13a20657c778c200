"""``driftloop traffic``: replay a generated scenario as realistic scoring requests at a fixed rate.

The load is open-loop (requests leave on schedule whether or not earlier ones came back), like real
clients, so a slow server shows up as latency and errors instead of silently lowering the rate. Every
request carries an ``X-Request-ID`` so it can be found in the lake afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import click
import numpy as np
import pandas as pd

from driftloop.config import get_settings
from driftloop.errors import ConfigError, ServiceUnavailableError
from monitors.payloads import BODY_FORMATS, encode_request

__all__ = ["BODY_FORMATS", "TrafficReport", "encode_body", "replay", "scenario_records", "traffic_command"]


@dataclass
class TrafficReport:
    """What a replay achieved: rates, status counts, transport errors and latency percentiles (ms)."""

    sent: int = 0
    duration_s: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)  # every request sent, in order
    sent_at: list[float] = field(default_factory=list)  # unix time each request left, in the same order
    answered_ids: list[str] = field(default_factory=list)  # those that got an HTTP answer (any status)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def achieved_rps(self) -> float:
        return self.sent / self.duration_s if self.duration_s else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> str:
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items())) or "none"
        errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.errors.items())) or "none"
        return (
            f"sent {self.sent} requests in {self.duration_s:.1f}s = {self.achieved_rps:.1f} req/s\n"
            f"  answered {self.answered} ({ok} ok)   statuses: {statuses}\n"
            f"  transport errors: {errors}\n"
            f"  latency ms: p50 {self.percentile(50):.2f}  p99 {self.percentile(99):.2f}  max {self.percentile(100):.2f}"
        )


def scenario_records(scenario: str, rows: int, seed: int) -> pd.DataFrame:
    """The model inputs of a generated scenario: the generator's frame without key, timestamp and label."""
    return scenario_rows(scenario, rows, seed)[0]


def scenario_rows(scenario: str, rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The model inputs of a generated scenario and their true outcomes (the generator's label), row for row."""
    from features.columns import ENTITY_KEY, LABEL, TIMESTAMP
    from features.generator import generate

    frame = generate(scenario, rows=rows, seed=seed)
    return frame.drop(columns=[ENTITY_KEY, TIMESTAMP, LABEL]), frame[LABEL].to_numpy()


def encode_body(frame: pd.DataFrame, body_format: str) -> bytes:
    """One scoring request body for ``frame`` (NaN becomes null, numpy scalars plain JSON)."""
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    return encode_request(records, [str(column) for column in frame.columns], body_format)


async def _send(
    session: aiohttp.ClientSession, target: str, body: bytes, request_id: str, report: TrafficReport
) -> None:
    started = time.perf_counter()
    headers = {"Content-Type": "application/json", "X-Request-ID": request_id}
    try:
        async with session.post(target, data=body, headers=headers) as response:
            await response.read()
            report.statuses[response.status] += 1
            report.answered_ids.append(request_id)
            report.latencies_ms.append((time.perf_counter() - started) * 1000.0)
    except (TimeoutError, aiohttp.ServerTimeoutError):
        report.errors["timeout"] += 1
    except aiohttp.ClientConnectionError as exc:
        report.errors[type(exc).__name__] += 1


async def _replay(
    bodies: Sequence[bytes], target: str, rps: float, duration_s: float, timeout_s: float
) -> TrafficReport:
    report = TrafficReport()
    run = uuid.uuid4().hex[:8]
    total = max(1, round(rps * duration_s))
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    tasks: list[asyncio.Task[None]] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        for n in range(total):
            delay = start + n / rps - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            request_id = f"traffic-{run}-{n}"
            report.request_ids.append(request_id)
            report.sent_at.append(time.time())
            tasks.append(asyncio.create_task(_send(session, target, bodies[n % len(bodies)], request_id, report)))
            report.sent += 1
        await asyncio.gather(*tasks)
        report.duration_s = time.perf_counter() - start
    return report


def replay(
    frame: pd.DataFrame,
    target: str,
    *,
    rps: float,
    duration_s: float,
    batch: int = 1,
    body_format: str = "inputs",
    timeout_s: float = 10.0,
) -> TrafficReport:
    """Send ``rps * duration_s`` requests of ``batch`` rows each, cycling through ``frame``."""
    if rps <= 0 or duration_s <= 0 or batch < 1:
        raise ConfigError("--rps, --duration and --batch must be positive", hint="e.g. --rps 50 --duration 30")
    bodies = [encode_body(frame.iloc[i : i + batch], body_format) for i in range(0, len(frame), batch)]
    from monitors.sidecar._run import new_loop

    loop = new_loop()
    try:
        return loop.run_until_complete(_replay(bodies, target, rps, duration_s, timeout_s))
    finally:
        loop.close()


def _scoring_url(target: str) -> str:
    if not target.startswith(("http://", "https://")):
        raise ConfigError(f"--target {target!r} is not an http(s) URL", hint="e.g. --target http://127.0.0.1:8180")
    path = target.partition("://")[2].partition("/")[2]
    return target if path else target.rstrip("/") + "/invocations"


@click.command("traffic")
@click.option(
    "--scenario", default="baseline", show_default=True, help="Scenario to replay (`driftloop data scenarios`)."
)
@click.option("--rps", type=click.FloatRange(min=0.1), default=20.0, show_default=True, help="Requests per second.")
@click.option("--duration", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help="Seconds to run.")
@click.option("--target", default=None, metavar="URL", help="Scoring URL [default: DRIFTLOOP_SERVING_URL/invocations].")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Rows per request.")
@click.option("--format", "body_format", type=click.Choice(BODY_FORMATS), default="inputs", show_default=True,
              help="Request body: `inputs` (records) is the one the models `train` logs take (docs/serving.md).")  # fmt: skip
@click.option("--rows", type=click.IntRange(min=1), default=5000, show_default=True, help="Distinct rows generated.")
@click.option("--seed", type=int, default=11, show_default=True, help="Generator seed (same seed, same requests).")
@click.option("--with-outcomes", is_flag=True,
              help="Also send the generator's true outcome of every answered row to the receiver's POST /feedback.")  # fmt: skip
@click.option("--outcome-delay", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="SECONDS",
              help="With --with-outcomes: each outcome leaves this long after its request (labels come late).")  # fmt: skip
def traffic_command(
    scenario: str, rps: float, duration: float, target: str | None, batch: int, body_format: str, rows: int, seed: int,
    with_outcomes: bool, outcome_delay: float,
) -> None:  # fmt: skip
    """Replay a scenario as inference requests against the model server (through the sidecar).

    Rows come from the deterministic data generator (baseline, covariate-shift, concept-drift,
    missing-spike, new-category, schema-change), without key, timestamp and label, and are sent as MLflow
    scoring requests at a fixed rate, each with an X-Request-ID. Prints the achieved rate, status counts,
    transport errors and latency percentiles. Exit code 1 when nothing could be delivered.

    \b
    Examples:
      driftloop traffic --scenario baseline --rps 50 --duration 30
      driftloop traffic --scenario covariate-shift --rps 200 --duration 60 --batch 10
      driftloop traffic --scenario schema-change --target http://127.0.0.1:5001   # straight to the model server
      driftloop traffic --scenario concept-drift --with-outcomes --outcome-delay 5   # labels, 5 s late
    """
    settings = get_settings()
    url = _scoring_url(target or settings.serving_url)
    frame, labels = scenario_rows(scenario, rows=rows, seed=seed)
    click.echo(f"replaying {scenario} ({len(frame)} rows, {batch}/request) at {rps:g} req/s for {duration:g}s -> {url}")
    report = replay(frame, url, rps=rps, duration_s=duration, batch=batch, body_format=body_format)
    click.echo(report.summary())
    if with_outcomes and report.answered:
        from monitors.feedback.outcomes import send_outcomes

        counts = send_outcomes(settings, report, labels, batch=batch, delay_s=outcome_delay)
        click.echo("  outcomes: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    if report.answered == 0:
        raise ServiceUnavailableError(
            f"no request reached {url} ({sum(report.errors.values())} transport errors)",
            hint="start the serving stack (`driftloop stack up`) or point --target at a running model server or sidecar",
        )
