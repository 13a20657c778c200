"""Step ``evaluate``: holdout metrics and the gates — against the current champion, fairness, explainability.

Metrics: ROC AUC, accuracy, log loss, calibration error, p95 batch latency, ROC AUC per segment. The champion is
scored on the same holdout when it can read it (else its recorded AUC is used). The fairness gate bounds the ROC AUC
gap and the positive-rate gap between segment values; the explainability gate logs seeded permutation importance
(``evaluation/permutation_importance.json``) and blocks a model whose top drivers include a feature that must not
drive decisions (``workflows/steps/_gates.py``). Outputs ``passed`` and ``reason`` (every gate that blocked, why).

    python -m workflows.steps.evaluate --model-name credit-risk --run-id <run>
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.registry_contract import CHAMPION, alias_uri, run_model_uri
from workflows.steps._io import input_artifact, output_artifact, run_step
from workflows.steps.contract import StepContract

log = logging.getLogger("driftloop.steps.evaluate")

__all__ = ["IMPORTANCE_ARTIFACT", "METRICS_ARTIFACT", "EvaluationResult", "evaluate", "gates", "main"]

METRICS_ARTIFACT = "evaluation/metrics.json"
IMPORTANCE_ARTIFACT = "evaluation/permutation_importance.json"


@dataclass
class EvaluationResult:
    passed: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)


def _champion_auc(
    client: Any, model_name: str, run_id: str, holdout: Any, columns: list[str]
) -> tuple[float | None, str]:
    """The champion's AUC on this holdout; its recorded AUC when it cannot score these columns; None if no champion."""
    import mlflow

    from workflows.steps._evaluation import holdout_metrics
    from workflows.steps._registry import version_by_alias

    champion = version_by_alias(client, model_name, CHAMPION)
    if champion is None or champion.run_id == run_id:
        return None, "no champion"
    label = f"champion v{champion.version}"
    try:
        model = mlflow.pyfunc.load_model(alias_uri(model_name, CHAMPION))
        return holdout_metrics(model, holdout, columns)[0]["roc_auc"], label
    except Exception as exc:  # an older champion may not score these columns: say so, then use its recorded AUC
        log.warning(
            "the champion v%s cannot score this holdout (%s: %s): comparing with its recorded holdout_roc_auc",
            champion.version,
            exc.__class__.__name__,
            exc,
        )
        recorded = client.get_run(champion.run_id).data.metrics.get("holdout_roc_auc")
        return recorded, f"{label} (recorded metric)"


def gates(
    model: Any, holdout: Any, columns: list[str], scores: Any, schema: Any, settings: Any
) -> tuple[list[tuple[str, bool, str]], dict[str, Any]]:
    """The fairness and explainability gates: ``[(gate, passed, reason)]`` and their evidence for the report."""
    from workflows.steps._evaluation import score
    from workflows.steps._gates import Explainability, Fairness, permutation_importance

    fairness = Fairness(settings.fairness_max_auc_gap, settings.fairness_max_parity_gap, settings.decision_threshold)
    fair, fair_reason, fair_evidence = fairness.judge(holdout, scores)
    importance = permutation_importance(lambda frame: score(model, frame, columns), holdout, columns)
    explain = Explainability.of(schema, settings.not_for_decisions, settings.explain_top_k)
    clear, clear_reason, clear_evidence = explain.judge(importance)
    verdicts = [("fairness", fair, fair_reason), ("explainability", clear, clear_reason)]
    return verdicts, {"fairness": fair_evidence, "explainability": clear_evidence}


def evaluate(
    model_name: str,
    run_id: str,
    training_set_path: Path,
    min_auc: float = 0.70,
    max_regression: float = 0.01,
    *,
    metrics_path: Path | None = None,
) -> EvaluationResult:
    """Score the run's model on the newest 20% of the training set and apply the gate; logs everything to the run."""
    import mlflow
    import numpy as np

    from driftloop.config import get_settings
    from workflows.steps._dataset import read_training_set, split
    from workflows.steps._evaluation import Gate, batch_latency_p95_ms, holdout_metrics, segment_metrics
    from workflows.steps._registry import connect

    client = connect()
    data = read_training_set(training_set_path)
    holdout = split(data.frame)[2]
    columns = data.schema.names
    model_uri = run_model_uri(run_id, client.get_run(run_id).data.tags)
    model = mlflow.pyfunc.load_model(model_uri)
    metrics, scores = holdout_metrics(model, holdout, columns)
    metrics["p95_batch_latency_ms"] = batch_latency_p95_ms(model, holdout, columns)
    champion_auc, champion_label = _champion_auc(client, model_name, run_id, holdout, columns)
    auc_passed, auc_reason = Gate(min_auc, max_regression).judge(metrics["roc_auc"], champion_auc, champion_label)
    verdicts, evidence = gates(model, holdout, columns, scores, data.schema, get_settings())
    blocked = [reason for _, ok, reason in verdicts if not ok]
    passed = auc_passed and not blocked
    reason = "; ".join(([] if auc_passed else [auc_reason]) + blocked) if not passed else auc_reason
    report = {
        "holdout_rows": len(holdout),
        "metrics": metrics,
        "segments": segment_metrics(holdout, scores),
        "score_deciles": [float(q) for q in np.quantile(scores, np.linspace(0.1, 0.9, 9))],
        CHAMPION: {"label": champion_label, "roc_auc": champion_auc},
        "gate": {"min_auc": min_auc, "max_regression": max_regression, "passed": passed, "reason": reason},
        "gates": {"auc": {"passed": auc_passed, "reason": auc_reason},
                  **{name: {"passed": ok, "reason": why} for name, ok, why in verdicts}},
        **evidence,
    }  # fmt: skip
    for name, value in metrics.items():
        client.log_metric(run_id, f"holdout_{name}", value)
    client.log_text(run_id, json.dumps(report, indent=2), METRICS_ARTIFACT)
    client.log_text(run_id, json.dumps(evidence["explainability"], indent=2), IMPORTANCE_ARTIFACT)
    for name, ok, _ in verdicts:
        client.set_tag(run_id, f"evaluation.{name}", "passed" if ok else "blocked")
    client.set_tag(run_id, "evaluation.passed", str(passed).lower())
    client.set_tag(run_id, "evaluation.reason", reason)
    if metrics_path is not None:
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text(json.dumps(report, indent=2))
    return EvaluationResult(passed=passed, reason=reason, metrics=report)


def _body(contract: StepContract, flags: dict[str, Any]) -> dict[str, Any]:
    result = evaluate(
        flags["model_name"],
        flags["run_id"],
        input_artifact(contract, "training-set"),
        flags["min_auc"],
        flags["max_regression"],
        metrics_path=output_artifact(contract, "metrics"),
    )
    return {"passed": str(result.passed).lower(), "reason": result.reason}


def main(argv: Sequence[str] | None = None) -> None:
    run_step("evaluate", argv, _body)


if __name__ == "__main__":
    main()
