"""Scoring a pyfunc on the holdout: metrics, per-segment AUC, batch latency, and the champion comparison gate."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.columns import LABEL
from workflows.steps._metrics import classification_metrics, roc_auc
from workflows.steps._pyfunc import accepts_records, feature_records, probabilities

__all__ = ["SEGMENT_COLUMNS", "Gate", "batch_latency_p95_ms", "model_input", "score", "segment_metrics"]

SEGMENT_COLUMNS = ("term", "home_ownership")
LATENCY_BATCH = 256
MIN_SEGMENT_ROWS = 50


def score(model: Any, frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return probabilities(model.predict(model_input(model, frame[columns])))


def model_input(model: Any, frame: pd.DataFrame) -> Any:
    """What the loaded pyfunc takes: records for a typed model (as a client sends them), else the frame."""
    return feature_records(frame) if accepts_records(model) else frame


def segment_metrics(frame: pd.DataFrame, scores: np.ndarray) -> dict[str, dict[str, float]]:
    """ROC AUC and row count per value of each segment column (segments too small or one-class are skipped)."""
    result: dict[str, dict[str, float]] = {}
    for column in SEGMENT_COLUMNS:
        if column not in frame.columns:
            continue
        for value, index in frame.groupby(column, dropna=False).indices.items():
            labels = frame[LABEL].to_numpy()[index]
            if len(index) >= MIN_SEGMENT_ROWS and 0 < labels.sum() < len(labels):
                result[f"{column}={value}"] = {"roc_auc": roc_auc(labels, scores[index]), "rows": float(len(index))}
    return result


def batch_latency_p95_ms(model: Any, frame: pd.DataFrame, columns: list[str], repeats: int = 3) -> float:
    """p95 wall time of predicting one batch of 256 rows (pyfunc overhead and schema enforcement included)."""
    timings = []
    for _ in range(repeats):
        for start in range(0, len(frame), LATENCY_BATCH):
            batch = model_input(model, frame.iloc[start : start + LATENCY_BATCH][columns])
            began = time.perf_counter()
            model.predict(batch)
            timings.append((time.perf_counter() - began) * 1000)
    return float(np.percentile(timings, 95)) if timings else float("nan")


def holdout_metrics(model: Any, holdout: pd.DataFrame, columns: list[str]) -> tuple[dict[str, float], np.ndarray]:
    scores = score(model, holdout, columns)
    return classification_metrics(holdout[LABEL].to_numpy(), scores), scores


@dataclass(frozen=True)
class Gate:
    """Absolute floor plus "no worse than the champion beyond a tolerance", like mlflow's MetricThreshold."""

    min_auc: float
    max_regression: float

    def judge(self, auc: float, champion_auc: float | None, champion_label: str) -> tuple[bool, str]:
        if math.isnan(auc):
            return False, "ROC AUC is undefined (the holdout has a single class)"
        if auc < self.min_auc:
            return False, f"ROC AUC {auc:.4f} is below the floor {self.min_auc:.4f}"
        if champion_auc is None or math.isnan(champion_auc):
            return True, f"ROC AUC {auc:.4f} passes the floor {self.min_auc:.4f}; no champion to compare with"
        if auc < champion_auc - self.max_regression:
            return False, (
                f"ROC AUC {auc:.4f} is {champion_auc - auc:.4f} below {champion_label} ({champion_auc:.4f}); "
                f"tolerance {self.max_regression:.4f}"
            )
        return (
            True,
            f"ROC AUC {auc:.4f} >= floor {self.min_auc:.4f} and within tolerance of {champion_label} ({champion_auc:.4f})",
        )
