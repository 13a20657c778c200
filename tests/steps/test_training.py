"""The model and metrics without MLflow: deterministic CPU training, preprocessing of nulls and unseen categories,
metrics checked against brute-force definitions, and the same training on CUDA when one is visible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from features.store import code_schema
from workflows.steps._dataset import TrainingSet, read_training_set, split
from workflows.steps._metrics import calibration_error, log_loss, roc_auc
from workflows.steps._tabular import UNKNOWN, Preprocessing, predict_proba
from workflows.steps._training import fit
from workflows.steps.build_training_set import build_training_set


@pytest.fixture(scope="module")
def training_set(baseline_path: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainingSet:
    built = build_training_set("credit-risk", str(baseline_path), tmp_path_factory.mktemp("ts") / "ts.parquet")
    return read_training_set(built.path)


def test_cpu_training_is_deterministic_and_learns(training_set: TrainingSet) -> None:
    first = fit(training_set, epochs=2, seed=11, device=torch.device("cpu"))
    second = fit(training_set, epochs=2, seed=11, device=torch.device("cpu"))
    assert first.history == second.history
    for name, tensor in first.net.state_dict().items():
        assert torch.equal(tensor, second.net.state_dict()[name]), name
    assert first.history[-1]["val_roc_auc"] > 0.65
    other = fit(training_set, epochs=2, seed=12, device=torch.device("cpu"))
    assert other.history != first.history


def test_preprocessing_maps_nulls_and_unseen_categories(training_set: TrainingSet) -> None:
    prep = Preprocessing.fit(training_set.frame, training_set.schema)
    rows = training_set.features.head(3).copy()
    rows.loc[rows.index[0], "purpose"] = "buy_now_pay_later"
    rows.loc[rows.index[1], "employment_length"] = None
    rows.loc[rows.index[2], "annual_income"] = np.nan
    numeric, codes = prep.transform(rows)
    purpose, employment = prep.categorical.index("purpose"), prep.categorical.index("employment_length")
    assert codes[0, purpose] == UNKNOWN and codes[1, employment] == UNKNOWN and codes[2, purpose] != UNKNOWN
    income = prep.numeric.index("annual_income")
    expected = (prep.medians["annual_income"] - prep.means["annual_income"]) / prep.scales["annual_income"]
    assert numeric[2, income] == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(numeric).all()


def test_holdout_is_the_newest_fifth_and_never_overlaps(training_set: TrainingSet) -> None:
    train_rows, validation_rows, holdout = split(training_set.frame)
    assert len(holdout) == len(training_set.frame) // 5
    assert train_rows["event_timestamp"].max() <= validation_rows["event_timestamp"].min()
    assert validation_rows["event_timestamp"].max() <= holdout["event_timestamp"].min()


def test_metrics_match_their_definitions() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300), 2)  # rounding creates ties
    positives, negatives = scores[labels == 1], scores[labels == 0]
    pairs = (positives[:, None] > negatives[None, :]).mean() + 0.5 * (positives[:, None] == negatives[None, :]).mean()
    assert roc_auc(labels, scores) == pytest.approx(pairs)
    expected_loss = -np.mean(
        labels * np.log(np.clip(scores, 1e-7, 1)) + (1 - labels) * np.log(np.clip(1 - scores, 1e-7, 1))
    )
    assert log_loss(labels, scores) == pytest.approx(expected_loss)
    assert calibration_error(labels, labels.astype(float)) == 0.0
    assert np.isnan(roc_auc(np.ones(5), scores[:5]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_cpu_closely(training_set: TrainingSet) -> None:
    cpu = fit(training_set, epochs=2, seed=11, device=torch.device("cpu"))
    cuda = fit(training_set, epochs=2, seed=11, device=torch.device("cuda"))
    assert abs(cpu.history[-1]["val_roc_auc"] - cuda.history[-1]["val_roc_auc"]) < 0.02
    frame = training_set.features.head(100)
    scores = predict_proba(cuda.net, cuda.prep, frame, torch.device("cuda"))
    assert scores.shape == (100,) and ((scores > 0) & (scores < 1)).all()


def test_contract_of_the_built_training_set_is_the_code_schema(training_set: TrainingSet) -> None:
    assert training_set.schema == code_schema()
    assert list(training_set.frame.columns[:3]) == ["applicant_id", "event_timestamp", "default_12m"]
