"""The exit handler of every pipeline: append how the run ended to ``$DRIFTLOOP_HOME/outcomes.jsonl``.

It runs whether the workflow succeeded or not, so the retraining loop (and a person at 2 AM) can see which
trigger led to which outcome without an Argo Server. Its inputs default to Argo's ``{{workflow.*}}``
variables, which the controller resolves when the exit handler starts.

    python -m workflows.steps.record_outcome --workflow training-x7k2 --status Failed --failures '[...]' \\
        --model credit-risk --trigger drift --trigger-ref 3f2a...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftloop.config import get_settings
from workflows.steps.contract import Param, StepContract

__all__ = ["OUTCOMES_FILE", "RECORD_OUTCOME", "main", "record_outcome"]

OUTCOMES_FILE = "outcomes.jsonl"

RECORD_OUTCOME = StepContract(
    name="record-outcome",
    module="workflows.steps.record_outcome",
    description="Exit handler: append the run's outcome to $DRIFTLOOP_HOME/outcomes.jsonl.",
    inputs=(
        Param("workflow", "Name of the workflow run.", "{{workflow.name}}"),
        Param("status", "Final status: Succeeded, Failed or Error.", "{{workflow.status}}"),
        Param("failures", "JSON list of the failed nodes.", "{{workflow.failures}}"),
        Param("model", "Model the run trained.", "{{workflow.parameters.model-name}}"),
        Param("trigger", "manual | schedule | drift | quality.", "{{workflow.parameters.trigger}}"),
        Param("trigger-ref", "What triggered it, e.g. the alert fingerprint.", "{{workflow.parameters.trigger-ref}}"),
    ),
)


def _failures(text: str) -> Any:
    """Argo passes a JSON list (or ``null``); keep anything else verbatim rather than lose it."""
    if not text.strip() or text.startswith("{{"):
        return []
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return [] if parsed is None else parsed


def record_outcome(values: Mapping[str, str], home: Path | None = None) -> dict[str, Any]:
    """Append one outcome line (a single write, so concurrent exit handlers cannot interleave) and return it."""
    outcome: dict[str, Any] = {param.name: values.get(param.name, "") for param in RECORD_OUTCOME.inputs}
    outcome["failures"] = _failures(str(outcome["failures"]))
    outcome["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    folder = home or get_settings().home
    folder.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(outcome, sort_keys=True) + "\n").encode()
    fd = os.open(folder / OUTCOMES_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return outcome


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workflows.steps.record_outcome", description=RECORD_OUTCOME.description
    )
    for param in RECORD_OUTCOME.inputs:
        parser.add_argument(f"--{param.name}", dest=param.name, default="", help=param.description)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    values = vars(_parser().parse_args(argv))
    outcome = record_outcome(values)
    print(json.dumps(outcome, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
