"""The fairness and explainability gates of ``evaluate``: pure functions over a holdout and a scoring function.

Fairness, per segment column (``term``, ``home_ownership``): the largest ROC AUC gap between two of its values, and
the largest gap in positive-prediction rate at the decision threshold (demographic-parity difference). Segments with
fewer than ``MIN_SEGMENT_ROWS`` rows (or, for AUC, one class) are left out, as in the per-segment metrics.

Explainability: permutation importance of each feature on the holdout — the ROC AUC lost when that column is
shuffled (seeded: the same model and holdout give the same numbers) — and a gate that blocks when a feature that must
not drive decisions (the feature schema's ``for_decisions=False``, or ``DRIFTLOOP_NOT_FOR_DECISIONS``) is among the
top drivers. Each gate answers ``(passed, reason, evidence)``; the reason says what blocked and why, with numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.columns import LABEL
from workflows.steps._evaluation import MIN_SEGMENT_ROWS, SEGMENT_COLUMNS
from workflows.steps._metrics import roc_auc

__all__ = ["Explainability", "Fairness", "permutation_importance"]

Scorer = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class Fairness:
    max_auc_gap: float
    max_parity_gap: float
    threshold: float

    def evidence(self, frame: pd.DataFrame, scores: np.ndarray) -> dict[str, Any]:
        """Per segment column: AUC and positive rate per value, and the two gaps (None when under two values)."""
        labels = frame[LABEL].to_numpy()
        positive = scores >= self.threshold
        out: dict[str, Any] = {}
        for column in SEGMENT_COLUMNS:
            if column not in frame.columns:
                continue
            aucs: dict[str, float] = {}
            rates: dict[str, float] = {}
            for value, index in frame.groupby(column, dropna=True).indices.items():
                if len(index) < MIN_SEGMENT_ROWS:
                    continue
                rates[str(value)] = float(positive[index].mean())
                auc = roc_auc(labels[index], scores[index])
                if not math.isnan(auc):
                    aucs[str(value)] = auc
            out[column] = {
                "roc_auc": aucs,
                "positive_rate": rates,
                "auc_gap": max(aucs.values()) - min(aucs.values()) if len(aucs) > 1 else None,
                "parity_gap": max(rates.values()) - min(rates.values()) if len(rates) > 1 else None,
            }
        return out

    def judge(self, frame: pd.DataFrame, scores: np.ndarray) -> tuple[bool, str, dict[str, Any]]:
        evidence = self.evidence(frame, scores)
        problems = []
        for column, found in evidence.items():
            for kind, limit, setting, values in (
                ("auc_gap", self.max_auc_gap, "DRIFTLOOP_FAIRNESS_MAX_AUC_GAP", found["roc_auc"]),
                ("parity_gap", self.max_parity_gap, "DRIFTLOOP_FAIRNESS_MAX_PARITY_GAP", found["positive_rate"]),
            ):
                gap = found[kind]
                if gap is None or gap <= limit:
                    continue
                high, low = max(values, key=values.__getitem__), min(values, key=values.__getitem__)
                what = "ROC AUC" if kind == "auc_gap" else f"positive-prediction rate at {self.threshold:g}"
                problems.append(
                    f"{what} differs by {gap:.4f} between {column}={high} ({values[high]:.4f}) and {column}={low} "
                    f"({values[low]:.4f}), over {limit:g} ({setting})"
                )
        evidence["thresholds"] = {"max_auc_gap": self.max_auc_gap, "max_parity_gap": self.max_parity_gap,
                                  "decision_threshold": self.threshold}  # fmt: skip
        if problems:
            return False, "blocked by the fairness gate: " + "; ".join(problems), evidence
        gaps = [f"{column}: AUC gap {_fmt(f['auc_gap'])}, parity gap {_fmt(f['parity_gap'])}"
                for column, f in evidence.items() if column != "thresholds"]  # fmt: skip
        return True, "fairness gate passed (" + "; ".join(gaps) + ")", evidence


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def permutation_importance(
    score: Scorer, frame: pd.DataFrame, columns: list[str], *, seed: int = 0, repeats: int = 2
) -> dict[str, float]:
    """ROC AUC lost when each column is shuffled (mean over ``repeats`` seeded shuffles), sorted high to low."""
    labels = frame[LABEL].to_numpy()
    base = roc_auc(labels, score(frame[columns]))
    importance: dict[str, float] = {}
    for position, column in enumerate(columns):
        losses = []
        for repeat in range(repeats):
            rng = np.random.default_rng([seed, position, repeat])
            shuffled = frame[columns].copy()
            shuffled[column] = shuffled[column].to_numpy()[rng.permutation(len(shuffled))]
            losses.append(base - roc_auc(labels, score(shuffled)))
        importance[column] = float(np.mean(losses))
    return dict(sorted(importance.items(), key=lambda item: (-item[1], item[0])))


@dataclass(frozen=True)
class Explainability:
    not_for_decisions: frozenset[str]
    top_k: int

    @classmethod
    def of(cls, schema: Any, extra: Iterable[str], top_k: int) -> Explainability:
        marked = {spec.name for spec in schema.features if not getattr(spec, "for_decisions", True)}
        return cls(frozenset(marked | set(extra)), top_k)

    def judge(self, importance: dict[str, float]) -> tuple[bool, str, dict[str, Any]]:
        top = [name for name, value in list(importance.items())[: self.top_k] if value > 0]
        evidence = {"permutation_importance": importance, "top_drivers": top,
                    "not_for_decisions": sorted(self.not_for_decisions), "top_k": self.top_k}  # fmt: skip
        flagged = [name for name in top if name in self.not_for_decisions]
        if flagged:
            ranks = ", ".join(f"{name} (#{top.index(name) + 1}, AUC loss {importance[name]:.4f})" for name in flagged)
            return (
                False,
                (
                    f"blocked by the explainability gate: {ranks} must not drive decisions but is among the top "
                    f"{self.top_k} drivers (feature schema for_decisions=false / DRIFTLOOP_NOT_FOR_DECISIONS)"
                ),
                evidence,
            )
        return True, f"explainability gate passed (top drivers: {', '.join(top) or 'none'})", evidence
