"""Run a pod-like node as a process tree with its own filesystem view, and kill all of it on demand.

Isolation (Linux, root): ``unshare --mount --pid --fork`` gives each node a private mount and pid namespace;
inside it an overlayfs over ``/`` (upper layer = a per-node folder) makes every write — ``/tmp``, ``/result.txt``,
``/workspace`` — private to the node, exactly like a container's writable layer. ``/tmp`` is a fresh per-node
folder, volumes are bind mounts, and ``/proc`` is the namespace's own. When the node's main process exits (or is
killed) the pid namespace dies and takes every background process with it. Without ``unshare`` privileges the node
runs unisolated (``Sandbox.isolated`` is False) and the node message says so.
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflows.engine._launcher import write_spec

__all__ = ["RESULT_LIMIT", "ContainerRun", "PodOutcome", "Sandbox", "isolation_available"]

RESULT_LIMIT = 256 * 1024
KILL_GRACE_SECONDS = 2.0
POLL_SECONDS = 0.05
_UNSHARE = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private"]

_isolation_lock = threading.Lock()
_isolation_state: dict[str, bool] = {}


def isolation_available() -> bool:
    """True when this process may create mount+pid namespaces and an overlay over / (checked once)."""
    with _isolation_lock:
        if "ok" not in _isolation_state:
            ok = False
            if shutil.which("unshare") and os.geteuid() == 0:
                with tempfile.TemporaryDirectory(prefix="driftloop-probe-") as scratch:
                    for sub in ("upper", "work", "merged"):
                        os.mkdir(os.path.join(scratch, sub))
                    overlay = f"lowerdir=/,upperdir={scratch}/upper,workdir={scratch}/work"
                    script = f"mount -t overlay overlay -o {overlay} {scratch}/merged && mount -t proc proc /proc"
                    try:
                        probe = subprocess.run([*_UNSHARE, "sh", "-c", script], capture_output=True, timeout=10)
                        ok = probe.returncode == 0
                    except (OSError, subprocess.TimeoutExpired):
                        ok = False
            _isolation_state["ok"] = ok
        return _isolation_state["ok"]


@dataclass
class ContainerRun:
    """One process of the pod: argv, environment and working directory as seen inside the sandbox."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    role: str = "main"  # init | main | sidecar
    captures_stdout: bool = True


@dataclass
class PodOutcome:
    exit_code: int | None
    stdout: str
    killed: str | None = None  # why it was killed (deadline, stop…)
    sandbox_error: str | None = None


