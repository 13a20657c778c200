"""The stat-test names the drift commands accept, without importing numpy/scipy (``--help`` must stay instant).

``monitors.drift._stattests`` checks at import that its registry has exactly these names.
"""

from __future__ import annotations

__all__ = ["STAT_TEST_NAMES"]

STAT_TEST_NAMES: tuple[str, ...] = ("ks", "chisquare", "z", "wasserstein", "jensenshannon")
