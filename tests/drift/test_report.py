"""The HTML report appears whole or not at all: watchers of the reports folder never read a partial file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from monitors.drift._evidently import write_html_report


def test_report_is_complete_when_it_appears_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 300), "y": rng.normal(5, 2, 300)})
    current = pd.DataFrame({"x": rng.normal(2, 1, 300), "y": rng.normal(5, 2, 300)})
    target = write_html_report(reference, current, tmp_path / "reports" / "m-v1.html")
    assert target.read_text(errors="replace").count("</html>") >= 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["m-v1.html"]
