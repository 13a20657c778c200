"""``driftloop sidecar``, ``scoring-server`` and ``ship``: the two capture modes (reverse proxy; in-process + shipper).

Heavy imports (MLflow, uvicorn, the pin's YAML) happen inside the commands, so ``driftloop --help`` stays fast.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import click

from driftloop.config import get_settings
from driftloop.errors import ConfigError
from monitors.sidecar._config import SidecarConfig
from monitors.sidecar._run import run_sidecar

__all__ = ["parse_listen", "read_pin", "scoring_server_command", "ship_command", "sidecar_command"]

_MIB = 1 << 20
_PIN_HELP = "A model-pin.yaml (GitOps): take {what} from it."


def read_pin(pin_file: Path | None) -> tuple[str | None, str | None]:
    """(model name, model version) of a pin file, or (None, None) without one: on a cluster the pod's pin says
    which version it serves, so no registry lookup is needed (an unpinned placeholder stamps ``none``)."""
    if pin_file is None:
        return None, None
    from workflows.gitops.pin import ModelPin

    pin = ModelPin.from_yaml(pin_file.read_text(), str(pin_file))
    return pin.model_name, pin.model_version


def _pin_option(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--pin",
        "pin_file",
        type=click.Path(path_type=Path, exists=True, dir_okay=False),
        default=None,
        help=_PIN_HELP.format(what=what),
    )


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``) -> (host, port), with an error that shows the expected form."""
    host, _, port_text = value.rpartition(":")
    try:
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise ConfigError(f"--listen {value!r} is not HOST:PORT", hint="e.g. --listen 127.0.0.1:8180") from None
    return host or "127.0.0.1", port


@click.command("sidecar")
@click.option(
    "--listen", default=None, metavar="HOST:PORT", help="Where to listen [default: host:port of DRIFTLOOP_SERVING_URL]."
)
@click.option("--upstream", required=True, metavar="URL", help="The model server, e.g. http://127.0.0.1:5001.")
@click.option(
    "--lake",
    "lake_uri",
    default=None,
    metavar="URI",
    help="Lake directory or fsspec URI [default: DRIFTLOOP_LAKE_URI].",
)
@click.option("--model", default=None, help="Model name; names the lake partition [default: DRIFTLOOP_MODEL_NAME].")
@click.option(
    "--model-version", default=None, help="Version stamped on captures [default: resolve @champion in MLflow]."
)
@_pin_option("--model and --model-version")
@click.option(
    "--spool",
    "spool_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Spool directory [default: <home>/sidecar/<model>-<port>].",
)
@click.option(
    "--max-spool-mb",
    type=click.IntRange(1),
    default=1024,
    show_default=True,
    help="Spool size limit; beyond it new captures are dropped and counted.",
)
@click.option(
    "--segment-mb", type=click.IntRange(1), default=8, show_default=True, help="Seal a spool segment at this size."
)
@click.option(
    "--segment-age",
    type=click.FloatRange(0.1),
    default=5.0,
    show_default=True,
    help="…or at this age in seconds (lake freshness).",
)
@click.option(
    "--fsync-interval",
    type=click.FloatRange(0.01),
    default=0.2,
    show_default=True,
    help="Seconds between batched fsyncs of the spool.",
)
@click.option(
    "--max-inflight",
    type=click.IntRange(1),
    default=512,
    show_default=True,
    help="Concurrent requests; beyond it a fast 503.",
)
@click.option(
    "--capture-path",
    "capture_paths",
    multiple=True,
    default=("/invocations",),
    show_default=True,
    help="Paths whose payloads are captured (repeatable).",
)
@click.option(
    "--routes",
    "routes_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A routing file (written by `driftloop deployer`): weighted upstreams that replace --upstream while it exists.",
)
@click.option(
    "--no-capture",
    is_flag=True,
    help="Route only, capture nothing: the model servers behind it capture in process (`driftloop scoring-server "
    "--ship`). What `driftloop stack up` runs: the canary split of the deployer's --routes, without a second capture.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log background events (lake errors, replays).")
