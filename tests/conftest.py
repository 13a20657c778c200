"""Suite-wide scheduling (``make test`` runs the suite on two pytest-xdist workers, a whole test package per worker).

- Each test package is one unit of work (the scheduler below): several packages keep a server and environment
  variables in package-scoped fixtures, and a worker that interleaved two packages' files would tear one down
  while the other still used it (and restore os.environ under it). (xdist's own ``loadgroup`` cannot be used: it
  renames node ids through an attribute pytest 9 no longer has.)

- The end-to-end module (tests/e2e) is the longest file by far: it goes first (with ``--no-loadscope-reorder``, xdist
  keeps this order instead of sending the packages with the most tests first), so it is never the last thing a
  worker starts.
- Argo's example corpus (tests/conformance) spends most of its ~2 minutes waiting: the examples' own ``sleep``s and
  the timeouts they exercise. Its cases go last. In a run without workers, the corpus starts on its own engine in a
  background thread as soon as collection ends, so by the time its cases run it has long finished and its waiting
  overlapped with the rest of the suite; with workers, the other worker fills that wait instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest


def _in_corpus(item: pytest.Item) -> bool:
    return item.nodeid.startswith("tests/conformance/")


def _rank(item: pytest.Item) -> int:
    return 0 if item.nodeid.startswith("tests/e2e/") else 2 if _in_corpus(item) else 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: within a rank, the collection order stays


# MLflow's fluent API exports what it is told into os.environ (set_registry_uri, set_experiment): in-process tests
# (the steps, the gitops fixtures) would leave their servers' URI and experiment id to every later subprocess.
_MLFLOW_EXPORTS = ("MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


@pytest.fixture(autouse=True, scope="module")
def _no_mlflow_exports_leak() -> Any:
    before = {name: os.environ.get(name) for name in _MLFLOW_EXPORTS}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's load-by-scope scheduler, with a test package (``tests/<package>/``) as the scope."""
    from xdist.scheduler import LoadScopeScheduling

    class PackageScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            parts = nodeid.split("::", 1)[0].split("/")
            return "/".join(parts[:2]) if len(parts) > 2 else parts[0]

    return PackageScheduling(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or os.environ.get("PYTEST_XDIST_WORKER"):
        return  # a worker does not know whether it will be sent the corpus: it runs it if and when it is
    if not any(_in_corpus(item) for item in session.items):
        return
    from tests.conformance import background

    if background.available():
        background.start(session.config._tmp_path_factory.mktemp("conformance-home"))  # type: ignore[attr-defined]


# The suite must leave the checkout as it found it: a run artefact at the repo root (MLflow's default store
# ./mlflow.db, a stray home or lake) dirties the tree, which the lineage check refuses for registered runs (issue 15).
# Tool caches that live there by design are not run artefacts.
_ROOT = Path(__file__).resolve().parents[1]
_TOOL_CACHES = frozenset({".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache", "__pycache__", ".coverage"})
_ROOT_BEFORE: frozenset[str] = frozenset()


def _root_entries() -> frozenset[str]:
    return frozenset(entry.name for entry in _ROOT.iterdir()) - _TOOL_CACHES


def pytest_sessionstart(session: pytest.Session) -> None:
    global _ROOT_BEFORE
    _ROOT_BEFORE = _root_entries()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.conformance import background

    background.stop()
    if os.environ.get("PYTEST_XDIST_WORKER") or session.config.option.collectonly:
        return  # the controller checks once, after every worker has finished
    left = sorted(_root_entries() - _ROOT_BEFORE)
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"the test run left new file(s) at the repo root {_ROOT}: {', '.join(left)} (write under tmp_path)"
        if reporter is not None:
            reporter.write_line(f"\nERROR: {message}", red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