@dataclass
class Sandbox:
    """A node's private filesystem: ``root`` (overlay upper layer), ``tmp`` and bind ``mounts``."""

    node_dir: Path
    isolated: bool
    mounts: list[tuple[Path, str]] = field(default_factory=list)  # (host dir, path inside)
    launcher: Path | None = None  # the compiled single-container launcher (``_launcher``), when available

    def __post_init__(self) -> None:
        self.node_dir.mkdir(parents=True, exist_ok=True)
        self._layers_made = False

    def _make_layers(self) -> None:
        """The overlay's folders and /tmp; the compiled launcher makes them itself when nothing is placed
        beforehand (four mkdirs a node that a no-op pod need not pay in Python)."""
        if not self._layers_made:
            for sub in ("upper", "work", "merged", "tmp"):
                os.makedirs(self.node_dir / sub, exist_ok=True)
            os.chmod(self.node_dir / "tmp", 0o1777)
            self._layers_made = True

    def host_path(self, inside: str, for_write: bool = False) -> Path:
        """Where a path inside the sandbox lives on the host: a mount, else the overlay's upper layer; for
        reading only, a path the node did not write falls through to the host (the overlay's lower layer)."""
        if not self.isolated:
            return Path(inside)
        if for_write:
            self._make_layers()
        clean = "/" + inside.strip("/")
        candidates = [(host, target) for host, target in self.mounts] + [(self.node_dir / "tmp", "/tmp")]
        for host, target in sorted(candidates, key=lambda pair: -len(pair[1])):
            if clean == target or clean.startswith(target.rstrip("/") + "/"):
                return host / clean[len(target) :].lstrip("/")
        upper = self.node_dir / "upper" / clean.lstrip("/")
        if upper.exists() or upper.is_symlink():
            return upper
        lower = Path(clean)
        return lower if lower.exists() and not for_write else upper

    def place_file(self, inside: str, text: str, mode: int = 0o644) -> str:
        """Write a file the node will see at ``inside`` (unisolated: under the node folder); returns its path."""
        self._make_layers()
        target = self.host_path(inside, for_write=True) if self.isolated else self.node_dir / Path(inside).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        os.chmod(target, mode)
        return inside if self.isolated else str(target)

    def exit_code_of(self, container: str) -> int | None:
        """Exit code of one container of a multi-container pod (None if it never ran)."""
        recorded = self.node_dir / f"rc-{container}"
        return int(recorded.read_text().strip() or 0) if recorded.exists() else None

    def _script(self, containers: list[ContainerRun], log: Path) -> str:
        merged = shlex.quote(str(self.node_dir / "merged"))
        lines = ["set -u"]
        if self.isolated:
            d = self.node_dir
            lines += [
                f"M={merged}",
                f"mount -t overlay overlay -o lowerdir=/,upperdir={shlex.quote(str(d / 'upper'))},"
                f"workdir={shlex.quote(str(d / 'work'))} $M || exit 1",
                "mount -t proc proc $M/proc && mount --rbind /dev $M/dev && mount --rbind /sys $M/sys || exit 1",
                f"mount --bind {shlex.quote(str(d / 'tmp'))} $M/tmp || exit 1",
            ]
            for host, target in sorted(self.mounts, key=lambda pair: len(pair[1])):
                inside = shlex.quote(target)
                lines.append(f"mkdir -p $M{inside} && mount --bind {shlex.quote(str(host))} $M{inside} || exit 1")
            for container in containers:
                lines.append(f"mkdir -p $M{shlex.quote(container.cwd)}")
        lines.append(f": > {shlex.quote(str(self.node_dir / 'ready'))}")
        quoted_log = shlex.quote(str(log))
        sidecars = [c for c in containers if c.role == "sidecar"]
        mains = [c for c in containers if c.role == "main"]
        for container in containers:
            command = self._command(container)
            if container.role == "init":
                lines.append(f"{command} >>{quoted_log} 2>&1 || exit $?")
            elif container.role == "sidecar":
                lines.append(f"{command} >>{quoted_log} 2>&1 &")
        for container in mains:
            command = self._command(container)
            redirect = "" if container.captures_stdout else f" >>{quoted_log}"
            if len(mains) == 1 and not sidecars:
                lines.append(f"exec {command}{redirect}")
            else:
                record = shlex.quote(str(self.node_dir / f"rc-{container.name}"))
                lines.append(f"{command}{redirect}; rc=$?; echo $rc > {record}; [ $rc -eq 0 ] || exit $rc")
        if sidecars or not mains:
            lines.append("exit 0")
        return "\n".join(lines) + "\n"

    def _command(self, container: ContainerRun) -> str:
        env = [f"{k}={v}" for k, v in container.env.items()]
        parts = ["env", "-i", "-C", container.cwd, *env, *container.argv]
        prefix = 'chroot "$M" ' if self.isolated else ""
        return prefix + " ".join(shlex.quote(p) for p in parts)

    def run(self, containers: list[ContainerRun], log: Path, should_kill: Callable[[], str | None]) -> PodOutcome:
        """Run the pod to completion (or until ``should_kill`` returns a reason); stdout of the main is captured."""
        _ensure_dir(log.parent)
        argv = self._fast_argv(containers)
        if argv is None:
            self._make_layers()
            script = self.node_dir / "launch.sh"
            script.write_text(self._script(containers, log))
            argv = [*_UNSHARE, "sh", str(script)] if self.isolated else ["sh", str(script)]
        with open(log, "ab", buffering=0) as log_file:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file, start_new_session=True
            )
            captured, killed = _pump(process, log_file, should_kill)
        if not (self.node_dir / "ready").exists():
            return PodOutcome(None, "", killed, sandbox_error=f"the node sandbox could not be set up (see {log})")
        code = process.returncode
        if code is not None and code < 0:
            code = 128 - code
        return PodOutcome(code, captured.decode(errors="replace"), killed)

    def _fast_argv(self, containers: list[ContainerRun]) -> list[str] | None:
        """The compiled launcher's command line for a one-container pod (None: use the shell launcher)."""
        if self.launcher is None or not self.isolated or len(containers) != 1 or containers[0].role != "main":
            return None
        (container,) = containers
        d = self.node_dir
        records: list[tuple[str, ...]] = [
            ("merged", str(d / "merged")),
            ("upper", str(d / "upper")),
            ("work", str(d / "work")),
            ("tmp", str(d / "tmp")),
            ("ready", str(d / "ready")),
            ("cwd", container.cwd),
        ]
        records += [("bind", str(host), target) for host, target in sorted(self.mounts, key=lambda m: len(m[1]))]
        records += [("env", f"{k}={v}") for k, v in container.env.items()]
        records += [("arg", a) for a in container.argv]
        try:
            write_spec(d / "spec", records)
        except ValueError:
            return None
        return [str(self.launcher), str(d / "spec")]

    def cleanup(self) -> None:
        """Remove the node's filesystem layers in the background (deleting trees is slow; nodes need not wait)."""
        _CLEANER.submit(self.node_dir)


