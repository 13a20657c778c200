"""The console's model page against a real MLflow server and a real GitOps repository: lineage, metrics against
the champion, the gate, and which version held ``champion`` when, by which commit."""

from __future__ import annotations

import re
from pathlib import Path

from driftloop.config import get_settings
from tests.gitops.conftest import LINEAGE, MODEL
from workflows.engine.console._models import model_page
from workflows.gitops.console_sources import RegistrySources
from workflows.steps._registry import connect
from workflows.steps.promote import promote


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_model_page_shows_lineage_metrics_gate_and_champion_history(bare_repo: Path, register) -> None:  # type: ignore[no-untyped-def]
    client = connect()
    first, second = register(100.0), register(90.0)
    for version, auc, passed in ((first, 0.70, "true"), (second, 0.75, "false")):
        run_id = client.get_model_version(MODEL, version).run_id
        client.log_metric(run_id, "holdout_roc_auc", auc)
        client.set_tag(run_id, "evaluation.passed", passed)
        client.set_tag(run_id, "evaluation.reason", f"ROC AUC {auc} <b>checked</b>")
    promote(MODEL, first, payload_columns={})
    html = model_page(MODEL, "driftloop", "csrf-token", RegistrySources())
    text = _text(html)
    assert f"Champion: version {first}" in text
    assert "Registry (MLflow): not available" not in text and "Alias history (GitOps): not available" not in text
    versions = client.search_model_versions(f"name='{MODEL}'")  # the package's other tests register versions too
    assert text.count("not available") == len(versions) + 1  # no feature-schema tag on any version, no report yet
    assert LINEAGE["data_snapshot_id"] in text and LINEAGE["git_commit"][:12] + "…" in text
    assert f'href="/workflows/driftloop/{LINEAGE["workflow_name"]}"' in html  # the run that made it, in the console
    assert "holdout_roc_auc 0.75 (+0.05 vs champion)" in text and "holdout_roc_auc 0.7 (+0 vs champion)" in text
    assert "passed" in text and "failed" in text and "&lt;b&gt;checked&lt;/b&gt;" in html
    mlflow_uri = get_settings().mlflow_uri  # links come from DRIFTLOOP_MLFLOW_URI
    assert f'href="{mlflow_uri}/#/models/{MODEL}/versions/{second}"' in html
    history = html[html.index("Champion history") :]
    assert "promote" in history and f"none → {first}" in history and re.search(r"<code>[0-9a-f]{12}</code>", history)
