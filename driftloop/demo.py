"""`make demo`: the most complete loop that exists so far, narrated step by step.

Every stage runs a real command a user could type (printed with ``$``) and checks its outcome; the demo stops at
the first surprise with what went wrong and where to look. It leaves the stack running and can run again on the
same machine (the stack is reused; the new model goes through the evaluation gate like any challenger).
The drift alert then retrains: Prometheus → Alertmanager → the receiver → one retraining workflow → a new model
version whose lineage names the alert, printed as a timeline of each hop. Stage 8 shows promotion through git served
by `driftloop deployer` (canary through the sidecar under traffic, `rollback`, `promote`, `history`); stage 9
renamed-column traffic, whose schema alert pages and never retrains; stage 10 concept drift: the same applicants
under a different risk rule, their outcomes sent late to the receiver's /feedback, input drift quiet, live ROC AUC
down, and the live-quality alert retraining once with trigger=quality.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from driftloop._demo_alerts import (
    QUALITY_ALERT,
    alert_retrains,
    drift_alert_retrains,
    quiet_after_baseline,
    schema_change_pages_no_retrain,
)
from driftloop._demo_approver import DemoApprover
from driftloop._demo_gitops import show_gitops
from driftloop._demo_support import MODEL, SETTINGS, DemoStopped, driftloop, stage, wait_for
from features.generator import SCENARIOS
from monitors.sidecar.champion import champion_version
from workflows.engine.console import console_url

__all__ = ["main"]

# 20 req/s x 10 s x 12 rows = 2,400 rows per burst: more than the default window, so it holds only that burst
TRAFFIC = ["--rps", "20", "--duration", "10", "--batch", "12"]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (metric name, sorted labels) -> value


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


def send_traffic_and_wait(scenario: str, *extra: str) -> Samples:
    """Replay a burst (``extra``: more `driftloop traffic` options), wait until the lake holds it, then for an
    evaluation that started after that."""
    sent_from = datetime.now(UTC)
    driftloop("traffic", "--scenario", scenario, *TRAFFIC, *extra)
    window = SETTINGS.monitor_window_rows
    print(
        f"   waiting for the model server's shipper to write the burst to the lake ({SETTINGS.lake_uri})…", flush=True
    )
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
    names = ("driftloop_dataset_drift", "driftloop_drift_share", "driftloop_window_rows")
    for (name, labels), value in sorted(
        samples.items(), key=lambda item: names.index(item[0][0]) if item[0][0] in names else 9
    ):
        if (
            name in names and dict(labels).get("model") == MODEL
        ):  # the lines curl shows, labels (model, version) and all
            shown = ",".join(f'{key}="{label}"' for key, label in labels)
            print(f"   {name}{{{shown}}} {value}")
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


def run_demo() -> None:
    stage("1. compile the Hera pipelines into validated Argo YAML; register the features in Feast")
    driftloop("compile")
    # the feature service is the schema in force: the promotion gate compares each model's signature with it
    # (without a registry the gate falls back to the schema declared in code, and says so in every promote log)
    driftloop("features", "apply")
    stage("2. start the local stack: MLflow, the Argo engine, the model server (capturing payloads in process), "
          "the routing sidecar, drift monitor, Prometheus, Alertmanager and the retrain receiver")  # fmt: skip
    driftloop("stack", "up")
    print("   production promotions wait for a person's approval (DRIFTLOOP_APPROVAL_ENVIRONMENTS); the demo's reviewer "
          "approves each waiting run with `driftloop approve RUN --by demo`")  # fmt: skip
    with DemoApprover():
        _from_training()


def _from_training() -> None:
    stage("3. train a model; the evaluation gate decides whether it becomes the champion")
    before = champion_version(SETTINGS.mlflow_uri, MODEL)
    trained = driftloop("submit", "training", "--wait", quiet=True)
    champion = champion_version(SETTINGS.mlflow_uri, MODEL)
    if champion is None:
        raise DemoStopped("training ended without a champion; see `driftloop runs get @latest`")
    moved = "new champion" if champion != before else "the gate kept the current champion"
    print(f"   models:/{MODEL}@champion = version {champion} ({moved})")
    if run := re.search(r"^Name:\s+(\S+)", trained.stdout + trained.stderr, re.MULTILINE):
        print(f"   console: {console_url(SETTINGS.argo_server, 'workflows', SETTINGS.namespace, run.group(1))}")
    if before is not None and champion != before:  # the model server notices within ~5 s, then restarts
        with contextlib.suppress(DemoStopped):  # or it restarted before we looked
            wait_for("the model server to restart", lambda: None if model_server_ready() else True, 20)
    wait_for("the model server to serve the champion", model_server_ready, 300)
    stage("4. baseline traffic through the sidecar, then the monitor's verdict: no drift, no alert, no retrain")
    baseline_from = time.time()
    show_drift(send_traffic_and_wait("baseline"), expected=0)
    quiet_after_baseline(baseline_from)
    stage("5. covariate-shift traffic (younger, poorer, more indebted applicants)")
    shifted_from = time.time()
    samples = send_traffic_and_wait("covariate-shift")
    show_drift(samples, expected=1)
    top_drifted(samples)
    show_report(shifted_from)
    stage("6. the drift alert retrains: Prometheus → Alertmanager → receiver → workflow → registry")
    drift_alert_retrains(shifted_from)
    stage("7. the seeds' incident: a renamed column in the training data must be stopped at the data gate")
    champion = champion_version(SETTINGS.mlflow_uri, MODEL)  # the retrain may have promoted a new one
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
    # last: while the deployer canaries a new version, renamed-column traffic would be judged by its analysis too
    stage("9. schema-change traffic (renamed columns): the schema alert pages a human and starts no retrain")
    schema_change_pages_no_retrain(TRAFFIC)
    # the promote gate compares a new model with the latest payloads: leave them in the schema, or a re-run's
    # training would (rightly) refuse to promote a model the renamed-column clients could not call
    print("   the client is fixed: baseline traffic again, so the latest payloads match the schema in force")
    show_drift(send_traffic_and_wait("baseline"), expected=0)
    concept_drift()
    print(f"\n   console: {console_url(SETTINGS.argo_server, 'workflows')} (the runs), "
          f"{console_url(SETTINGS.argo_server, 'models', MODEL)} (the model)")  # fmt: skip
    print(f"   log in once with the engine's token: {SETTINGS.home / 'engine' / 'token'} (the login form, or ?token=)")


def show_quality(samples: Samples) -> float:
    """The live-quality lines of the serving version (the one with labelled rows); its live ROC AUC."""
    names = ("driftloop_live_auc", "driftloop_evaluation_auc", "driftloop_live_labelled_rows")
    print(f"$ curl -s {SETTINGS.monitor_url}/metrics | grep -E 'live_auc|evaluation_auc|live_labelled_rows'")
    labelled = {dict(labels).get("version") for (name, labels), value in samples.items()
                if name == "driftloop_live_labelled_rows" and dict(labels).get("model") == MODEL and value > 0}  # fmt: skip
    for (name, labels), value in sorted(samples.items(), key=lambda item: (dict(item[0][1]).get("version", ""),
                                                                           item[0][0])):  # fmt: skip
        if name in names and dict(labels).get("model") == MODEL and dict(labels).get("version") in labelled:
            shown = ",".join(f'{key}="{label}"' for key, label in labels)
            print(f"   {name}{{{shown}}} {value:.4g}")
    live = metric(samples, "driftloop_live_auc")
    if live is None:
        raise DemoStopped("the monitor exports no live ROC AUC: no outcome was joined (`driftloop stack logs monitor`)")
    return live


def concept_drift() -> None:
    """Stage 10: labels, not inputs, moved; only the joined outcomes can see it."""
    stage("10. concept drift: the same applicants under a different risk rule; their outcomes arrive 2 s late")
    wait_for("the model server to serve the champion", model_server_ready, 300)
    since = time.time()
    samples = send_traffic_and_wait("concept-drift", "--with-outcomes", "--outcome-delay", "2")
    show_drift(samples, expected=0)  # the inputs did not move: input drift cannot see this
    live = show_quality(samples)
    print(f"   input drift stays quiet; live ROC AUC {live:.3f} against outcomes joined by request id")
    stage("10b. the live-quality alert retrains: monitor → Prometheus → Alertmanager → receiver → workflow (quality)")
    alert_retrains(since, QUALITY_ALERT, "quality", "first concept-drift request sent")


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
