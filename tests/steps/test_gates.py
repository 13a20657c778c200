"""The fairness and explainability gates of `evaluate`, each against a model built to fail it (and one that passes),
on a generated holdout; the evidence reaches the model card. No MLflow: the gates are pure functions of a scorer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftloop.config import get_settings
from features.columns import LABEL, declared_schema
from features.contract import FeatureSchema, FeatureSpec
from features.generator import _risk_logit, generate
from workflows.steps._gates import Explainability, Fairness, permutation_importance
from workflows.steps._model_card import model_card
from workflows.steps.evaluate import gates

COLUMNS = declared_schema("credit-risk").names


class RuleModel:
    """A pyfunc-like model: a true risk rule of the generator (baseline, or the concept-drift world's, where age
    drives risk), bent by ``bend(frame, logit) -> logit``."""

    def __init__(self, bend: Any = None, concept_drift: bool = False) -> None:
        self.bend, self.concept_drift = bend, concept_drift

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        logit = _risk_logit(frame.fillna({"annual_income": 62_000.0}), concept_drift=self.concept_drift)
        if self.bend is not None:
            logit = self.bend(frame, logit)
        return 1.0 / (1.0 + np.exp(-logit))


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    return generate("baseline", rows=3000, seed=21)


def _scores(model: RuleModel, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict(frame[COLUMNS]), dtype=np.float64)


FAIRNESS = Fairness(max_auc_gap=0.2, max_parity_gap=0.4, threshold=0.5)


def test_a_fair_model_passes_and_reports_its_gaps(holdout: pd.DataFrame) -> None:
    passed, reason, evidence = FAIRNESS.judge(holdout, _scores(RuleModel(), holdout))
    assert passed, reason
    assert set(evidence["term"]["roc_auc"]) == {"36 months", "60 months"} and evidence["term"]["auc_gap"] < 0.2
    assert reason.startswith("fairness gate passed") and "term: AUC gap" in reason


def test_a_model_blind_on_one_segment_is_blocked_by_the_auc_gap(holdout: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)

    def blind_on_60_months(frame: pd.DataFrame, logit: np.ndarray) -> np.ndarray:
        noise = rng.normal(-1.0, 1.0, len(frame))
        return np.where(frame["term"].to_numpy() == "60 months", noise, logit)

    passed, reason, evidence = FAIRNESS.judge(holdout, _scores(RuleModel(blind_on_60_months), holdout))
    assert not passed and evidence["term"]["auc_gap"] > 0.2
    assert reason.startswith("blocked by the fairness gate: ROC AUC differs by")
    assert "term=36 months" in reason and "term=60 months" in reason and "DRIFTLOOP_FAIRNESS_MAX_AUC_GAP" in reason


def test_a_model_that_flags_every_renter_is_blocked_by_demographic_parity(holdout: pd.DataFrame) -> None:
    def renters_positive(frame: pd.DataFrame, logit: np.ndarray) -> np.ndarray:
        return np.where(frame["home_ownership"].to_numpy() == "RENT", logit + 4.0, logit)

    passed, reason, evidence = FAIRNESS.judge(holdout, _scores(RuleModel(renters_positive), holdout))
    assert not passed and evidence["home_ownership"]["parity_gap"] > 0.4
    assert "positive-prediction rate at 0.5 differs by" in reason and "home_ownership=RENT" in reason
    assert "DRIFTLOOP_FAIRNESS_MAX_PARITY_GAP" in reason


@pytest.fixture(scope="module")
def drifted() -> pd.DataFrame:
    """The concept-drift world: a model that learnt it leans on age (which now drives defaults)."""
    return generate("concept-drift", rows=3000, seed=21)


AGE_MODEL = RuleModel(concept_drift=True)


def test_permutation_importance_is_seeded_and_finds_the_drivers(drifted: pd.DataFrame) -> None:
    first = permutation_importance(AGE_MODEL.predict, drifted, COLUMNS, seed=3)
    assert first == permutation_importance(AGE_MODEL.predict, drifted, COLUMNS, seed=3)
    assert next(iter(first)) == "age" and list(first) == sorted(first, key=lambda name: -first[name])
    assert abs(first["open_accounts"]) < 0.01  # the rule never reads it


def test_a_not_for_decisions_feature_among_the_top_drivers_blocks(holdout: pd.DataFrame, drifted: pd.DataFrame) -> None:
    importance = permutation_importance(AGE_MODEL.predict, drifted, COLUMNS)
    schema = declared_schema("credit-risk")
    marked = FeatureSchema(schema.service, tuple(replace(s, for_decisions=s.name != "age") for s in schema.features))
    passed, reason, evidence = Explainability.of(marked, (), top_k=3).judge(importance)
    assert not passed and evidence["top_drivers"][0] == "age"
    assert reason.startswith("blocked by the explainability gate: age (#1, AUC loss") and "top 3" in reason
    assert Explainability.of(schema, (), top_k=3).judge(importance)[0]  # unmarked: the same model passes
    assert not Explainability.of(schema, ("age",), top_k=3).judge(importance)[0]  # DRIFTLOOP_NOT_FOR_DECISIONS
    fair = permutation_importance(RuleModel().predict, holdout, COLUMNS)
    assert Explainability.of(marked, (), top_k=3).judge(fair)[0]  # age is not a top driver of the true rule


def test_the_contract_keeps_its_hash_unless_a_feature_is_marked() -> None:
    schema = declared_schema("credit-risk")
    assert "for_decisions" not in schema.features[0].to_json()
    marked = replace(schema.features[0], for_decisions=False)
    assert FeatureSpec.from_json(marked.to_json()) == marked
    assert FeatureSchema(schema.service, (marked, *schema.features[1:])).definition_hash() != schema.definition_hash()


def test_evaluate_gates_and_the_model_card_show_why(drifted: pd.DataFrame) -> None:
    settings = get_settings({"DRIFTLOOP_NOT_FOR_DECISIONS": "age"})
    model, holdout = AGE_MODEL, drifted
    verdicts, evidence = gates(model, holdout, COLUMNS, _scores(model, holdout), declared_schema("m"), settings)
    assert [(name, ok) for name, ok, _ in verdicts] == [("fairness", True), ("explainability", False)]
    report = {"metrics": {"roc_auc": 0.8}, "gates": {name: {"passed": ok, "reason": why} for name, ok, why in verdicts},
              **evidence, "holdout_rows": len(holdout)}  # fmt: skip
    card = model_card("credit-risk", "3", {}, {}, report)
    assert "## Fairness" in card and "| term: ROC AUC gap |" in card
    assert "## Explainability" in card and "| age (not for decisions) |" in card
    assert "blocked by the explainability gate" in card
    assert holdout[LABEL].nunique() == 2
