"""The corpus run in a background thread, started as soon as the suite is collected (see tests/conftest.py).

The corpus spends most of its ~2 minutes in the examples' own ``sleep``s and in timeouts it waits out; run in the
background, that waiting overlaps with the rest of the suite instead of adding to CI time. Its test cases are
ordered last, and the fixture that hands them the results waits for the run (or runs the corpus itself when the
background run was not started, e.g. ``pytest tests/conformance -k …``).
"""

from __future__ import annotations

import threading
from pathlib import Path

from tests.conformance.corpus import CaseResult, load_cases, run_cases, shared_examples_dir
from workflows.engine.runner import RunControl

__all__ = ["available", "results", "start", "stop"]


class _Run:
    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.results: list[CaseResult] | None = None
        self.error: BaseException | None = None
        self.controls: list[RunControl] = []

    def run(self, home: Path) -> None:
        try:
            self.results = run_cases(load_cases()[0], home, controls=self.controls)
        except BaseException as exc:  # handed to the tests, which fail with it
            self.error = exc


_RUN = _Run()


def available() -> bool:
    return (shared_examples_dir() / "EXAMPLES.tsv").exists()


def start(home: Path) -> None:
    """Start the corpus on an engine under ``home``, once."""
    if _RUN.thread is None:
        _RUN.thread = threading.Thread(target=_RUN.run, args=(home,), name="conformance-corpus", daemon=True)
        _RUN.thread.start()


def results(home: Path) -> list[CaseResult]:
    """The corpus results: the background run's once it ends, else a run started here and now."""
    if _RUN.thread is None:
        start(home)
    assert _RUN.thread is not None
    _RUN.thread.join()
    if _RUN.error is not None:
        raise _RUN.error
    assert _RUN.results is not None
    return _RUN.results


def stop() -> None:
    """Terminate whatever still runs (a session cut short by -x or ^C), so no example's pod outlives pytest."""
    if _RUN.thread is not None and _RUN.thread.is_alive():
        for control in list(_RUN.controls):
            control.terminate("the test session ended")
        _RUN.thread.join(timeout=30)
