"""The conformance corpus: Argo's own examples (``../shared/argo-workflows``), the phase Argo expects for each,
and a parallel runner that executes them on the embedded engine.

Expected phases come from ``EXAMPLES.tsv``'s ``argo_e2e`` column (``TestExampleWorkflows: Succeeded``); for
examples Argo's e2e suite skips, from the behaviour the example itself documents (table below, with reasons).
"""

from __future__ import annotations

import csv
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from driftloop.config import get_settings
from workflows.engine.runner import EngineContext, RunControl, run_workflow

__all__ = ["KNOWN_DIFFERENCES", "Case", "CaseResult", "load_cases", "run_cases", "template_resolver"]

RANDOM = "Succeeded|Failed"
CASE_TIME_CAP_SECONDS = 200.0

# file -> (expected phase, why) for examples Argo's e2e suite does not run.
DOCUMENTED: dict[str, tuple[str, str]] = {
    "examples/continue-on-fail.yaml": (
        "Succeeded",
        "continueOn.failed on the failing step (Argo's TestContinueOnFail)",
    ),
    "examples/dag-continue-on-fail.yaml": ("Failed", "E fails and G (depends E && F) is omitted: unhandled failure"),
    "examples/dag-disable-failFast.yaml": ("Failed", "B fails on purpose; failFast: false only lets the rest run"),
    "examples/dag-task-level-timeout.yaml": ("Failed", "task B's timeout 10s kills its sleep 15s"),
    "examples/exit-handlers.yaml": ("Failed", "the main step fails on purpose; the exit handler runs"),
    "examples/retry-conditional.yaml": ("Failed", "exits 1 or 2 and the expression stops retrying: never succeeds"),
    "examples/step-level-timeout.yaml": ("Failed", "steps time out after 10s; continueOn.error does not cover Failed"),
    "examples/timeouts-step.yaml": ("Failed", "activeDeadlineSeconds 10 kills sleep 86400"),
    "examples/timeouts-workflow.yaml": ("Failed", "workflow activeDeadlineSeconds 30 kills sleep 1d"),
    "examples/template-defaults.yaml": (RANDOM, "random exit code with 2 retries: fails ~30% of runs by design"),
    "examples/retry-on-error.yaml": (RANDOM, "random exit code with 2 retries: fails ~50% of runs by design"),
    "examples/pod-gc-strategy.yaml": ("Failed", "its 'fail' step exits 1 on purpose (to show podGC OnPodSuccess)"),
    "examples/pod-gc-strategy-with-label-selector.yaml": ("Failed", "its 'fail' step exits 1 on purpose"),
    "examples/loops-arbitrary-sequential-steps.yaml": (
        "Failed",
        "item 3 exits 1 on purpose: 'will fail and stop here'",
    ),
    "examples/custom-metrics.yaml": (RANDOM, "the 'flakey' step exits with a random code by design"),
    "examples/intermediate-parameters.yaml": ("Succeeded", "resumed by the test, like Argo's manual step"),
    "examples/suspend-template.yaml": ("Succeeded", "resumed by the test, like Argo's manual step"),
    "examples/suspend-template-outputs.yaml": (
        "Succeeded",
        "resumed by the test; the supplied output takes its default",
    ),
    "examples/synchronization-tmpl-level.yaml": ("Succeeded", "semaphore size from the example's ConfigMap"),
    "examples/synchronization-wf-level.yaml": ("Succeeded", "semaphore size from the example's ConfigMap"),
    "examples/synchronization-db-tmpl-level.yaml": ("Succeeded", "database semaphore emulated in-process"),
    "examples/synchronization-db-wf-level.yaml": ("Succeeded", "database semaphore emulated in-process"),
    "examples/secrets.yaml": (
        "Succeeded",
        "hollow pass: no Secret store, the step only prints that the file is missing",
    ),
    "examples/resubmit.yaml": (RANDOM, "random-fail steps without retries: fails ~70% of runs by design"),
}

# Examples the engine does not run as Argo does, and why (reported as differences; xfail in the tests).
KNOWN_DIFFERENCES = {
    "examples/variables-showcase.yaml": "its daemon runs busybox `nc -lk -p 9999 -e /bin/true`; "
    "this host has no `nc` with `-e`, so the daemon exits 127 before it is ready",
}

# Examples that succeed unless every attempt of a retried random step fails (p = (2/3)^11 ~ 1.2% per step, so
# ~10% for the corpus as a whole): a Failed run matches only if each failed Retry node ran all its attempts.
RARE_FAILURE = {
    "examples/retry-backoff.yaml": 11,
    "examples/retry-container.yaml": 11,
    "examples/retry-script.yaml": 11,
    "examples/retry-with-steps.yaml": 11,
    "examples/workflow-template/retry-with-steps.yaml": 11,
}

# Examples whose suspend nodes wait for a manual resume (given every second while they run).
MANUAL_RESUME = {
    "examples/intermediate-parameters.yaml",
    "examples/suspend-template.yaml",
    "examples/suspend-template-outputs.yaml",
}

# Examples recorded as not run, with the reason (the behaviour is covered by unit tests instead).
NOT_RUN: dict[str, str] = {
    "examples/forever.yaml": "runs ~1000 s by design (1000 x sleep 1s)",
    "examples/synchronization-mutex-tmpl-level.yaml": "~350 s of serialized sleeps; mutexes are unit-tested",
    "examples/synchronization-db-mutex-tmpl-level.yaml": "~350 s of serialized sleeps; mutexes are unit-tested",
}


