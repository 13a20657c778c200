"""`make demo`: the most complete loop that exists so far, narrated step by step.

Every stage runs a real command a user could type (printed with ``$``) and checks its outcome; the demo stops at
the first surprise with what went wrong and where to look. It leaves the stack running and can run again on the
same machine (the stack is reused; the new model goes through the evaluation gate like any challenger).
The drift alert then retrains: Prometheus → Alertmanager → the receiver → one retraining workflow → a new model
version whose lineage names the alert, printed as a timeline of each hop. Stage 8 shows promotion through git served
by `driftloop deployer` (canary through the sidecar under traffic, `rollback`, `promote`, `history`).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from driftloop.config import get_settings
from features.generator import SCENARIOS
from monitors.sidecar.champion import champion_version
from workflows.engine.console import console_url

__all__ = ["main"]

SETTINGS = get_settings()
MODEL = SETTINGS.model_name
# 20 req/s x 10 s x 12 rows = 2,400 rows per burst: more than the default window, so it holds only that burst
TRAFFIC = ["--rps", "20", "--duration", "10", "--batch", "12"]
T = TypeVar("T")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (metric name, sorted labels) -> value


class DemoStopped(Exception):
    """An unexpected outcome: the demo says what and stops."""


def stage(title: str) -> None:
    print(f"\n== {title}", flush=True)


def driftloop(*args: str, expect_ok: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``driftloop ARGS`` as a user would, echoing it (and its output unless ``quiet``)."""
    print(f"$ driftloop {' '.join(args)}", flush=True)
    proc = subprocess.run([sys.executable, "-m", "driftloop", *args], capture_output=True, text=True, check=False)
    if not quiet or (expect_ok and proc.returncode != 0):
        print((proc.stdout + proc.stderr).rstrip(), flush=True)
    if expect_ok and proc.returncode != 0:
        raise DemoStopped(f"`driftloop {' '.join(args)}` exited {proc.returncode} (its output is above)")
    return proc


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float) -> T:
    """Poll until ``probe`` returns something truthy; stop the demo after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (value := probe()) is None:
        if time.monotonic() > deadline:
            raise DemoStopped(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(1)
    return value


def scrape() -> Samples:
    """The monitor's samples, keyed by (name, sorted labels); empty when it does not answer."""
    try:
        text = httpx.get(f"{SETTINGS.monitor_url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    families = text_string_to_metric_families(text)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples}


def metric(samples: Samples, name: str) -> float | None:
    """The first sample of ``name`` for our model (or with no model label, like the last-success timestamp)."""
    mine = (
        value for (key, labels), value in samples.items() if key == name and dict(labels).get("model", MODEL) == MODEL
    )
    return next(mine, None)


def model_server_ready() -> bool | None:
    try:
        return httpx.get(f"{SETTINGS.model_server_url}/ping", timeout=5).status_code == 200 or None
    except httpx.HTTPError:
        return None


def lake_rows_since(since: datetime) -> int:
    from monitors.lake import read_window

    return len(read_window(SETTINGS.lake_uri, MODEL, since=since).frame)


def send_traffic_and_wait(scenario: str) -> Samples:
    """Replay a burst, wait until the lake holds it, then for an evaluation that started after that."""
    sent_from = datetime.now(UTC)
    driftloop("traffic", "--scenario", scenario, *TRAFFIC)
    window = SETTINGS.monitor_window_rows
    print(f"   waiting for the sidecar to write the burst to the lake ({SETTINGS.lake_uri})…", flush=True)
    wait_for("the burst in the lake", lambda: lake_rows_since(sent_from) >= window or None, 120)
    landed = time.time()
    print(f"   waiting for the monitor's next evaluation (every {SETTINGS.monitor_interval:g} s)…", flush=True)
    timeout = 2 * SETTINGS.monitor_interval + 120

    def success_after(moment: float) -> float | None:
        last = metric(scrape(), "driftloop_monitor_last_success_timestamp_seconds")
        return last if last is not None and last > moment else None

    first = wait_for("an evaluation", lambda: success_after(landed), timeout)
    wait_for("the evaluation after it", lambda: success_after(first), timeout)
    return scrape()


def show_drift(samples: Samples, expected: float) -> None:
    print(f"$ curl -s {SETTINGS.monitor_url}/metrics | grep -E 'dataset_drift|drift_share|window_rows'")
    for name in ("driftloop_dataset_drift", "driftloop_drift_share", "driftloop_window_rows"):
        print(f'   {name}{{model="{MODEL}"}} {metric(samples, name)}')
    if metric(samples, "driftloop_dataset_drift") != expected:
        raise DemoStopped(f"expected driftloop_dataset_drift {expected:g}; see `driftloop stack logs monitor`")


def top_drifted(samples: Samples) -> None:
    drifted = {dict(labels)["feature"] for (name, labels), value in samples.items()
               if name == "driftloop_feature_drifted" and value == 1}  # fmt: skip
    scores = sorted(((value, dict(labels)) for (name, labels), value in samples.items()
                     if name == "driftloop_feature_drift_score" and dict(labels)["feature"] in drifted),
                    key=lambda pair: -pair[0])  # fmt: skip
    print("   drifted features (score by the test Evidently picks):")
    for value, labels in scores[:5]:
        print(f"     {labels['feature']:<22} {labels['method']:<14} {value:.3f}")


def show_report(since: float) -> None:
    def newest(since: float) -> Path | None:
        found = sorted((SETTINGS.home / "reports").glob(f"{MODEL}-v*.html"), key=lambda path: path.stat().st_mtime)
        return found[-1] if found and found[-1].stat().st_mtime >= since else None

    try:
        print(f"   Evidently HTML report: {wait_for('the HTML report', lambda: newest(since), 90)}")
    except DemoStopped:  # at most one report per model version per 10 minutes: a quick re-run reuses the last
        print(f"   no new report (at most one per version per 10 min); latest: {newest(0)}")


def drift_alert_retrains(shifted_from: float) -> None:
    """Follow the incident through each hop and print when each one happened, relative to the first drifted request."""
    from mlflow.tracking import MlflowClient

    from monitors.receiver.timeline import alertmanager_alert, decision_for, parse_time, prometheus_alert
    from workflows.client import ArgoClient

    name = "DriftloopFeatureDrift"
    print(f"   waiting for Alertmanager ({SETTINGS.alertmanager_url}) to hold the {name} alert…", flush=True)
    alert = wait_for("the drift alert in Alertmanager", lambda: alertmanager_alert(SETTINGS, name, MODEL), 120)
    fingerprint = alert["fingerprint"]
    decision = wait_for("the receiver's decision", lambda: decision_for(SETTINGS, fingerprint), 60)
    print(f"$ driftloop trigger history   →  {decision['decision']}: {decision['reason']}")
    timeline: list[tuple[str, float | None]] = [("first drifted request sent", shifted_from)]
    rule = prometheus_alert(SETTINGS, name, MODEL) or {}
    timeline.append(("Prometheus: rule true (pending)", parse_time(rule.get("activeAt"))))
    timeline.append(("Alertmanager: alert received", parse_time(alert.get("startsAt"))))
    timeline.append(("receiver: decision recorded", parse_time(decision["time"])))
    if decision["decision"] == "submit":
        client = ArgoClient(get_settings(), autostart=False)  # now: the engine wrote its token after import
        workflow = decision["workflow"]
        print(
            f"   retraining workflow {workflow} (trigger=drift, trigger-ref={fingerprint}); waiting for it…", flush=True
        )
        final = client.wait(workflow, timeout=1800, poll_seconds=2)
        status = final.get("status") or {}
        timeline.append(("workflow: created", parse_time(final["metadata"].get("creationTimestamp"))))
        timeline.append(("workflow: started", parse_time(status.get("startedAt"))))
        timeline.append((f"workflow: {status.get('phase')}", parse_time(status.get("finishedAt"))))
        versions = MlflowClient(SETTINGS.mlflow_uri).search_model_versions(f"name='{MODEL}'")
        mine = [v for v in versions if v.tags.get("trigger_ref") == fingerprint]
        if not mine:
            raise DemoStopped(f"no model version has trigger_ref={fingerprint}; see `driftloop runs get {workflow}`")
        version = mine[0]
        timeline.append((f"MLflow: version {version.version} registered", version.creation_timestamp / 1000))
        print(f"   models:/{MODEL}/{version.version}: trigger={version.tags.get('trigger')} "
              f"trigger_ref={version.tags.get('trigger_ref')} (the alert's fingerprint in Alertmanager) "
              f"drifted_features={version.tags.get('drifted_features', '[]')}")  # fmt: skip
        print(f"   console: {console_url(SETTINGS.argo_server, 'workflows', SETTINGS.namespace, workflow)}")
    else:
        print(f"   no new retrain this time ({decision['decision']}): {decision['reason']}")
    print("   timeline (seconds after the first drifted request):")
    for label, moment in timeline:
        print(f"     {'-' if moment is None else f'{moment - shifted_from:+7.1f}'}  {label}")


def run_demo() -> None:
    stage("1. compile the Hera pipelines into validated Argo YAML")
    driftloop("compile")
    stage("2. start the local stack: MLflow, the Argo engine, model server, sidecar, drift monitor, Prometheus, "
          "Alertmanager and the retrain receiver")  # fmt: skip
    driftloop("stack", "up")
    stage("3. train a model; the evaluation gate decides whether it becomes the champion")
    before = champion_version(SETTINGS.mlflow_uri, MODEL)
    driftloop("submit", "training", "--wait", quiet=True)
    champion = champion_version(SETTINGS.mlflow_uri, MODEL)
    if champion is None:
        raise DemoStopped("training ended without a champion; see `driftloop runs get @latest`")
    moved = "new champion" if champion != before else "the gate kept the current champion"
    print(f"   models:/{MODEL}@champion = version {champion} ({moved})")
    if before is not None and champion != before:  # the model server notices within ~5 s, then restarts
        with contextlib.suppress(DemoStopped):  # or it restarted before we looked
            wait_for("the model server to restart", lambda: None if model_server_ready() else True, 20)
    wait_for("the model server to serve the champion", model_server_ready, 300)
    stage("4. baseline traffic through the sidecar, then the monitor's verdict")
    show_drift(send_traffic_and_wait("baseline"), expected=0)
    stage("5. covariate-shift traffic (younger, poorer, more indebted applicants)")
    shifted_from = time.time()
    samples = send_traffic_and_wait("covariate-shift")
    show_drift(samples, expected=1)
    top_drifted(samples)
    show_report(shifted_from)
    stage("6. the drift alert retrains: Prometheus → Alertmanager → receiver → workflow → registry")
    drift_alert_retrains(shifted_from)
    stage("7. the seeds' incident: a renamed column must be stopped at the data gate")
    failed = driftloop("submit", "training", "-p", "dataset=schema-change", "--wait", expect_ok=False, quiet=True)
    if failed.returncode == 0:
        raise DemoStopped("training on the schema-change data succeeded: the data gate let a renamed column through")
    logs = driftloop("runs", "logs", "@latest", "--node", "validate-data", expect_ok=False, quiet=True)
    renamed = [new for _, new in SCENARIOS["schema-change"].renamed]
    lines = [line for line in (logs.stdout + logs.stderr).splitlines() if any(name in line for name in renamed)]
    print("\n".join(f"   {line}" for line in lines[:3]) or "   (no error line in the log)")
    after = champion_version(SETTINGS.mlflow_uri, MODEL)
    if after != champion:
        raise DemoStopped(f"the champion moved from version {champion} to {after} after a failed run")
    print(f"   exit {failed.returncode} as expected; models:/{MODEL}@champion is still version {after}")
    show_gitops(after)
    print(f"\n   console: {console_url(SETTINGS.argo_server, 'workflows')} (the runs), "
          f"{console_url(SETTINGS.argo_server, 'models', MODEL)} (the model)")  # fmt: skip
    print(f"   log in once with the engine's token: {SETTINGS.home / 'engine' / 'token'} (the login form, or ?token=)")


def deployer_status() -> dict[str, object]:
    try:
        answer = httpx.get(f"{SETTINGS.deployer_url}/status", timeout=5)
    except httpx.HTTPError:
        return {}
    return answer.json() if answer.status_code == 200 else {}


def served_by_deployer(version: str) -> bool | None:
    status = deployer_status()
    return (status.get("serving") == version and status.get("phase") == "idle") or None


class BackgroundTraffic:
    """`driftloop traffic` in 5-second bursts on a thread while the deployer swaps versions; every answer counted."""

    COMMAND = ("traffic", "--scenario", "baseline", "--rps", "20", "--duration", "5", "--rows", "200")

    def __init__(self) -> None:
        import threading

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
        import re

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
    import json

    stage("8. promotion through git, served by the deployer (canary through the sidecar), rollback, history")
    events = json.loads(driftloop("history", MODEL, "--json", quiet=True).stdout or "[]")
    if champion is None or not events:
        raise DemoStopped("no promotion recorded in the GitOps repository; see `driftloop history`")
    with BackgroundTraffic() as traffic:
        wait_for(f"the deployer to serve v{champion}", lambda: served_by_deployer(champion), 900)
        print(f"   the deployer serves v{champion} through the sidecar ({SETTINGS.deployer_url}/status)")
        if len({event["version"] for event in events}) >= 2:
            driftloop("rollback", MODEL, "--reason", "make demo: rollback drill")
            restored = str(
                json.loads(driftloop("history", MODEL, "--env", "production", "--json", quiet=True).stdout)[0][
                    "version"
                ]
            )
            wait_for(f"the deployer to canary v{restored} in", lambda: served_by_deployer(restored), 900)
            print(f"   rolled back: registry, git and serving hold v{restored}")
            driftloop("promote", MODEL, "--version", champion)
            wait_for(f"the deployer to canary v{champion} in again", lambda: served_by_deployer(champion), 900)
        else:
            print("   only one version has been champion so far: run `make demo` again to see a rollback")
    answered, failed = traffic.failed()
    print(f"   traffic during the swaps: {answered} requests answered, {failed} failed")
    if failed:
        raise DemoStopped(f"{failed} requests failed while the deployer swapped versions (see `driftloop stack logs "
                          "deployer`)")  # fmt: skip
    driftloop("history", MODEL, "--env", "production")


def main() -> None:
    started = time.monotonic()
    try:
        run_demo()
    except DemoStopped as exc:
        print(f"\ndemo stopped: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"\n== done in {time.monotonic() - started:.0f} s. Where to look:")
    print(f"   MLflow UI:        {SETTINGS.mlflow_uri}")
    print("   workflow runs:    driftloop runs list   (driftloop runs get @latest)")
    print(f"   drift metrics:    {SETTINGS.monitor_url}/metrics   reports: {SETTINGS.home / 'reports'}")
    print(f"   alerts:           {SETTINGS.prometheus_url}/alerts   {SETTINGS.alertmanager_url}")
    print("   retrain triggers: driftloop trigger history")
    print("   the stack keeps running; stop it with: driftloop stack down")


if __name__ == "__main__":
    main()
