"""``/models/<name>``: every registered version with its lineage, its metrics against the champion's, its gate
decision, and which version held ``champion`` when (the GitOps history) — the chain of one incident on one page.

Each part comes from its own backing piece and fails on its own: the registry from MLflow over HTTP
(``DRIFTLOOP_MLFLOW_URI``; probed first with a short timeout so a dead server costs seconds, not MLflow's minutes
of retries), the alias history from the GitOps repository (``driftloop history``'s own code). A part whose piece
is missing or down says "not available" and why; the page itself always renders (never a 5xx). Links to MLflow,
Alertmanager and Prometheus are built from the ``DRIFTLOOP_*`` settings, never from a hard-coded host.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from driftloop.config import Settings, get_settings
from driftloop.registry_contract import CHAMPION
from workflows.engine.console._html import esc, field_list, layout, phase_badge, segment, shown_time, table
from workflows.engine.console._reports import Report, report_for, reports_of
from workflows.engine.console._sources import NO_SOURCES, ModelSources

__all__ = ["LINEAGE", "model_page"]

log = logging.getLogger(__name__)

# (tag, heading) of the lineage columns; the names `register` writes (workflows/steps/register.py LINEAGE_TAGS)
LINEAGE = (
    ("git_commit", "Code commit"),
    ("data_snapshot_id", "Data snapshot"),
    ("feature_schema_fingerprint", "Feature schema"),
    ("trigger", "Trigger"),
    ("trigger_ref", "Trigger ref"),
    ("workflow_name", "Workflow"),
)
_PROBE_SECONDS = 2.0
_MAX_VERSIONS = 100
_MAX_REPORTS = 10


def _unavailable(what: str, why: str) -> str:
    return f'<p class="notice" role="status"><strong>{esc(what)}: not available</strong> — {esc(why)}</p>'


def _client(settings: Settings, sources: ModelSources) -> Any:
    """An MlflowClient on the configured server after a short health probe (raises ConnectionError with why)."""
    import httpx

    uri = settings.mlflow_uri
    if not uri.startswith(("http://", "https://")):
        raise ConnectionError(f"DRIFTLOOP_MLFLOW_URI {uri!r} is not an HTTP server")
    try:
        httpx.get(f"{uri}/health", timeout=_PROBE_SECONDS).raise_for_status()
    except httpx.HTTPError as exc:
        raise ConnectionError(f"MLflow at {uri} is unreachable ({type(exc).__name__})") from None
    return sources.mlflow_client(uri)


def _metrics_of(client: Any, run_id: str | None) -> tuple[dict[str, float], dict[str, str], str]:
    if not run_id:
        return {}, {}, ""
    run = client.get_run(run_id)
    return dict(run.data.metrics), dict(run.data.tags), str(run.info.experiment_id)


def _metric_cell(name: str, value: float, champion: dict[str, float]) -> str:
    text = f"{name} {value:.4g}"
    if name in champion:
        delta = value - champion[name]
        text += f" ({'+' if delta >= 0 else ''}{delta:.3g} vs champion)"
    return esc(text)


def _gate(tags: dict[str, str]) -> str:
    passed = tags.get("evaluation.passed")
    if passed is None:
        return '<span class="muted">no gate recorded</span>'
    badge = phase_badge("Succeeded" if passed == "true" else "Failed").replace(
        "Succeeded", "passed").replace("Failed", "failed")  # fmt: skip
    return f"{badge} {esc(tags.get('evaluation.reason', ''))}"


def _lineage_cell(tag: str, value: str, model: str, namespace: str, settings: Settings) -> str:
    if not value:
        return '<span class="muted">not available</span>'
    if tag == "workflow_name":
        return f'<a href="/workflows/{esc(segment(namespace))}/{esc(segment(value))}">{esc(value)}</a>'
    if tag == "trigger_ref" and settings.alertmanager_url.startswith(("http://", "https://")):
        # the ref is the alert's fingerprint, which Alertmanager's UI cannot filter on: show the model's alerts
        matcher = quote('{model="' + model + '"}')
        alerts = f"{settings.alertmanager_url}/#/alerts?silenced=true&inhibited=true&filter={matcher}"
        return f'<code>{esc(value)}</code> (<a href="{esc(alerts)}" rel="noopener noreferrer">alerts</a>)'
    return f"<code>{esc(value if len(value) <= 20 else value[:12] + '…')}</code>"


def _aliases(client: Any, name: str) -> dict[str, list[str]]:
    """version -> the aliases it holds (``champion``, ``challenger``, ``previous-champion``)."""
    held: dict[str, list[str]] = {}
    for alias, version in (getattr(client.get_registered_model(name), "aliases", None) or {}).items():
        held.setdefault(str(version), []).append(str(alias))
    return held


def _versions(name: str, namespace: str, settings: Settings, sources: ModelSources | None) -> tuple[str, str]:
    """(versions section, champion version) from MLflow, or a "not available" notice."""
    if sources is None:
        return _unavailable("Registry (MLflow)", NO_SOURCES), ""
    try:
        client = _client(settings, sources)
        versions = list(client.search_model_versions(f"name='{name}'", max_results=_MAX_VERSIONS))
    except ConnectionError as exc:
        return _unavailable("Registry (MLflow)", str(exc)), ""
    except Exception as exc:  # an MLflow error is shown, not raised: the page must render
        log.warning("console: reading model %s from MLflow failed: %s", name, exc)
        return _unavailable("Registry (MLflow)", f"{type(exc).__name__}: {str(exc)[:300]}"), ""
    if not versions:
        return _unavailable("Versions", f"MLflow at {settings.mlflow_uri} has no model {name!r}"), ""
    aliases = _aliases(client, name)  # search results do not carry aliases; the registered model does
    champion = next((v for v in versions if CHAMPION in aliases.get(str(v.version), [])), None)
    try:
        champion_metrics = _metrics_of(client, champion.run_id)[0] if champion else {}
    except Exception:  # a deleted run: compare against nothing
        champion_metrics = {}
    rows = []
    reports = reports_of(name)
    for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
        tags = dict(version.tags or {})
        try:
            metrics, run_tags, experiment = _metrics_of(client, version.run_id)
        except Exception:
            metrics, run_tags, experiment = {}, {}, ""
        shown = sorted(k for k in metrics if k.startswith("holdout_")) or sorted(metrics)[:4]
        base = settings.mlflow_uri
        links = f'<a href="{esc(base)}/#/models/{esc(segment(name))}/versions/{esc(version.version)}">version</a>'
        if version.run_id and experiment:
            links += f' · <a href="{esc(base)}/#/experiments/{esc(experiment)}/runs/{esc(version.run_id)}">run</a>'
        held = ", ".join(sorted(aliases.get(str(version.version), []))) or "—"
        rows.append([
            esc(version.version), esc(held),
            *(_lineage_cell(tag, tags.get(tag, ""), name, namespace, settings) for tag, _ in LINEAGE),
            "<br>".join(_metric_cell(k, metrics[k], champion_metrics) for k in shown) or '<span class="muted">—</span>',
            _gate(run_tags), _report_cell(name, tags, version, reports), links,
        ])  # fmt: skip
    headers = ["Version", "Aliases", *(h for _, h in LINEAGE), "Metrics", "Gate", "Drift report", "MLflow"]
    return table(headers, rows), str(champion.version) if champion else ""


def _report_link(model: str, report: Report) -> str:
    path = f"/models/{segment(model)}/reports/{segment(report.file)}"
    when = report.written.strftime("%Y-%m-%d %H:%M:%SZ")
    return f'<a href="{esc(path)}" rel="noopener">{esc(when)} (vs v{esc(report.version)})</a>'


def _report_cell(model: str, tags: dict[str, str], version: Any, reports: list[Report]) -> str:
    """The report of the drift window that triggered this version's retrain (drift-triggered versions only)."""
    parent = tags.get("parent_champion_version", "")
    if tags.get("trigger") != "drift" or not parent:
        return '<span class="muted">—</span>'
    registered = datetime.fromtimestamp(int(version.creation_timestamp) / 1000, UTC)
    found = report_for(reports, parent, registered)
    return _report_link(model, found) if found else '<span class="muted">not available (no report kept)</span>'


