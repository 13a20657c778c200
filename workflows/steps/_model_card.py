"""The model card: a short markdown page that says what the version was trained on, how good it is, and where not."""

from __future__ import annotations

from typing import Any

__all__ = ["model_card"]

LIMITATIONS = (
    "Trained on synthetic credit applications from `driftloop data generate`; not a real lending model.",
    "Scores are probabilities of default within 12 months; calibration is measured, not guaranteed, off the holdout.",
    "Unseen categories map to an 'unknown' embedding; nulls in numerics are filled with training medians.",
    "Segments with fewer than 50 holdout rows (or one class) have no per-segment metric.",
)


def _table(rows: list[tuple[str, str]]) -> str:
    return "\n".join(["| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows])


def _fairness(report: dict[str, Any]) -> list[str]:
    fairness = {k: v for k, v in (report.get("fairness") or {}).items() if k != "thresholds"}
    gate = (report.get("gates") or {}).get("fairness", {})
    if not fairness:
        return []
    rows = []
    for column, found in fairness.items():
        for kind, label in (("auc_gap", "ROC AUC gap"), ("parity_gap", "positive-rate gap")):
            value = found.get(kind)
            rows.append((f"{column}: {label}", "n/a" if value is None else f"{value:.4f}"))
    return ["## Fairness", _table(rows), "", f"Gate: {gate.get('reason', 'not evaluated')}", ""]


def _explainability(report: dict[str, Any]) -> list[str]:
    found = report.get("explainability") or {}
    importance = found.get("permutation_importance") or {}
    if not importance:
        return []
    flagged = set(found.get("not_for_decisions") or ())
    rows = [(name + (" (not for decisions)" if name in flagged else ""), f"{value:.4f}")
            for name, value in importance.items()]  # fmt: skip
    gate = (report.get("gates") or {}).get("explainability", {})
    return [
        "## Explainability (permutation importance: ROC AUC lost when the feature is shuffled)",
        _table(rows), "", f"Gate: {gate.get('reason', 'not evaluated')}", "",
    ]  # fmt: skip


def model_card(
    model_name: str, version: str, tags: dict[str, str], params: dict[str, str], report: dict[str, Any]
) -> str:
    metrics = report.get("metrics", {})
    segments = report.get("segments", {})
    gate = report.get("gate", {})
    lines = [
        f"# Model card — {model_name} v{version}",
        "",
        "## Data",
        _table(
            [
                ("feature service", tags.get("feature_service", "")),
                ("feature schema fingerprint", tags.get("feature_schema_fingerprint", "")),
                ("data snapshot id", tags.get("data_snapshot_id", "")),
                ("training rows (incl. holdout)", params.get("rows", "")),
                ("holdout rows (newest 20%)", str(report.get("holdout_rows", ""))),
            ]
        ),
        "",
        "## Training",
        _table(
            [(key, params.get(key, "")) for key in ("epochs", "seed", "batch_size", "learning_rate", "hidden")]
            + [
                ("git commit", tags.get("git_commit", "")),
                ("trigger", f"{tags.get('trigger', '')} ({tags.get('trigger_ref', '')})"),
            ]
        ),
        "",
        "## Holdout metrics",
        _table([(name, f"{value:.4f}") for name, value in metrics.items()] or [("(not evaluated)", "")]),
        "",
        f"Gate: {'passed' if gate.get('passed') else 'failed'} — {gate.get('reason', 'not evaluated')}",
        "",
        "## Segments (ROC AUC)",
        _table(
            [(name, f"{m['roc_auc']:.4f} ({int(m['rows'])} rows)") for name, m in segments.items()] or [("(none)", "")]
        ),
        "",
        *_fairness(report),
        *_explainability(report),
        "## Limitations",
        *[f"- {text}" for text in LIMITATIONS],
        "",
    ]
    return "\n".join(lines)
