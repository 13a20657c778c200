"""Serve ``models:/<name>@champion`` with MLflow's own scoring server, once a champion exists.

``driftloop stack up`` starts this before any model has been promoted. Rather than crash-looping, it
holds the port with a tiny placeholder: ``/health`` answers 200 ``waiting-for-champion`` (the process is
fine) while ``/ping`` and ``/invocations`` answer 503 with a JSON body that says what to do. As soon as the
registry has a champion it hands the port to ``mlflow models serve --env-manager local`` (which enforces
the model signature) and stays its parent, so stopping this process stops the server. With ``--spool`` it hands
it to ``driftloop scoring-server --ship`` instead (the same MLflow scoring app, capturing every payload in process
and shipping the spool to the lake): what ``driftloop stack up`` runs, behind a route-only sidecar.

    python -m monitors.sidecar.champion --model credit-risk --port 5001
    python -m monitors.sidecar.champion --model credit-risk --port 5001 --spool ~/.driftloop/spool/credit-risk
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
from aiohttp import web

from driftloop.config import get_settings
from driftloop.registry_contract import CHAMPION, alias_uri, version_uri

__all__ = ["capturing_serve_command", "champion_version", "mlflow_serve_command", "placeholder_app"]


def champion_version(mlflow_uri: str, model: str) -> str | None:
    """The version the ``champion`` alias points at, or None (no such model/alias, or MLflow unreachable)."""
    url = f"{mlflow_uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias"
    try:
        response = httpx.get(url, params={"name": model, "alias": CHAMPION}, timeout=5.0)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return str(response.json()["model_version"]["version"])


def mlflow_serve_command(model: str, host: str, port: int, version: str) -> list[str]:
    """MLflow's own server for the version the alias named when it was resolved (see ``capturing_serve_command``)."""
    return [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", version_uri(model, version),
        "--env-manager", "local", "--host", host, "--port", str(port), "--workers", "1",
    ]  # fmt: skip


def capturing_serve_command(model: str, host: str, port: int, spool: Path, version: str) -> list[str]:
    """MLflow's scoring app with in-process capture and its shipper; a 0.5 s seal keeps the local loop fresh.

    It loads the version the alias was resolved to, not the alias: an alias moved between the lookup and the load
    would otherwise serve the new model with every capture stamped as the old one until the next poll restarts it.
    """
    return [
        sys.executable, "-m", "driftloop", "scoring-server", "--model-uri", version_uri(model, version),
        "--listen", f"{host}:{port}", "--spool", str(spool), "--model-version", version, "--segment-age", "0.5",
        "--ship", "--model", model,
    ]  # fmt: skip


def placeholder_app(model: str) -> web.Application:
    """Answers while no champion exists: healthy process, not ready to score."""
    waiting = {
        "error_code": "NO_CHAMPION",
        "message": f"no version of model '{model}' is aliased '{CHAMPION}' yet, so there is nothing to serve",
        "hint": "train and promote one (`driftloop submit training --wait`); this server picks it up by itself",
    }

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "waiting-for-champion", "model": model})

    async def not_ready(_: web.Request) -> web.Response:
        return web.json_response(waiting, status=503)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_route("*", "/{tail:.*}", not_ready)
    return app


async def _wait_for_champion(model: str, host: str, port: int, poll_s: float) -> str:
    mlflow_uri = get_settings().mlflow_uri
    version = await asyncio.to_thread(champion_version, mlflow_uri, model)
    if version is not None:
        return version
    runner = web.AppRunner(placeholder_app(model), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"waiting for {alias_uri(model)} in {mlflow_uri} (placeholder on {host}:{port})", flush=True)
    try:
        while version is None:
            await asyncio.sleep(poll_s)
            version = await asyncio.to_thread(champion_version, mlflow_uri, model)
    finally:
        await runner.cleanup()
    return version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="registered model name [default: DRIFTLOOP_MODEL_NAME]")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between checks of the champion alias")
    parser.add_argument("--spool", type=Path, default=None,
                        help="capture in process into this spool and ship it to the lake (DRIFTLOOP_LAKE_URI)")  # fmt: skip
    args = parser.parse_args(argv)
    model = args.model or get_settings().model_name

    def on_signal(signum: int, _: object) -> None:
        raise KeyboardInterrupt  # leave the wait (and the placeholder) cleanly

    signal.signal(signal.SIGTERM, on_signal)
    try:
        version = asyncio.run(_wait_for_champion(model, args.host, args.port, args.poll))
    except KeyboardInterrupt:
        return 0
    return _serve_following_alias(model, args.host, args.port, args.poll, version, args.spool)


def _serve_following_alias(model: str, host: str, port: int, poll_s: float, version: str, spool: Path | None) -> int:
    """Serve the champion's version; when the champion alias moves, restart the server on the new version.

    ``mlflow models serve`` loads the model once, so without this a promotion would leave the old model
    serving while the registry (and the sidecar's capture labels) already name the new one.
    """
    mlflow_uri = get_settings().mlflow_uri
    # mlflow runs `uvicorn` by name: the venv's bin must be on PATH even when the venv is not activated
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "PATH": path}
    stopping = threading.Event()
    server: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, _: object) -> None:
        stopping.set()
        if server is not None:
            server.terminate()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while True:
        print(f"serving {alias_uri(model)} (version {version}) on {host}:{port}", flush=True)
        command = (
            mlflow_serve_command(model, host, port, version)
            if spool is None
            else capturing_serve_command(model, host, port, spool, version)
        )
        server = subprocess.Popen(command, env=env)
        while not stopping.is_set():
            try:
                code = server.wait(timeout=poll_s)
            except subprocess.TimeoutExpired:
                latest = champion_version(mlflow_uri, model)
                if latest is None or latest == version:
                    continue
                print(f"champion moved from version {version} to {latest}: restarting the scoring server", flush=True)
                server.terminate()
                server.wait(timeout=60)
                version = latest
                break
            return code  # the scoring server exited on its own: let the stack see it
        if stopping.is_set():
            server.wait(timeout=60)
            return 0


if __name__ == "__main__":
    sys.exit(main())
