"""Run the conformance corpus and print Markdown tables: ``python -m tests.conformance.report``.

The tables (pass rates + every difference with its reason) are what docs/engine.md records. Exit status 1
when an example differs other than as listed in ``KNOWN_DIFFERENCES``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.conformance.corpus import KNOWN_DIFFERENCES, CaseResult, load_cases, run_cases


def _rate(results: list[CaseResult]) -> str:
    matched = sum(r.matched for r in results)
    return f"**{matched}/{len(results)} ({100 * matched / max(len(results), 1):.1f}%)**"


def _table(results: list[CaseResult]) -> list[str]:
    lines = ["| example | expected | got | s | note |", "|---|---|---|---|---|"]
    for result in sorted(results, key=lambda r: (r.matched, r.case.file)):
        mark = "" if result.matched else " **(differs)**"
        note = result.case.why
        if result.matched and result.phase not in result.case.expected.split("|"):
            note = "Failed only because all 11 random attempts of a retried step failed (p ~1.2% per step)"
        if not result.matched:
            reason = KNOWN_DIFFERENCES.get(result.case.file, "")
            note = f"{reason} ({result.message})".replace("|", "/")[:200]
        lines.append(
            f"| {result.case.file}{mark} | {result.case.expected} | {result.phase} | {result.seconds:.1f} | {note} |"
        )
    return lines


def render(results: list[CaseResult], not_run: dict[str, str], seconds: float) -> str:
    local = [r for r in results if r.case.group == "local"]
    conditional = [r for r in results if r.case.group == "conditional"]
    by_source = {"argo": 0, "documented": 0, "random": 0}
    for result in local:
        if "|" in result.case.expected:
            by_source["random"] += 1
        elif result.case.why.startswith("Argo e2e"):
            by_source["argo"] += 1
        else:
            by_source["documented"] += 1
    lines = [
        f"Ran {len(results)} example workflows in {seconds:.0f} s. The corpus (`local` = yes/shim): {_rate(local)} "
        f"end in the phase Argo expects; {len(not_run)} recorded as not run.",
        "",
        f"Expectations: {by_source['argo']} from Argo's e2e suite (`TestExampleWorkflows`), {by_source['documented']} "
        f"from the behaviour the example documents (Argo skips them), {by_source['random']} random by design "
        "(either phase accepted). CronWorkflow documents and `local` = no examples are out of scope.",
        "",
        *_table(local),
    ]
    lines += [f"| {file} | - | not run | - | {reason} |" for file, reason in sorted(not_run.items())]
    if conditional:
        lines += [
            "",
            f"Also run, not counted above — the `local` = conditional examples, with the engine's stand-ins "
            f"(ConfigMap store, in-process database semaphores, a helper that resumes manual suspends every second): "
            f"{_rate(conditional)}.",
            "",
            *_table(conditional),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=8, help="examples run at once (threads)")
    parser.add_argument("--only", default="", help="substring filter on the example file")
    options = parser.parse_args(argv)
    cases, not_run = load_cases()
    cases = [c for c in cases if options.only in c.file]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="driftloop-conformance-") as home:
        results = run_cases(cases, Path(home), options.jobs)
    print(render(results, not_run, time.monotonic() - started))
    return 0 if all(r.matched or r.case.file in KNOWN_DIFFERENCES for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