def _reports_section(name: str) -> str:
    reports = reports_of(name)[:_MAX_REPORTS]
    if not reports:
        return _unavailable("Drift reports (Evidently)", "the monitor has written no HTML report for this model yet")
    return "<ul>" + "".join(f"<li>{_report_link(name, r)}</li>" for r in reports) + "</ul>"


def _history(name: str, sources: ModelSources | None) -> str:
    """Which version held the pin (and ``champion``) when: the GitOps commits, as ``driftloop history`` reads them."""
    from pathlib import Path

    if sources is None:
        return _unavailable("Alias history (GitOps)", NO_SOURCES)
    url = get_settings().gitops_repo
    if "://" not in url and "@" not in url and not (Path(url) / "HEAD").exists():
        return _unavailable(
            "Alias history (GitOps)", f"no GitOps repository at {url} yet (the first promotion makes it)"
        )
    try:
        events = sources.promotion_history(name)
    except Exception as exc:  # no GitOps repository yet, git missing…: the rest of the page still renders
        return _unavailable("Alias history (GitOps)", f"{type(exc).__name__}: {str(exc)[:300]}")
    rows = [
        [shown_time(e.date), esc(e.environment), esc(e.event), esc(f"{e.previous_version} → {e.version}"),
         f"<code>{esc(e.commit[:12])}</code>", esc(e.actor),
         f'<a href="/workflows/{esc(segment(get_settings().namespace))}/{esc(segment(e.workflow))}">{esc(e.workflow)}</a>'
         if e.workflow != "none" else '<span class="muted">—</span>',
         esc(f"{e.trigger} ({e.trigger_ref})" + (f" — {e.reason}" if e.reason else ""))]
        for e in events
    ]  # fmt: skip
    headers = ["Date", "Environment", "Event", "Version", "Commit", "By", "Workflow", "Trigger"]
    return table(headers, rows, empty=f"no promotion of {name} recorded in the GitOps repository")