def sidecar_command(
    listen: str | None,
    upstream: str,
    lake_uri: str | None,
    model: str | None,
    model_version: str | None,
    pin_file: Path | None,
    spool_dir: Path | None,
    max_spool_mb: int,
    segment_mb: int,
    segment_age: float,
    fsync_interval: float,
    max_inflight: int,
    capture_paths: tuple[str, ...],
    routes_file: Path | None,
    no_capture: bool,
    verbose: bool,
) -> None:
    """Run the payload-capturing reverse proxy in front of a model server.

    Every request to a capture path is forwarded to --upstream; the request/response pair (request id,
    timestamp, model version, latency, status) is appended to a local spool before the answer goes back,
    so even `kill -9` loses nothing already answered. A background writer turns the spool into parquet
    in the lake (<lake>/model=<name>/date=YYYY-MM-DD/hour=HH/), deleting spool segments only after the
    lake write succeeded. When the lake is down the spool grows up to --max-spool-mb, then new captures
    are dropped and counted (driftloop_sidecar_dropped_total{reason="spool_full"}); requests are never
    slowed or refused because of the lake. Upstream down -> a fast 502 with a JSON body.

    \b
    Examples:
      driftloop sidecar --listen 127.0.0.1:8180 --upstream http://127.0.0.1:5001
      driftloop sidecar --listen 0.0.0.0:8080 --upstream http://localhost:8081 --lake s3://ml-lake/payloads
      driftloop sidecar --upstream http://127.0.0.1:5001 --routes ~/.driftloop/deployer/routes.json --no-capture
      curl -s localhost:8180/metrics | grep driftloop_sidecar_
      curl -s localhost:8180/readyz
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    host, port = parse_listen(listen or settings.serving_url.split("://", 1)[-1].split("/", 1)[0])
    if not upstream.startswith(("http://", "https://")):
        raise ConfigError(
            f"--upstream {upstream!r} is not an http(s) URL", hint="e.g. --upstream http://127.0.0.1:5001"
        )
    pinned_model, pinned_version = read_pin(pin_file)
    model, model_version = model or pinned_model, model_version or pinned_version
    model_name = model or settings.model_name
    config = SidecarConfig(
        upstream=upstream,
        lake_uri=lake_uri or settings.lake_uri,
        spool_dir=spool_dir or settings.home / "sidecar" / f"{model_name}-{port}",
        model=model_name,
        model_version=model_version,
        mlflow_uri=settings.mlflow_uri,
        capture_paths=capture_paths,
        max_spool_bytes=max_spool_mb * _MIB,
        segment_bytes=segment_mb * _MIB,
        segment_age_s=segment_age,
        fsync_interval_s=fsync_interval,
        max_inflight=max_inflight,
        routes_file=routes_file,
        capture=not no_capture,
    )
    run_sidecar(config, host, port)


@click.command("scoring-server")
@click.option("--model-uri", required=True, help="What MLflow serves, e.g. models:/credit-risk@champion or a path.")
@click.option("--listen", default="127.0.0.1:5001", show_default=True, metavar="HOST:PORT", help="Where to listen.")
@click.option(
    "--spool",
    "spool_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Spool directory shared with `driftloop ship`.",
)
@click.option(
    "--model-version", default=None, help="Version stamped on every capture [default: the --pin's, else unknown]."
)
@_pin_option("--model-version")
@click.option("--max-spool-mb", type=click.IntRange(1), default=1024, show_default=True, help="Beyond it: drop, count.")
@click.option("--segment-age", type=click.FloatRange(0.1), default=5.0, show_default=True, help="Seal after seconds.")
@click.option(
    "--capture-path",
    "capture_paths",
    multiple=True,
    default=("/invocations",),
    show_default=True,
    help="Paths whose payloads are captured (repeatable).",
)
@click.option(
    "--max-inflight",
    type=click.IntRange(1),
    default=64,
    show_default=True,
    help="Scoring requests admitted at once; beyond it an immediate 503 with Retry-After (load shedding: "
    "MLflow's app alone queues without bound until clients time out).",
)
@click.option(
    "--prediction-threads",
    type=click.IntRange(0),
    default=2,
    show_default=True,
    help="Threads MLflow's app predicts on (0: its default, cores + 4). More than two starve the event loop.",
)
@click.option(
    "--ship",
    is_flag=True,
    help="Also run `driftloop ship` on the spool as a child process (one machine, no pod): restarted if it dies, "
    "stopped last so the final segment reaches the lake.",
)
@click.option(
    "--lake", "lake_uri", default=None, metavar="URI", help="With --ship: the lake [default: DRIFTLOOP_LAKE_URI]."
)
@click.option(
    "--model",
    default=None,
    help="With --ship: the lake partition's model name [default: the --pin's, else DRIFTLOOP_MODEL_NAME].",
)
def scoring_server_command(
    model_uri: str,
    listen: str,
    spool_dir: Path,
    model_version: str | None,
    pin_file: Path | None,
    max_spool_mb: int,
    segment_age: float,
    capture_paths: tuple[str, ...],
    max_inflight: int,
    prediction_threads: int,
    ship: bool,
    lake_uri: str | None,
    model: str | None,
) -> None:
    """Serve a model with MLflow's own scoring app and capture every payload in the same process.

    Like `mlflow models serve` (uvicorn, one worker: /ping, /health, /version, /invocations), plus one write per
    request to the spool before the answer's last byte goes out, so `kill -9` loses nothing answered, and
    GET /metrics with the sidecar's series (driftloop_sidecar_requests_total{code} and
    driftloop_sidecar_upstream_latency_seconds of the capture paths, captured/dropped, spool). Run `driftloop ship`
    next to it to move the spool to the lake. For a model server you cannot change, use `driftloop sidecar`.
    Beyond --max-inflight scoring requests it sheds load: an immediate 503 with Retry-After: 1, not a queue.

    \b
    Examples:
      driftloop scoring-server --model-uri models:/credit-risk@champion --spool /tmp/spool --model-version 3 &
      driftloop ship --spool /tmp/spool --lake /tmp/lake --model credit-risk
      curl -s localhost:5001/metrics | grep driftloop_sidecar_requests_total
      # one machine, one command (what `driftloop stack up` and the deployer run):
      driftloop scoring-server --model-uri ./model --spool /tmp/spool --model-version 3 --ship --lake /tmp/lake
    """
    from monitors.sidecar._ship_child import ShipperChild
    from monitors.sidecar.inprocess import CaptureConfig, serve_with_capture

    host, port = parse_listen(listen)
    pinned_model, pinned_version = read_pin(pin_file)
    model_version = model_version or pinned_version or "unknown"
    shipper = ShipperChild(spool_dir, lake_uri, model or pinned_model) if ship else None
    config = CaptureConfig(spool_dir=spool_dir, model_version=model_version, capture_paths=capture_paths,
                           max_spool_bytes=max_spool_mb * _MIB, segment_age_s=segment_age,
                           max_inflight=max_inflight, prediction_threads=prediction_threads)  # fmt: skip
    serve_with_capture(model_uri, config, host, port, shipper=shipper)


@click.command("ship")
@click.option(
    "--spool", "spool_dir", type=click.Path(path_type=Path), required=True, help="The scoring server's spool."
)
@click.option(
    "--lake",
    "lake_uri",
    default=None,
    metavar="URI",
    help="Lake directory or fsspec URI [default: DRIFTLOOP_LAKE_URI].",
)
@click.option("--model", default=None, help="Model name; names the lake partition [default: DRIFTLOOP_MODEL_NAME].")
@_pin_option("--model")
@click.option("--poll", type=click.FloatRange(0.01), default=0.25, show_default=True, help="Seconds between scans.")
@click.option(
    "--metrics-listen",
    default=None,
    metavar="HOST:PORT",
    help="Serve the shipper's Prometheus metrics (lake rows, write errors and seconds, torn frames) at /metrics.",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(0),
    default=20.0,
    show_default=True,
    help="On SIGTERM: seconds to wait for the scoring server to seal the spool and to ship what is left.",
)
@click.option(
    "--exit-with-parent",
    is_flag=True,
    hidden=True,
    help="Drain and exit once the parent process is gone (what `scoring-server --ship` starts).",
)
def ship_command(
    spool_dir: Path,
    lake_uri: str | None,
    model: str | None,
    pin_file: Path | None,
    poll: float,
    metrics_listen: str | None,
    drain_timeout: float,
    exit_with_parent: bool,
) -> None:
    """Move sealed spool segments of `driftloop scoring-server` to the lake, until SIGTERM/SIGINT.

    Each segment becomes one parquet file named after it and is deleted only after the write, so a crash or
    a lake outage loses and duplicates nothing; while the lake is down, segments wait in the spool. SIGTERM
    (a pod stopping: both containers get it at once) drains first: once the scoring server has sealed its last
    segment and exited, that goes to the lake too, within --drain-timeout (keep it under the pod's grace period).
    """
    import signal
    import threading

    from monitors.sidecar._metrics import ShipperMetrics
    from monitors.sidecar.shipper import Shipper

    settings = get_settings()
    metrics = ShipperMetrics()
    if metrics_listen is not None:
        from prometheus_client import start_http_server

        host, port = parse_listen(metrics_listen)
        try:
            start_http_server(port, host, registry=metrics.registry)  # a daemon thread; the shipping loop is ours
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc}", hint="pick another --metrics-listen") from None
    model = model or read_pin(pin_file)[0] or settings.model_name
    shipper = Shipper(spool_dir, lake_uri or settings.lake_uri, model, poll_s=poll, metrics=metrics)
    terminated = threading.Event()

    def _on_sigterm(*_: object) -> None:
        terminated.set()
        shipper.stop.set()

    signal.signal(signal.SIGTERM, _on_sigterm)
    if exit_with_parent:
        _leave_with_parent(_on_sigterm)
    try:
        shipper.run()
        if terminated.is_set():
            shipper.drain(drain_timeout)
    except KeyboardInterrupt:
        pass
    finally:
        shipper.close()


def _leave_with_parent(leave: Callable[[], None]) -> None:
    """Call ``leave`` (drain, then exit) once the parent is gone: after a ``kill -9`` of the scoring server, the
    orphaned shipper ships what the spool holds (the killed server's lock is free, so its open segment is sealed)."""
    import os
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        leave()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
