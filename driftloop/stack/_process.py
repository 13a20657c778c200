"""A small process manager: start detached services with a PID file and a log, wait for health, stop by group.

State lives in ``$DRIFTLOOP_HOME/stack/``: ``<name>.pid`` (JSON: pid, command, started) and ``<name>.log``.
A PID file whose process is gone is "stale" and is cleaned up on the next start or stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from driftloop.config import Settings
from driftloop.errors import ServiceUnavailableError
from driftloop.stack.services import Service

__all__ = ["ProcessManager", "ServiceState", "free_port", "pid_alive"]

_POLL_S = 0.5


@dataclass(frozen=True)
class ServiceState:
    name: str
    status: str  # running | starting | stopped | stale
    pid: int | None
    healthy: bool
    log: Path
    url: str


def pid_alive(pid: int) -> bool:
    """The process ``pid`` exists; a zombie child of ours counts as gone (and is reaped here)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _healthy(url: str, headers: dict[str, str] | None = None) -> bool:
    import httpx

    try:
        return httpx.get(url, headers=headers, timeout=2.0).is_success
    except httpx.HTTPError:
        return False


class ProcessManager:
    """Start, stop and inspect the stack's services for one settings object (one $DRIFTLOOP_HOME)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state_dir = settings.home / "stack"

    def pid_file(self, service: Service) -> Path:
        return self.state_dir / f"{service.name}.pid"

    def log_file(self, service: Service) -> Path:
        return self.state_dir / f"{service.name}.log"

    def _pid(self, service: Service) -> int | None:
        """The recorded PID, or None; a PID now used by an unrelated program (after a reboot) is not ours."""
        try:
            record = json.loads(self.pid_file(service).read_text())
            pid = int(record["pid"])
        except (FileNotFoundError, ValueError, KeyError, TypeError, json.JSONDecodeError):
            return None
        try:
            running = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return pid  # gone (reported stale) or no /proc on this OS
        return pid if running[: len(record["command"])] == [part.encode() for part in record["command"]] else None

    def state(self, service: Service) -> ServiceState:
        pid = self._pid(service)
        url = service.health_url(self.settings)
        healthy = _healthy(url, service.health_headers(self.settings)) if pid is not None else False
        if pid is None:
            status = "stopped"
        elif not pid_alive(pid):
            status = "stale"
        else:
            status = "running" if healthy else "starting"
        return ServiceState(service.name, status, pid, healthy, self.log_file(service), url)

    def start(self, service: Service) -> ServiceState:
        """Start ``service`` unless it runs already; wait until healthy or fail with the log's tail."""
        current = self.state(service)
        if current.status in {"running", "starting"}:
            return self._wait_healthy(service, current.pid or 0)
        if _healthy(current.url):
            raise ServiceUnavailableError(
                f"{service.name}: something not started by driftloop already answers at {current.url}",
                hint="stop that process, or change the port in the DRIFTLOOP_* setting of this service",
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        command = service.command(self.settings)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **service.env(self.settings)}
        with self.log_file(service).open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
            )
        self.pid_file(service).write_text(json.dumps({"pid": process.pid, "command": command, "started": time.time()}))
        return self._wait_healthy(service, process.pid)

    def _wait_healthy(self, service: Service, pid: int) -> ServiceState:
        deadline = time.monotonic() + service.start_timeout_s
        while time.monotonic() < deadline:
            state = self.state(service)
            if state.healthy:
                return state
            if not pid_alive(pid):
                self.pid_file(service).unlink(missing_ok=True)
                raise ServiceUnavailableError(
                    f"{service.name} exited during start-up:\n{self.tail(service)}",
                    hint=f"read the full log: {self.log_file(service)}",
                )
            time.sleep(_POLL_S)
        raise ServiceUnavailableError(
            f"{service.name} did not become healthy at {service.health_url(self.settings)} "
            f"within {service.start_timeout_s:.0f} s:\n{self.tail(service)}",
            hint=f"it may still be starting (`driftloop stack status`); log: {self.log_file(service)}",
        )

    def stop(self, service: Service) -> bool:
        """SIGTERM the service's process group, SIGKILL after a grace period; True when something was stopped."""
        pid = self._pid(service)
        if pid is None:
            return False
        stopped = False
        if pid_alive(pid):
            stopped = True
            self._signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + service.stop_timeout_s
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if pid_alive(pid):
                self._signal(pid, signal.SIGKILL)
        self.pid_file(service).unlink(missing_ok=True)
        return stopped

    def stop_all(self, services: list[Service]) -> list[Service]:
        """Stop ``services`` together: SIGTERM to each in the order given, then SIGKILL to each still running after
        its own ``stop_timeout_s``.

        Sequential stops added their shutdowns up (a whole stack took ~40 s to stop on a loaded machine); every
        service here shuts down on its own (flushing its spool, checkpointing its runs), none needs another to.
        """
        running = [(svc, pid) for svc in services if (pid := self._pid(svc)) is not None]
        for _, pid in running:
            if pid_alive(pid):
                self._signal(pid, signal.SIGTERM)
        stopped = [svc for svc, pid in running if pid_alive(pid)]
        began = time.monotonic()
        waiting = list(running)
        while waiting:  # each service gets its own grace (the deployer longer: it stops its model servers first)
            now = time.monotonic()
            for svc, pid in list(waiting):
                if not pid_alive(pid):
                    waiting.remove((svc, pid))
                elif now - began >= svc.stop_timeout_s:
                    self._signal(pid, signal.SIGKILL)
                    waiting.remove((svc, pid))
            if waiting:
                time.sleep(0.1)
        for svc, _ in running:
            self.pid_file(svc).unlink(missing_ok=True)
        self._stop_leftovers(services)
        return stopped

    def _stop_leftovers(self, services: list[Service]) -> None:
        """What a stopped service left running in its own sessions (its ``leftover_groups``: the deployer's model
        servers after a SIGKILL or a crash): SIGTERM to each group (a server seals and ships its spool), then SIGKILL
        after 30 s."""
        groups = [pgid for svc in services for pgid in svc.leftover_groups(self.settings)]
        for pgid in groups:
            self._signal(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 30.0
        while any(pid_alive(pgid) for pgid in groups) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pgid in groups:
            if pid_alive(pgid):
                self._signal(pgid, signal.SIGKILL)

    @staticmethod
    def _signal(pid: int, signum: signal.Signals) -> None:
        try:
            os.killpg(pid, signum)  # the service leads its own session: its workers go too
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def tail(self, service: Service, lines: int = 20) -> str:
        try:
            text = self.log_file(service).read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
