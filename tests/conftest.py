"""Suite-wide scheduling.

Argo's example corpus (tests/conformance) spends most of its ~2 minutes waiting: the examples' own ``sleep``s and
the timeouts they exercise. So when collection ends and the corpus is selected, it starts on its own engine in a
background thread, and its test cases are ordered last; by the time they run, the corpus has long finished, and its
waiting overlapped with the rest of the suite instead of adding to CI time.
"""

from __future__ import annotations

import pytest


def _in_corpus(item: pytest.Item) -> bool:
    return item.nodeid.startswith("tests/conformance/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items[:] = [item for item in items if not _in_corpus(item)] + [item for item in items if _in_corpus(item)]


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or not any(_in_corpus(item) for item in session.items):
        return
    from tests.conformance import background

    if background.available():
        background.start(session.config._tmp_path_factory.mktemp("conformance-home"))  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.conformance import background

    background.stop()