_made_dirs: set[Path] = set()  # log folders known to exist (one per run: a stat per node saved)


def _ensure_dir(path: Path) -> None:
    if path not in _made_dirs or not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        if len(_made_dirs) > 4096:
            _made_dirs.clear()
        _made_dirs.add(path)


class _Cleaner:
    """One daemon thread that deletes finished sandboxes."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, node_dir: Path) -> None:
        self._queue.put(node_dir)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sandbox-cleaner", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        rm = shutil.which("rm")
        while True:
            batch = [self._queue.get()]
            while len(batch) < 256 and not self._queue.empty():
                batch.append(self._queue.get())
            if rm is not None:  # one `rm -rf` per batch: deleting in Python held the GIL for ~10 % of a big run
                with contextlib.suppress(OSError):
                    subprocess.run([rm, "-rf", "--", *map(str, batch)], check=False, stderr=subprocess.DEVNULL)
            for node_dir in batch:
                if node_dir.exists():
                    shutil.rmtree(node_dir, ignore_errors=True)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until queued sandboxes are deleted (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.01)


_CLEANER = _Cleaner()


def _pump(
    process: subprocess.Popen[bytes], log_file: Any, should_kill: Callable[[], str | None]
) -> tuple[bytes, str | None]:
    """Copy stdout to the log (keeping its head as the result) while watching for a kill request."""
    assert process.stdout is not None
    captured = bytearray()
    killed: str | None = None
    kill_sent_at: float | None = None
    stream_open = True
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            if stream_open:
                if selector.select(POLL_SECONDS):
                    chunk = os.read(process.stdout.fileno(), 65536)
                    if chunk:
                        log_file.write(chunk)
                        if len(captured) < RESULT_LIMIT:
                            captured += chunk[: RESULT_LIMIT - len(captured)]
                    else:
                        stream_open = False
                        selector.unregister(process.stdout)
            else:
                try:
                    process.wait(POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    pass
            if killed is None:
                killed = should_kill()
                if killed is not None:
                    _signal_group(process, signal.SIGTERM)
                    kill_sent_at = time.monotonic()
            elif kill_sent_at is not None and time.monotonic() - kill_sent_at > KILL_GRACE_SECONDS:
                _signal_group(process, signal.SIGKILL)
                kill_sent_at = None
    process.stdout.close()
    process.wait()
    return bytes(captured), killed


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
