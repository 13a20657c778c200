"""Stage 8 of `make demo`: a promotion is a GitOps commit the deployer canaries in through the sidecar under traffic;
then `driftloop rollback` (a new commit, served the same way), `promote` again, and `driftloop history`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime

import httpx

from driftloop._demo_support import MODEL, SETTINGS, DemoStopped, driftloop, stage, wait_for

__all__ = ["show_gitops"]


def deployer_status() -> dict[str, object]:
    try:
        answer = httpx.get(f"{SETTINGS.deployer_url}/status", timeout=5)
    except httpx.HTTPError:
        return {}
    return answer.json() if answer.status_code == 200 else {}


REFUSALS = ("analysis_failed", "smoke_failed", "digest_mismatch")


def served_by_deployer(version: str, since: str = "") -> bool | None:
    """True once the deployer serves ``version``; stops the demo at once when it refused it (at or after ``since``)."""
    status = deployer_status()
    if status.get("serving") == version and status.get("phase") == "idle":
        return True
    if status.get("phase") == "refused" and status.get("pinned") == version:
        raise DemoStopped(
            f"the deployer refuses v{version}: it failed there before and is not retried until git moves on or the "
            "deployer restarts (`driftloop stack down deployer && driftloop stack up deployer`)"
        )
    events = status.get("events")
    for event in events if isinstance(events, list) else []:
        if event.get("version") == version and event.get("event") in REFUSALS and event.get("at", "") >= since:
            raise DemoStopped(
                f"the deployer refused v{version} ({event['event']}: {event.get('message')}); it kept "
                f"v{status.get('serving')} and committed the revert, as an aborted Rollout would (`driftloop history "
                f"{MODEL}`). The canary's p99 limit is 0.5 s: on a machine this loaded (`uptime`), run again when quieter"
            )
    return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # the deployer's event times, to the second


STARTED = _now()  # imported when the demo starts: refusals older than that belong to an earlier run


class BackgroundTraffic:
    """`driftloop traffic` in 20-second bursts on a thread while the deployer swaps versions; every answer counted.

    Long bursts: each burst is a new Python process, whose start-up competes with the model servers for the CPU the
    canary's latency is judged on.
    """

    COMMAND = ("traffic", "--scenario", "baseline", "--rps", "20", "--duration", "20", "--rows", "200")

    def __init__(self) -> None:
        self.outputs: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            proc = subprocess.run([sys.executable, "-m", "driftloop", *self.COMMAND], capture_output=True, text=True)
            self.outputs.append(proc.stdout + proc.stderr)

    def __enter__(self) -> BackgroundTraffic:
        print(f"$ driftloop {' '.join(self.COMMAND)}   # repeated in the background during the swaps", flush=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def failed(self) -> tuple[int, int]:
        """(answered requests, requests that were not 2xx or got no answer), from every burst's summary."""
        answered = failed = 0
        for output in self.outputs:
            sent = re.search(r"sent (\d+) requests", output)
            ok = re.search(r"answered (\d+) \((\d+) ok\)", output)
            if sent and ok:
                answered += int(ok.group(1))
                failed += int(sent.group(1)) - int(ok.group(2))
        return answered, failed


def show_gitops(champion: str | None) -> None:
    """Stage 8: a promotion is a GitOps commit the deployer canaries through the sidecar; rollback too; history."""
    stage("8. promotion through git, served by the deployer (canary through the sidecar), rollback, history")
    events = json.loads(driftloop("history", MODEL, "--json", quiet=True).stdout or "[]")
    if champion is None or not events:
        raise DemoStopped("no promotion recorded in the GitOps repository; see `driftloop history`")
    with BackgroundTraffic() as traffic:
        wait_for(f"the deployer to serve v{champion}", lambda: served_by_deployer(champion, STARTED), 900)
        print(f"   the deployer serves v{champion} through the sidecar ({SETTINGS.deployer_url}/status)")
        if len({event["version"] for event in events}) >= 2:
            asked = _now()
            driftloop("rollback", MODEL, "--reason", "make demo: rollback drill")
            restored = str(
                json.loads(driftloop("history", MODEL, "--env", "production", "--json", quiet=True).stdout)[0][
                    "version"
                ]
            )
            wait_for(f"the deployer to canary v{restored} in", lambda: served_by_deployer(restored, asked), 900)
            print(f"   rolled back: registry, git and serving hold v{restored}")
            asked = _now()
            driftloop("promote", MODEL, "--version", champion)
            wait_for(f"the deployer to canary v{champion} in again", lambda: served_by_deployer(champion, asked), 900)
        else:
            print("   only one version has been champion so far: run `make demo` again to see a rollback")
    answered, failed = traffic.failed()
    print(f"   traffic during the swaps: {answered} requests answered, {failed} failed")
    if failed:
        raise DemoStopped(f"{failed} requests failed while the deployer swapped versions (see `driftloop stack logs "
                          "deployer`)")  # fmt: skip
    driftloop("history", MODEL, "--env", "production")