def _links(name: str, settings: Settings) -> str:
    def link(url: str, label: str) -> str:
        if not url.startswith(("http://", "https://")):
            return '<span class="muted">not available</span>'
        return f'<a href="{esc(url)}" rel="noopener noreferrer">{esc(label)}</a>'

    drift = quote(f'driftloop_dataset_drift{{model="{name}"}}')
    pairs = [
        ("MLflow model", link(f"{settings.mlflow_uri}/#/models/{segment(name)}", settings.mlflow_uri)),
        ("Alertmanager", link(f"{settings.alertmanager_url}/#/alerts", settings.alertmanager_url)),
        ("Prometheus (drift)", link(f"{settings.prometheus_url}/graph?g0.expr={drift}", settings.prometheus_url)),
        ("Runs of this model", f'<a href="/workflows?label={esc(quote("driftloop.io/model=" + name))}">workflows</a>'),
    ]
    return field_list(pairs)


def model_page(name: str, namespace: str, csrf: str, sources: ModelSources | None) -> str:
    settings = get_settings()
    versions, champion = _versions(name, namespace, settings, sources)
    champion_text = f"version {champion}" if champion else "none"
    body = (
        f"<h1>Model {esc(name)}</h1><p><strong>Champion:</strong> {esc(champion_text)}</p>"
        f"<h2>Links</h2>{_links(name, settings)}<h2>Versions</h2>{versions}"
        f"<h2>Champion history</h2>{_history(name, sources)}<h2>Drift reports</h2>{_reports_section(name)}"
    )
    return layout(f"Model {name}", body, csrf=csrf, model=name)
