"""The local stand-in for Argo CD + Argo Rollouts: follow the GitOps branch, canary each new pin through the sidecar.

On a new pin of its environment (``manifests/serving/overlays/<env>/model-pin.yaml`` at the branch head):

1. **verify** — download the model and recompute its sha256 (``workflows/gitops/verify.py``, the init container's
   check); a mismatch is refused, logged and counted, and nothing starts;
2. **start** the new version's model server beside the old one, on a free port, on the verified directory: MLflow's
   scoring app capturing in process, its shipper as a child (``driftloop scoring-server --ship``; the stack's sidecar
   only routes), so each answer lands in the lake once, stamped with the version that gave it;
3. **smoke-test** it with the reference sample (one finite prediction per row);
4. **canary** — shift a share of the sidecar's traffic to it (the routing file, ``monitors/sidecar/_routes.py``) for
   each step of ``DRIFTLOOP_DEPLOYER_CANARY_STEPS`` and judge the window with the AnalysisTemplate's conditions
   (``analysis.py``: the sidecar's and the monitor's metrics); a first deployment skips the steps, like a Rollout;
5. **promote** — all traffic to the new one, wait until the sidecar has no request in flight to the old one, stop it.

A failed smoke test or analysis sends all traffic back to the old version, stops the new one and records a
``deployer-rollback`` commit (a new commit pinning the old version, never a rewrite) — the git revert Argo CD lacks.
State (``$DRIFTLOOP_HOME/deployer/state.json``) is written after every change: a restarted deployer adopts the
servers still running (a canary it left half-way too, canaried again) and converges on the pinned version.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop.config import Settings
from driftloop.errors import ConflictError, DriftloopError
from monitors.deployer._servers import (
    ModelServer,
    SmokeFailed,
    monitor_reading,
    route_window,
    ship_leftovers,
    sidecar_routing,
    smoke_test,
    stop_servers,
)
from monitors.deployer._state import (
    DeployerMetrics,
    file_generation,
    routes_file,
    scrape_targets_file,
    state_file,
    write_atomic,
)
from monitors.deployer.analysis import Verdict, conditions, judge, local_values
from monitors.sidecar._routes import DEFAULT_ROUTE
from workflows.gitops.pin import ModelPin

__all__ = ["Deployer", "DeployerOptions", "routes_file"]

log = logging.getLogger("driftloop.deployer")


@dataclass(frozen=True)
class DeployerOptions:
    environment: str = "production"
    canary_steps: tuple[int, ...] = (10, 50)
    canary_window_s: float = 10.0  # each step lasts at least this long…
    analysis_timeout_s: float = 1800.0  # …and at most this long without a verdict (then: abort, never a silent pass)
    poll_s: float = 2.0
    start_timeout_s: float = 180.0


class Deployer:
    """One environment of one model; ``run()`` loops until ``stop`` is set."""

    def __init__(self, settings: Settings, options: DeployerOptions) -> None:
        from workflows.gitops.promotion import gitops_repo

        self.settings, self.options = settings, options
        self.model = settings.model_name
        self.dir = settings.home / "deployer"
        self.routes_path = routes_file(settings.home)
        self.state_path = state_file(settings.home)
        self.repo = gitops_repo()
        self.metrics = DeployerMetrics()
        self.checks = conditions(settings)  # the AnalysisTemplate's, with this deployment's thresholds
        self.servers: dict[str, ModelServer] = {}
        self.serving: str | None = None
        self.generation = 0
        self.seen_head = ""
        self.failed: set[tuple[str, str]] = set()  # (version, sha256) pins not to retry until git moves on
        self.retry_at = 0.0
        self._labelled: set[str] = set()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.status: dict[str, Any] = {"phase": "starting", "serving": None, "pinned": None, "last_event": None,
                                       "events": []}  # fmt: skip

    # -- status -----------------------------------------------------------------------------------------------
    def _set(self, **values: Any) -> None:
        with self._lock:
            self.status.update(values)

    def _event(self, event: str, version: str, message: str) -> None:
        (log.info if event == "deployed" else log.error)("%s v%s: %s", event, version, message)
        self.metrics.events.labels(event=event).inc()
        record = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, "version": version,
                  "message": message}  # fmt: skip
        with self._lock:
            self.status["last_event"] = record
            self.status["events"] = [record, *self.status["events"]][:20]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            servers = {v: s.as_dict() for v, s in self.servers.items()}
            return {**self.status, "model": self.model, "environment": self.options.environment,
                    "serving": self.serving, "servers": servers, "routes_file": str(self.routes_path)}  # fmt: skip

    # -- persistent state ---------------------------------------------------------------------------------------
    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        state = {"serving": self.serving, "generation": self.generation,
                 "servers": [s.as_dict() for s in self.servers.values()]}  # fmt: skip
        write_atomic(self.state_path, json.dumps(state, indent=2))
        targets = [{"targets": [f"127.0.0.1:{s.port}"], "labels": {"version": s.version}}
                   for s in self.servers.values()]  # fmt: skip
        write_atomic(scrape_targets_file(self.settings.home), json.dumps(targets))
        for version in self._labelled:  # no .clear(): it is not implemented in prometheus' multi-process mode
            self.metrics.serving.labels(version=version).set(0)
        if self.serving is not None:
            self._labelled.add(self.serving)
            self.metrics.serving.labels(version=self.serving).set(1)

    def recover(self) -> None:
        """Adopt the model servers a previous run left (alive and ours); stop the others' records.

        After a crash mid-canary the sidecar may still send the canary a share: all traffic goes back to the version
        that was serving and the canary is drained; ``step`` then adopts its server if git still pins it (``_adopt``:
        digest re-checked, canary steps from the first) and stops it otherwise. The routing generation goes on from
        the highest written, so the sidecar never takes the file for one it already applied.
        """
        try:
            state = json.loads(self.state_path.read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        self.generation = max(int(state.get("generation", 0)), file_generation(self.routes_path))
        for record in state.get("servers", []):
            server = ModelServer(str(record["version"]), int(record["port"]), int(record["pid"]), record["model_dir"],
                                 str(record.get("spool_dir", "")))  # fmt: skip
            if server.is_ours() and server.ready():
                self.servers[server.version] = server
        self._ship_orphaned_spools()
        serving = state.get("serving")
        self.serving = serving if serving in self.servers else None
        interrupted = [v for v in self.servers if v != self.serving]  # a canary interrupted by the crash
        if self.serving is not None:
            log.info("adopted v%s (pid %d) from the previous run", self.serving, self.servers[self.serving].pid)
            try:  # like a promotion: weight 0 first, wait until nothing is in flight to it, then out of the file
                self._route({self.serving: 100.0, **dict.fromkeys(interrupted, 0.0)})
                for version in interrupted:
                    self._drained(f"v{version}")
                self._route({self.serving: 100.0})
            except TimeoutError as exc:
                log.warning("%s; the interrupted canary may still get requests", exc)
        elif self.routes_path.exists():
            self.routes_path.unlink()  # it points at servers that are gone: back to the sidecar's --upstream
        if self.serving is None:
            for version in interrupted:  # nothing to fall back on: a first deployment is simply started again
                self._retire(version)
        self._save()

    # -- traffic -----------------------------------------------------------------------------------------------
    def _route(self, weights: dict[str, float], wait: bool = True) -> None:
        """Write the routing file (version -> weight) and wait until the sidecar runs it."""
        self.generation += 1
        routes = [{"name": f"v{v}", "url": self.servers[v].url, "weight": w, "model_version": v}
                  for v, w in weights.items()]  # fmt: skip
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.routes_path, json.dumps({"generation": self.generation, "routes": routes}))
        canary = [w for v, w in weights.items() if v != self.serving and w < 100]
        self.metrics.canary_weight.set(canary[0] if canary else 0)
        if wait:
            self._wait_sidecar(
                lambda r: r.get("generation") == self.generation, f"routing generation {self.generation}"
            )

    def _wait_sidecar(self, done: Any, what: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.stop.is_set():
            routing = sidecar_routing(self.settings.serving_url)
            if routing is not None and done(routing):
                return
            time.sleep(0.1)
        raise TimeoutError(f"the sidecar at {self.settings.serving_url} did not reach {what} within {timeout_s:g}s")

    def _drained(self, name: str) -> None:
        """Wait until no request to route ``name`` is in flight (it has weight 0 or left the file)."""

        def idle(routing: dict[str, Any]) -> bool:
            return all(r["inflight"] == 0 for r in routing.get("routes", []) if r["name"] == name)

        self._wait_sidecar(idle, f"no request in flight to {name}", timeout_s=60.0)

    # -- the loop ------------------------------------------------------------------------------------------------
    def run(self) -> None:
        self.recover()
        while not self.stop.is_set():
            try:
                self.step()
            except Exception as exc:  # git or the registry unreachable: say so, keep serving, try again
                log.exception("deployer step failed")
                self._set(phase="error", error=str(exc))
                self.seen_head = ""
            self.stop.wait(self.options.poll_s)

    def step(self) -> None:
        from workflows.gitops.promotion import current_pin

        if time.monotonic() < self.retry_at:
            return
        head = self.repo.head()
        if head == self.seen_head:
            return
        pin = current_pin(self.repo, self.model, self.options.environment)
        self.seen_head = head
        self._set(pinned=pin.model_version if pin.is_pinned else None, head=head, error=None)
        for version in [v for v in self.servers if v not in (self.serving, pin.model_version)]:
            self._retire(version)  # a canary a crash left (see recover) that git has moved on from
            self._save()
        if not pin.is_pinned or pin.model_version == self.serving:
            self._set(phase="idle")
            return
        if (pin.model_version, pin.sha256) in self.failed:
            self._set(phase="refused")
            return
        self.deploy(pin)

    def deploy(self, pin: ModelPin) -> None:
        from workflows.gitops.verify import verified_download

        version = pin.model_version
        self._set(phase="verifying", target=version)
        new = self._adopt(pin)
        if new is None:
            try:
                model_dir = verified_download(pin, self.dir / "models" / f"v{version}")
            except ConflictError as exc:
                self.failed.add((version, pin.sha256))
                self._event("digest_mismatch", version, exc.message)
                self._set(phase="refused")
                return
            self._set(phase="starting-server")
            log_file = self.dir / "logs" / f"v{version}.log"
            new = ModelServer.start(version, model_dir, log_file, self.settings)
            self.servers[version] = new
            self._save()
        old = self.serving
        steps = self.options.canary_steps if old is not None else ()  # a first deployment skips the steps
        try:
            try:
                new.wait_ready(self.options.start_timeout_s, self.stop.is_set)
                self._set(phase="smoke-test")
                log.info("v%s: %s", version, smoke_test(new.url))
            except SmokeFailed as exc:
                self._abort(pin, "smoke_failed", f"smoke test failed: {exc}")
                return
            for share in steps:
                self._set(phase=f"canary {share}%")
                assert old is not None
                self._route({old: 100.0 - share, version: float(share)})
                verdict = self._analyse(f"v{version}", share, version)
                if verdict.outcome != "pass":
                    failed = ", ".join(verdict.failed) or "no verdict"  # the conditions that stopped it, by name
                    self._abort(pin, "analysis_failed",
                                f"canary at {share}%: {verdict.outcome} ({failed}): {verdict.reason}")  # fmt: skip
                    return
            self._promote(version, old)
        except Exception as exc:  # the sidecar or git unreachable, a timeout: not the model's fault; retried later
            log.exception("v%s: deployment interrupted", version)
            self._abort(pin, "error", f"{type(exc).__name__}: {exc}", commit=False)
            self.retry_at = time.monotonic() + 30.0
            self.seen_head = ""
            return
        self._event(
            "deployed", version, f"serving all traffic (canary steps: {list(steps) or 'none, first deployment'})"
        )

    def _adopt(self, pin: ModelPin) -> ModelServer | None:
        """The pinned version's server a crashed run left mid-canary, if it answers and its directory still has the
        pin's sha256 (recomputed here): canaried again from the first step without a new download and start."""
        from workflows.gitops.digest import model_digest

        spare = self.servers.get(pin.model_version)
        if spare is None:
            return None
        if spare.ready() and model_digest(Path(spare.model_dir)) == pin.sha256:
            log.info("v%s: adopting its model server (pid %d) left by the previous run", spare.version, spare.pid)
            return spare
        self._retire(spare.version)
        return None

    def _analyse(self, route: str, share: int, version: str | None = None) -> Verdict:
        """The AnalysisTemplate's conditions on this step's window; inconclusive past the timeout aborts."""
        version = version or route.removeprefix("v")
        sidecar, monitor, model = self.settings.serving_url, self.settings.monitor_url, self.settings.model_name
        start, began = route_window(sidecar, route), time.monotonic()
        monitor_start = monitor_reading(monitor, model)
        while True:
            self.stop.wait(0.5)
            canary = route_window(sidecar, route).since(start)
            monitor_now = monitor_reading(monitor, model)
            if monitor_start is None:  # the monitor was not up when the window began: its counters start now
                monitor_start = monitor_now
            values, notes = local_values(self.settings.deployer_min_requests, canary, version, monitor_start,
                                         monitor_now, min_p99_requests=self.settings.deployer_min_p99_requests)  # fmt: skip
            verdict = judge(self.checks, values, notes)
            elapsed = time.monotonic() - began
            requests, errors, p99 = canary
            self._set(analysis={"route": route, "share": share, "requests": requests, "errors": errors, "p99_s": p99,
                                "verdict": verdict.outcome, "elapsed_s": round(elapsed, 1),
                                "conditions": [m.__dict__ for m in verdict.measurements]})  # fmt: skip
            if verdict.outcome == "fail" or (verdict.outcome == "pass" and elapsed >= self.options.canary_window_s):
                return verdict
            if elapsed >= self.options.analysis_timeout_s or self.stop.is_set():
                return Verdict("inconclusive", f"{verdict.reason} within {elapsed:.0f}s; send traffic while a "
                                               "promotion runs (`driftloop traffic`)", verdict.measurements)  # fmt: skip

    def _promote(self, version: str, old: str | None) -> None:
        self._set(phase="promoting")
        if old is None:
            self._route({version: 100.0})
            self._drained(DEFAULT_ROUTE)
        else:
            self._route({version: 100.0, old: 0.0})
            self._drained(f"v{old}")
            self._route({version: 100.0})
            self._retire(old)
        self.serving = version
        self._save()
        self._set(phase="idle", target=None)

    def _abort(self, pin: ModelPin, event: str, reason: str, commit: bool = True) -> None:
        """Old version keeps (or gets back) all traffic; the new one stops; git pins the old one again."""
        version = pin.model_version
        if self.stop.is_set():  # interrupted by a stop, not failed: no verdict on the model, retried after a restart
            commit, event, reason = False, "error", f"interrupted by a stop ({reason})"
        new = self.servers.get(version)
        if self.serving is None and self.routes_path.exists():
            self.routes_path.unlink()  # a first deployment that failed half-way: back to the sidecar's --upstream
        if self.serving is not None and new is not None and self.routes_path.exists():
            self._route({self.serving: 100.0}, wait=False)
            try:
                self._drained(f"v{version}")
            except TimeoutError:
                log.warning("the sidecar did not confirm the canary drained; stopping it anyway")
        if new is not None and not self.stop.is_set():  # when stopping, shutdown() stops every server at once
            self._retire(version)
        self._save()
        if commit:  # an infrastructure timeout is retried later; a failed model is not
            self.failed.add((version, pin.sha256))
        self._event(event, version, reason)
        self._set(phase="rolled-back" if commit else "error", target=None)
        if commit and self.serving is not None:
            self._rollback_commit(reason)

    def _retire(self, version: str) -> None:
        """Stop a version's model server and delete its verified copy (a later deployment verifies afresh)."""
        server = self.servers.pop(version)
        server.stop()
        shutil.rmtree(server.model_dir, ignore_errors=True)
        if server.spool_dir and not ship_leftovers(Path(server.spool_dir), self.settings):
            log.warning("v%s: segments left in %s (is the lake down?); shipped at the next start", version,
                        server.spool_dir)  # fmt: skip

    def _ship_orphaned_spools(self) -> None:
        """Spools of servers that are gone (a crash, a lake outage at their stop): their payloads go to the lake."""
        kept = {server.spool_dir for server in self.servers.values()}
        for spool in sorted((self.dir / "spool").glob("v*")):
            if str(spool) not in kept and spool.is_dir() and not ship_leftovers(spool, self.settings):
                log.warning("segments left in %s (is the lake down, or its shipper still running?)", spool)

    def _rollback_commit(self, reason: str) -> None:
        from workflows.gitops.promotion import rollback
        from workflows.steps._registry import connect

        try:
            change = rollback(connect(), self.model, to=self.serving, environment=self.options.environment,
                              event="deployer-rollback", reason=reason[:300], who="driftloop-deployer")  # fmt: skip
        except DriftloopError as exc:
            log.error("could not record the rollback commit: %s", exc.message)
            return
        log.info("rollback commit %s pins v%s again", (change.commit or "")[:12], self.serving)

    def shutdown(self) -> None:
        """A clean stop: the sidecar falls back to its --upstream, the model servers stop."""
        if self.routes_path.exists():
            self.routes_path.unlink()
            time.sleep(0.3)
            for server in self.servers.values():
                try:
                    self._drained(f"v{server.version}")
                except TimeoutError:
                    break
        stop_servers(list(self.servers.values()), timeout_s=40.0)
        for server in self.servers.values():
            if server.spool_dir:
                ship_leftovers(Path(server.spool_dir), self.settings)
        self.servers.clear()
        self.serving = None
        self._save()
