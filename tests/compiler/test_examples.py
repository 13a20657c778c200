"""The linter against every one of Argo's own examples: no false alarm on the valid ones, and the three files that
are malformed upstream (see ../shared/README.md and EXAMPLES.tsv) are rejected for the reason they are broken.

Each file is linted on its own, with the rest of the corpus as context so that a ``templateRef`` to a
WorkflowTemplate of another example file resolves (Argo's e2e suite creates those templates first).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from driftloop.config import get_settings
from workflows.spec.lint import lint_documents
from workflows.spec.yamlio import Document, load_file

ARGO = get_settings().shared_dir / "argo-workflows"
EXAMPLES = ARGO / "examples"
FILES = sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml"))
# file -> why it is malformed (the README and EXAMPLES.tsv say so)
MALFORMED = {
    "k8s-jobs.yaml": "metadata: the Workflow has neither 'name' nor 'generateName'",
    "fun-with-gifs.yaml": "metadata: the Workflow has neither 'name' nor 'generateName'",
    "k8s-patch-json-workflow.yaml": "line 13: duplicate key 'annotations'",
}


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    return [document for path in FILES for document in load_file(path)]


def test_the_corpus_is_complete(corpus: list[Document]) -> None:
    """Every document EXAMPLES.tsv lists is parsed (a silently skipped file would pass trivially)."""
    with (ARGO / "EXAMPLES.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(corpus) == len(rows) > 200
    assert sorted(d.kind for d in corpus) == sorted(row["kind"] for row in rows)
    assert set(MALFORMED) <= {Path(p).name for p in FILES}


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(EXAMPLES)) for p in FILES])
def test_example(path: Path, corpus: list[Document]) -> None:
    issues = [str(issue) for issue in lint_documents(load_file(path), context=corpus)]
    if path.name in MALFORMED:
        assert issues, f"{path.name} is malformed upstream but linted clean"
        assert all(MALFORMED[path.name] in issue for issue in issues), issues
    else:
        assert issues == []