@dataclass(frozen=True)
class Case:
    file: str
    doc: int
    workflow: dict[str, Any]
    expected: str
    why: str
    group: str = "local"  # "local": EXAMPLES.tsv says yes/shim; "conditional": runnable with local stand-ins


@dataclass(frozen=True)
class CaseResult:
    case: Case
    phase: str
    message: str
    seconds: float
    retries_exhausted: bool = False  # every failed Retry node ran all its attempts

    @property
    def matched(self) -> bool:
        if self.phase in self.case.expected.split("|"):
            return True
        return self.case.file in RARE_FAILURE and self.phase == "Failed" and self.retries_exhausted


def shared_examples_dir() -> Path:
    return get_settings().shared_dir / "argo-workflows"


def _rows(root: Path) -> list[dict[str, str]]:
    with open(root / "EXAMPLES.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _doc(root: Path, file: str, index: int) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((root / file).read_text()) if d is not None]
    return docs[index]


def template_resolver(root: Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Every (Cluster)WorkflowTemplate the corpus applies before its runs, keyed by (kind, name)."""
    root = root or shared_examples_dir()
    templates: dict[tuple[str, str], dict[str, Any]] = {}
    for row in _rows(root):
        if row["kind"] in ("WorkflowTemplate", "ClusterWorkflowTemplate") and row["local"] in ("yes", "shim"):
            doc = _doc(root, row["file"], int(row["doc"]))
            templates[(doc["kind"], doc["metadata"]["name"])] = doc
    return templates


def configmaps(root: Path | None = None) -> list[dict[str, Any]]:
    """Every ConfigMap manifest in the example files (Argo's test setup applies them before the runs)."""
    root = root or shared_examples_dir()
    found = []
    for file in sorted({row["file"] for row in _rows(root)}):
        for doc in yaml.safe_load_all((root / file).read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
                found.append(doc)
    return found


def load_cases(root: Path | None = None, conditional: bool = True) -> tuple[list[Case], dict[str, str]]:
    """(cases to run, {file: reason} of the runnable Workflow examples recorded as not run). ``conditional``
    adds the examples EXAMPLES.tsv marks runnable only with local stand-ins (ConfigMaps, manual resume…)."""
    root = root or shared_examples_dir()
    cases, skipped = [], {}
    groups = {"yes": "local", "shim": "local", **({"conditional": "conditional"} if conditional else {})}
    for row in _rows(root):
        if row["kind"] != "Workflow" or row["local"] not in groups:
            continue
        if row["file"] in NOT_RUN:
            skipped[row["file"]] = NOT_RUN[row["file"]]
            continue
        if row["file"] in DOCUMENTED:
            expected, why = DOCUMENTED[row["file"]]
        elif row["argo_e2e"].startswith("TestExampleWorkflows:"):
            expected, why = row["argo_e2e"].split(":", 1)[1].strip(), "Argo e2e (TestExampleWorkflows)"
        else:
            expected, why = "Succeeded", f"documented behaviour; Argo e2e: {row['argo_e2e']}"
        workflow = _doc(root, row["file"], int(row["doc"]))
        cases.append(Case(row["file"], int(row["doc"]), workflow, expected, why, groups[row["local"]]))
    return cases, skipped


def _named(case: Case, index: int) -> dict[str, Any]:
    workflow = yaml.safe_load(yaml.safe_dump(case.workflow))
    metadata = workflow.setdefault("metadata", {})
    base = metadata.get("name") or metadata.get("generateName") or Path(case.file).stem + "-"
    metadata["name"] = re.sub(r"[^a-z0-9-]", "-", base.lower()).rstrip("-")[:50] + f"-c{index}"
    return workflow


def _resume_manual_suspends(control: RunControl, done: threading.Event) -> None:
    """Argo's e2e tests resume ``suspend: {}`` nodes by hand; here a helper resumes them every second."""
    while not done.wait(1.0):
        control.resume("templateName!=")


def run_case(case: Case, index: int, ctx: EngineContext, controls: list[RunControl] | None = None) -> CaseResult:
    control = RunControl()
    if controls is not None:
        controls.append(control)  # so that a caller can terminate every case (the background run at session end)
    timer = threading.Timer(CASE_TIME_CAP_SECONDS, control.terminate, args=("conformance time cap reached",))
    timer.start()
    done = threading.Event()
    if case.file in MANUAL_RESUME:
        threading.Thread(target=_resume_manual_suspends, args=(control, done), daemon=True).start()
    started = time.monotonic()
    try:
        finished = run_workflow(_named(case, index), ctx, control)
    finally:
        timer.cancel()
        done.set()
    status = finished.get("status") or {}
    failed_retries = [
        n for n in (status.get("nodes") or {}).values() if n.get("type") == "Retry" and n["phase"] == "Failed"
    ]
    exhausted = bool(failed_retries) and all(
        len(n.get("children") or []) >= RARE_FAILURE.get(case.file, 0) for n in failed_retries
    )
    seconds = time.monotonic() - started
    return CaseResult(case, status.get("phase", "?"), status.get("message") or "", seconds, exhausted)


def run_cases(
    cases: list[Case], home: Path, jobs: int = 8, controls: list[RunControl] | None = None
) -> list[CaseResult]:
    """Run every case on one engine context (shared caches and locks, like one engine process)."""
    templates = template_resolver()
    ctx = EngineContext.local(home, lambda kind, name: templates.get((kind, name)))
    for manifest in configmaps():
        ctx.configmaps.apply(manifest)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda pair: run_case(pair[1], pair[0], ctx, controls), enumerate(cases)))
