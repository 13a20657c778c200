"""Argo's example workflows end in the phase Argo expects (see corpus.py for where each expectation comes from).

The whole corpus runs once, in parallel threads on one engine, and each example is then its own test case. In a
full run the corpus starts in the background when collection ends and these cases run last (tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance import background
from tests.conformance.corpus import KNOWN_DIFFERENCES, Case, CaseResult, load_cases, shared_examples_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (shared_examples_dir() / "EXAMPLES.tsv").exists(), reason="../shared is not present"),
]

CASES, NOT_RUN = load_cases() if (shared_examples_dir() / "EXAMPLES.tsv").exists() else ([], {})


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CaseResult]:
    home: Path = tmp_path_factory.mktemp("conformance-home")
    return {f"{r.case.file}#{r.case.doc}": r for r in background.results(home)}


def _param(case: Case) -> object:
    reason = KNOWN_DIFFERENCES.get(case.file)
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(f"{case.file}#{case.doc}", marks=marks)


@pytest.mark.parametrize("key", [_param(c) for c in CASES])
def test_example_ends_in_the_expected_phase(results: dict[str, CaseResult], key: str) -> None:
    result = results[key]
    assert result.matched, f"{key}: expected {result.case.expected}, got {result.phase}: {result.message}"


def test_every_runnable_example_is_run_or_explained() -> None:
    assert len(CASES) >= 120
    assert all(reason for reason in NOT_RUN.values())
