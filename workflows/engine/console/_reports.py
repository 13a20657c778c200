"""The drift monitor's Evidently HTML reports, listed on the model page and served — sandboxed — by the console.

The monitor writes one report per drifted window (at most one per champion version per ``report_every_s``) to
``$DRIFTLOOP_HOME/reports/<model>-v<reference version>-<UTC stamp>.html``. The report of the window that triggered
a drift retrain is the newest one of the champion the retrain replaces (its ``parent_champion_version`` tag)
written before the new version was registered.

A report is third-party HTML full of inline script, so it is served with ``Content-Security-Policy: sandbox
allow-scripts``: it renders, but in an opaque origin — it cannot read the console's cookie or pages, and any
request it makes carries ``Origin: null``, which the console refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from driftloop.config import get_settings
from driftloop.errors import NotFoundError

__all__ = ["REPORT_CSP", "Report", "report_file", "report_for", "reports_of"]

REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data:; font-src data:"
)
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Report:
    file: str
    version: str  # the champion version the window was compared against
    written: datetime


def _folder() -> Path:
    return get_settings().home / "reports"  # where the monitor writes them (monitors/drift/_monitor.py)


def reports_of(model: str) -> list[Report]:
    """The model's reports, newest first (file names that do not follow the monitor's pattern are ignored)."""
    pattern = re.compile(rf"^{re.escape(model)}-v(\d+)-(\d{{8}}T\d{{6}}Z)\.html$")
    found = []
    folder = _folder()
    for path in folder.glob(f"{model}-v*.html") if folder.is_dir() else []:
        match = pattern.match(path.name)
        if match:
            written = datetime.strptime(match.group(2), _STAMP).replace(tzinfo=UTC)
            found.append(Report(path.name, match.group(1), written))
    return sorted(found, key=lambda r: r.written, reverse=True)


def report_for(reports: list[Report], parent_version: str, registered: datetime) -> Report | None:
    """The report of the window that made the retrain: the parent champion's newest one before ``registered``."""
    return next((r for r in reports if r.version == parent_version and r.written <= registered), None)


def report_file(model: str, file: str) -> Path:
    """The path of one of ``model``'s reports; 404 for any other name (no traversal: names are matched, not joined)."""
    for report in reports_of(model):
        if report.file == file:
            return _folder() / report.file
    raise NotFoundError(f"model {model!r} has no drift report {file[:100]!r}", hint=f"see /models/{model}")
