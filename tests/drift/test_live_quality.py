"""Live quality on real pieces: the generator's scenarios served (lake) by a model that knows the baseline risk rule,
their true outcomes in the outcome store, and the monitor's exported ROC AUC, log loss and calibration error.

Concept drift (same applicants, another rule) drops live AUC while the inputs do not drift; covariate shift (other
applicants, same rule) moves the inputs but leaves live AUC where it was: the two signals answer different questions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.columns import ENTITY_KEY, LABEL, TIMESTAMP
from features.generator import _risk_logit, generate
from monitors.drift import DriftOptions, build_profile
from monitors.drift._monitor import Monitor, MonitorConfig
from monitors.drift._sources import LocalReference
from monitors.feedback._store import FeedbackStore, OutcomeRow
from monitors.feedback.quality import QualityMetrics, QualityWatch, join_outcomes, live_quality
from monitors.lake import write_frame
from workflows.steps._metrics import roc_auc

MODEL = "credit-risk"
ROWS = 3000


def _served(scenario: str, seed: int = 5) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A scenario's features, the scores of a model that learnt the *baseline* rule, and the true outcomes."""
    frame = generate(scenario, rows=ROWS, seed=seed)
    features = frame.drop(columns=[ENTITY_KEY, TIMESTAMP, LABEL])
    filled = features.fillna({"annual_income": 62_000.0})
    scores = 1.0 / (1.0 + np.exp(-_risk_logit(filled, concept_drift=False)))
    return features, scores, frame[LABEL].to_numpy()


@pytest.fixture
def reference_dir(tmp_path: Path) -> Path:
    features, scores, labels = _served("baseline", seed=1)
    folder = tmp_path / "reference"
    deciles = [float(q) for q in np.quantile(scores, np.linspace(0.1, 0.9, 9))]  # what `evaluate` records
    metadata = {"version": "4", "holdout_roc_auc": roc_auc(labels, scores), "score_deciles": deciles}
    build_profile(features, metadata=metadata).save(folder / "profile")
    return folder


def _monitor(tmp_path: Path, reference_dir: Path, min_rows: int = 200) -> Monitor:
    config = MonitorConfig(model=MODEL, lake_uri=str(tmp_path / "lake"), reports_dir=tmp_path / "reports",
                           last_rows=ROWS, last_minutes=None, interval_s=60.0, options=DriftOptions(drift_share=0.3),
                           html_reports=False)  # fmt: skip
    monitor = Monitor(config, LocalReference(reference_dir))
    watch = QualityWatch(FeedbackStore(tmp_path / "outcomes.db"), QualityMetrics(MODEL, monitor.metrics.registry),
                         last_rows=ROWS, last_minutes=None, min_rows=min_rows)  # fmt: skip
    monitor.quality = watch
    return monitor


def _serve_and_label(tmp_path: Path, scenario: str, labelled: float = 1.0) -> None:
    features, scores, labels = _served(scenario)
    write_frame(str(tmp_path / "lake"), MODEL, features, predictions=list(scores), model_version="4", part_id=scenario)
    keep = int(len(labels) * labelled)
    rows = [OutcomeRow(f"{scenario}-{i}", int(labels[i]), time.time()) for i in range(keep)]
    FeedbackStore(tmp_path / "outcomes.db").ingest(rows)


def _value(monitor: Monitor, name: str, **labels: str) -> Any:
    return monitor.metrics.registry.get_sample_value(name, {"model": MODEL, "version": "4", **labels})


def test_concept_drift_drops_live_auc_while_input_drift_stays_quiet(tmp_path: Path, reference_dir: Path) -> None:
    monitor = _monitor(tmp_path, reference_dir)
    _serve_and_label(tmp_path, "concept-drift")
    evaluation = monitor.evaluate()
    assert evaluation.result is not None and not evaluation.result.dataset_drift  # the inputs did not move
    live, reference = _value(monitor, "driftloop_live_auc"), _value(monitor, "driftloop_evaluation_auc")
    assert reference > 0.7 and live < reference - 0.1, (live, reference)
    assert _value(monitor, "driftloop_live_labelled_rows") == ROWS
    assert 0 < _value(monitor, "driftloop_live_log_loss") < 5
    assert 0 <= _value(monitor, "driftloop_live_calibration_error") < 1
    assert _value(monitor, "driftloop_live_segment_auc", segment="term=36 months") is not None
    assert _value(monitor, "driftloop_unseen_category_share", feature="purpose") == 0.0
    assert _value(monitor, "driftloop_prediction_psi") < 0.1  # the scores did not move either: only labels tell
    quality = evaluation.to_dict()["quality"]  # what `driftloop monitor --once --json` prints
    assert quality["versions"][0]["roc_auc"] == live and quality["evaluation_auc"] == reference


def test_covariate_shift_moves_the_inputs_but_not_live_auc(tmp_path: Path, reference_dir: Path) -> None:
    monitor = _monitor(tmp_path, reference_dir)
    _serve_and_label(tmp_path, "covariate-shift")
    evaluation = monitor.evaluate()
    assert evaluation.result is not None and evaluation.result.dataset_drift
    live, reference = _value(monitor, "driftloop_live_auc"), _value(monitor, "driftloop_evaluation_auc")
    assert abs(live - reference) < 0.05, (live, reference)
    assert _value(monitor, "driftloop_prediction_psi") > 0.2  # the output drifted with the inputs


def test_too_few_labels_export_nothing_and_outcomes_join_by_request_and_row(
    tmp_path: Path, reference_dir: Path
) -> None:
    monitor = _monitor(tmp_path, reference_dir, min_rows=500)
    _serve_and_label(tmp_path, "baseline", labelled=0.1)  # 300 labelled rows < 500
    monitor.evaluate()
    assert _value(monitor, "driftloop_live_auc") is None and _value(monitor, "driftloop_live_labelled_rows") is None
    window = pd.DataFrame({"_request_id": ["a", "a", "b"], "_row": [0, 1, 0], "_model_version": ["1"] * 3,
                           "_prediction": [0.9, 0.1, "oops"]})  # fmt: skip
    outcomes = pd.DataFrame({"_request_id": ["a", "b", "c"], "_row": [1, 0, 0], "outcome": [0, 1, 1],
                             "observed_at": [0.0] * 3})  # fmt: skip
    joined = join_outcomes(window, outcomes)
    assert joined[["_request_id", "_row", "outcome", "_score"]].values.tolist() == [["a", 1, 0, 0.1]]
    assert live_quality(joined, min_rows=1) == []  # one class only: no AUC


def test_new_categories_show_as_unseen_share(tmp_path: Path, reference_dir: Path) -> None:
    monitor = _monitor(tmp_path, reference_dir)
    _serve_and_label(tmp_path, "new-category", labelled=0.0)
    monitor.evaluate()
    share = _value(monitor, "driftloop_unseen_category_share", feature="purpose")
    assert share == pytest.approx(0.2, abs=0.03)
    assert _value(monitor, "driftloop_unseen_category_share", feature="term") == 0.0
