"""How long the linter and the compiler take: schema load (CRD translation vs JSON cache), the whole Argo examples
corpus, and one `driftloop compile` (build + validate, no write). Medians of several runs; noisy shared machine.

    .venv/bin/python bench/lint.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from driftloop.config import get_settings
from workflows.compiler._build import build_manifests, validate_manifests
from workflows.spec import schema as _schema
from workflows.spec.lint import lint_documents
from workflows.spec.yamlio import load_file


def _median_seconds(action: Callable[[], object], runs: int, before: Callable[[], object] = lambda: None) -> float:
    samples = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    crd = _schema.crd_dir() / _schema.ARGO_KINDS["Workflow"]
    examples = sorted((get_settings().shared_dir / "argo-workflows" / "examples").rglob("*.yaml"))
    documents = [d for path in examples for d in load_file(path)]

    with tempfile.TemporaryDirectory() as empty:
        cold = _median_seconds(lambda: _schema._load_translated(crd, Path(empty) / f"c{time.perf_counter_ns()}"), runs)
    with tempfile.TemporaryDirectory() as warm_dir:
        _schema._load_translated(crd, Path(warm_dir))
        warm = _median_seconds(lambda: _schema._load_translated(crd, Path(warm_dir)), runs)
    lint_documents(documents[:1])  # load the validators once, as a long-lived process would
    corpus = _median_seconds(lambda: lint_documents(documents, context=documents), runs)
    compile_ = _median_seconds(lambda: validate_manifests(build_manifests()), runs)

    rows = [
        ("Workflow CRD -> JSON Schema, no cache", cold, ""),
        ("Workflow CRD schema from the JSON cache", warm, f"{cold / warm:.1f}x faster than translating"),
        (
            f"lint {len(examples)} example files ({len(documents)} documents)",
            corpus,
            f"{corpus / len(documents) * 1e3:.2f} ms per document",
        ),
        ("compile all pipelines (build + validate)", compile_, ""),
    ]
    print(f"{'what':58} {'median (s)':>10}  note   [runs={runs}]")
    for what, seconds, note in rows:
        print(f"{what:58} {seconds:10.3f}  {note}")


if __name__ == "__main__":
    main()
