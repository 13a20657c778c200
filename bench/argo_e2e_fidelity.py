"""How many of Argo's own e2e workflows end in the phase Argo's e2e tests expect, on the embedded engine.

Reads the ``Workflow(`…`)``/``WorkflowTemplate("@file")`` fixtures of Argo's Go e2e suites (``test/e2e/*_test.go``
of an argo-workflows checkout, which this repository does not ship), runs each test's Workflow (with its
templates) and compares the final phase with the first ``ToBeSucceeded/Failed/Errored`` or
``Workflow<Phase>`` the test asserts. Tests that stop, suspend, resume, retry or resubmit a run are left out
(they drive the run from outside), and so are fixtures that are not YAML (Go format strings).
Sleeps are shortened to 0.2 s. Prints one line per test and a summary; exit 0.

    .venv/bin/python bench/argo_e2e_fidelity.py /path/to/argo-workflows/test/e2e [suite_test.go …]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from workflows.engine.runner import EngineContext, run_workflow

SUITES = (
    "hooks_test.go",
    "signals_test.go",
    "retry_test.go",
    "suspend_test.go",
    "cluster_workflow_template_test.go",
    "workflow_template_test.go",
    "functional_test.go",
    "invalid_command_test.go",
    "failed_main_test.go",
)
_TEST = re.compile(r"func \(s \*\w+\) (Test\w+)\(\) \{(.*?)\n\}\n", re.S)
_INLINE = re.compile(r"(Workflow|WorkflowTemplate|ClusterWorkflowTemplate)\(`(.*?)`\)", re.S)
_FILE = re.compile(r"(Workflow|WorkflowTemplate|ClusterWorkflowTemplate)\(\"@([^\"]+)\"\)")
_EXPECT = re.compile(
    r"ToBe(Succeeded|Failed|Errored)\b|(?:v1alpha1|wfv1)\.Workflow(Succeeded|Failed|Error)\b"
    r"|WorkflowPhase\(\"(Succeeded|Failed|Error)\"\)"
)
_DRIVEN = re.compile(r"Stop|Terminate|Suspend|Resume|Retry\(|Resubmit|Cron")


def _documents(e2e: Path, body: str) -> tuple[dict[str, Any] | None, dict[tuple[str, str], dict[str, Any]]]:
    sources = list(_INLINE.findall(body))
    sources += [(kind, (e2e / path).read_text()) for kind, path in _FILE.findall(body) if (e2e / path).exists()]
    workflow, templates = None, {}
    for kind, text in sources:
        for document in yaml.safe_load_all(re.sub(r"sleep (\d+)", "sleep 0.2", text)):
            if not isinstance(document, dict):
                continue
            document.setdefault("kind", kind)
            if document["kind"] == "Workflow":
                workflow = document
            else:
                templates[(document["kind"], document["metadata"]["name"])] = document
    return workflow, templates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("e2e", type=Path, help="argo-workflows/test/e2e")
    parser.add_argument("suites", nargs="*", default=list(SUITES))
    args = parser.parse_args()
    counts = {"match": 0, "diff": 0, "skipped": 0}
    for suite in args.suites:
        for name, body in _TEST.findall((args.e2e / suite).read_text()):
            expected = _EXPECT.search(body)
            try:
                workflow, templates = _documents(args.e2e, body)
            except yaml.YAMLError:
                workflow, templates = None, {}
            if workflow is None or expected is None or _DRIVEN.search(body):
                counts["skipped"] += 1
                continue
            want = next(g for g in expected.groups() if g).replace("Errored", "Error")
            meta = workflow.setdefault("metadata", {})
            meta["name"] = (meta.get("name") or meta.get("generateName") or "wf-").rstrip("-")[:40] + "-x"
            context = EngineContext.local(Path(tempfile.mkdtemp()), lambda k, n, t=templates: t.get((k, n)))
            started = time.monotonic()
            done = run_workflow(workflow, context)
            got = done["status"]["phase"]
            verdict = "match" if got == want else "diff"
            counts[verdict] += 1
            message = (done["status"].get("message") or "")[:100]
            print(
                f"{suite:34} {name:58} want {want:9} got {got:9} {verdict:5} {time.monotonic() - started:5.1f}s {message}"
            )
    ran = counts["match"] + counts["diff"]
    print(f"\n{counts['match']}/{ran} match ({100 * counts['match'] / max(ran, 1):.1f}%); {counts['skipped']} not run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
