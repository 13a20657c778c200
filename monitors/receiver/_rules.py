"""The one source of truth for alerting: the rules, their timings and where Alertmanager routes them.

Everything Prometheus and Alertmanager are told comes from here, rendered twice: the local stack's config files
under ``$DRIFTLOOP_HOME`` (``_local.py``) and the committed cluster manifests in ``manifests/monitoring/``
(``_manifests.py``). Two timing profiles exist because the trade-off differs: locally a demo must react in
seconds (1 s scrape and evaluation, a few seconds of ``for``); in production a ``for`` of minutes keeps a
window that flickers around the threshold from paging or retraining on noise (docs/alerting.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftloop.config import Settings

__all__ = [
    "DRIFTED_FEATURES_ANNOTATION",
    "LOCAL",
    "PRODUCTION",
    "QUALITY_TRIGGER",
    "RUNBOOK_BASE",
    "AlertRule",
    "Profile",
    "alert_rules",
    "alertmanager_config",
    "rule_groups",
]

RUNBOOK_BASE = "https://github.com/driftloop/driftloop/blob/main/docs/alerting.md"
RECEIVER_NAME = "driftloop-trigger"
ONCALL_NAME = "oncall"
GROUP_BY = ["alertname", "model"]
DRIFTED_FEATURES_ANNOTATION = "drifted_features"
QUALITY_TRIGGER = "quality"
RETRAIN_ALERTS = 'alertname=~"DriftloopFeatureDrift|DriftloopLiveQualityDropped"'
# Rendered by Prometheus at each evaluation of the firing alert: the features that drifted (comma-separated, sorted)
# for the alert's model and version. The alert carries them to the receiver, which passes them to the retrain, so the
# features are the ones seen when the alert fired, not whatever a later query returns.
_DRIFTED_FEATURES_TEMPLATE = (
    '{{ range $i, $s := query (printf "max by (feature) (driftloop_feature_drifted{model=%q,version=%q}) == 1"'
    ' $labels.model $labels.version) | sortByLabel "feature" }}{{ if $i }},{{ end }}{{ $s.Labels.feature }}{{ end }}'
)


@dataclass(frozen=True)
class Profile:
    """Timings: how fast an alert reacts versus how much flapping it tolerates."""

    name: str
    scrape_interval: str
    evaluation_interval: str
    drift_for: str  # the drift condition must hold this long: a flicker does not retrain
    quality_for: str  # live ROC AUC must stay low this long (outcomes trickle in: the window's AUC wobbles)
    schema_for: str
    stale_after_s: int  # the monitor's last success may be this old
    stale_for: str
    window: str  # look-back of the counters' increase()
    smooth: str  # min_over_time window: a missed scrape is not a recovery, a dip below the threshold is
    group_wait: str
    group_interval: str
    repeat_interval: str


LOCAL = Profile(
    name="local",
    scrape_interval="1s",
    evaluation_interval="1s",
    drift_for="1s",
    quality_for="2s",
    schema_for="0s",
    stale_after_s=60,
    stale_for="10s",
    window="1m",
    smooth="3s",
    group_wait="1s",
    group_interval="5s",
    repeat_interval="1h",
)
PRODUCTION = Profile(
    name="production",
    scrape_interval="30s",
    evaluation_interval="30s",
    drift_for="15m",
    quality_for="30m",
    schema_for="0s",
    stale_after_s=900,
    stale_for="5m",
    window="10m",
    smooth="2m",
    group_wait="30s",
    group_interval="5m",
    repeat_interval="4h",
)


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    for_: str
    severity: str  # warning | page
    retrain: bool
    summary: str
    description: str
    runbook: str  # anchor in docs/alerting.md
    extra_annotations: tuple[tuple[str, str], ...] = ()
    trigger: str = ""  # the retrain's `trigger` when not "drift" (a `trigger` label the receiver reads)

    def to_prometheus(self) -> dict[str, Any]:
        labels = {"severity": self.severity, "retrain": "true" if self.retrain else "false"}
        if self.trigger:
            labels["trigger"] = self.trigger
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": labels,
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{RUNBOOK_BASE}#{self.runbook}",
                **dict(self.extra_annotations),
            },
        }


def alert_rules(settings: Settings, profile: Profile) -> list[AlertRule]:
    """The rules, with thresholds from the settings and timings from the profile."""
    share = settings.monitor_drift_share
    window = profile.window
    return [
        AlertRule(
            name="DriftloopFeatureDrift",
            # min_over_time: a scrape that fails (a busy monitor) leaves a gap, not a reset of `for`, while a share
            # that dips below the threshold inside the window still keeps the alert quiet (flapping input)
            expr=f"max by (model, version) (min_over_time(driftloop_drift_share[{profile.smooth}])) >= {share:g}",
            for_=profile.drift_for,
            severity="warning",
            retrain=True,
            summary="{{ $labels.model }} version {{ $labels.version }}: {{ $value | humanizePercentage }} of features drifted",
            description=(
                "The share of drifted features of {{ $labels.model }} (champion version {{ $labels.version }}) "
                f"has been at or above {share:g} for {profile.drift_for}; the receiver submits a retraining workflow."
            ),
            runbook="driftloopfeaturedrift",
            extra_annotations=((DRIFTED_FEATURES_ANNOTATION, _DRIFTED_FEATURES_TEMPLATE),),
        ),
        _quality_rule(settings, profile),
        AlertRule(
            name="DriftloopPayloadSchemaMismatch",
            # new mismatches in the window: the counter grew, or a (model, column) series appeared
            expr=(
                f"sum by (model) (increase(driftloop_payload_schema_mismatch_total[{window}])) > 0"
                f" or sum by (model) (driftloop_payload_schema_mismatch_total"
                f" unless driftloop_payload_schema_mismatch_total offset {window}) > 0"
            ),
            for_=profile.schema_for,
            severity="page",
            retrain=False,
            summary="{{ $labels.model }}: payloads do not match the model's feature schema",
            description=(
                "Served requests carry a missing, unexpected or retyped column. Retraining on a renamed column is "
                "the wrong fix: find the client or feature change that renamed it (this alert never retrains)."
            ),
            runbook="driftloopPayloadSchemaMismatch".lower(),
        ),
        AlertRule(
            name="DriftloopMonitorStale",
            expr=(
                "time() - max by (job, instance)"
                f" (max_over_time(driftloop_monitor_last_success_timestamp_seconds[{window}]))"
                f" > {profile.stale_after_s}"
            ),
            for_=profile.stale_for,
            severity="warning",
            retrain=False,
            summary="the drift monitor at {{ $labels.instance }} has not completed an evaluation recently",
            description=(
                f"No successful drift evaluation for more than {profile.stale_after_s} s: drift would go unnoticed."
            ),
            runbook="driftloopmonitorstale",
        ),
        AlertRule(
            name="DriftloopSidecarDroppingPayloads",
            expr=f"sum by (job, instance, reason) (increase(driftloop_sidecar_dropped_total[{window}])) > 0",
            for_="0s",
            severity="warning",
            retrain=False,
            summary="the sidecar at {{ $labels.instance }} dropped payloads ({{ $labels.reason }})",
            description="Captured payloads were dropped: the lake, and so drift detection, sees a biased sample.",
            runbook="driftloopsidecardroppingpayloads",
        ),
        AlertRule(
            name="DriftloopRetrainFailing",
            expr=(
                f'sum by (model) (increase(driftloop_trigger_retrains_finished_total{{phase=~"Failed|Error"}}[{window}]))'
                f" > 0 or sum by (model) (increase(driftloop_trigger_submission_failures_total[{window}])) > 0"
            ),
            for_="0s",
            severity="page",
            retrain=False,
            summary="{{ $labels.model }}: a drift retrain failed or could not be submitted",
            description="Drift was detected but no new model will come of it until the retrain is fixed.",
            runbook="driftloopretrainfailing",
        ),
    ]


def _quality_rule(settings: Settings, profile: Profile) -> AlertRule:
    """Live ROC AUC (outcomes joined to served predictions) below the champion's evaluation AUC minus a tolerance, or
    below a floor, with enough labelled rows, for ``quality_for``: the concept drift input drift cannot see."""
    smooth, tolerance, floor = profile.smooth, settings.quality_auc_tolerance, settings.quality_min_auc
    live = f"max by (model, version) (max_over_time(driftloop_live_auc[{smooth}]))"
    return AlertRule(
        name="DriftloopLiveQualityDropped",
        # max_over_time: every sample in the window is low (a missed scrape or one good window keeps it quiet)
        expr=(
            f"({live} < on (model, version) (max by (model, version) (driftloop_evaluation_auc) - {tolerance:g})"
            f" or {live} < {floor:g})"
            " and on (model, version)"
            f" max by (model, version) (min_over_time(driftloop_live_labelled_rows[{smooth}]))"
            f" >= {settings.monitor_quality_min_rows}"
        ),
        for_=profile.quality_for,
        severity="warning",
        retrain=True,
        trigger=QUALITY_TRIGGER,
        summary='{{ $labels.model }} version {{ $labels.version }}: live ROC AUC {{ $value | printf "%.3f" }}',
        description=(
            "Served predictions of {{ $labels.model }} (champion version {{ $labels.version }}) joined to their "
            f"outcomes score a ROC AUC more than {tolerance:g} below its evaluation AUC (or below {floor:g}) for "
            f"{profile.quality_for}; the receiver submits a retraining workflow with trigger=quality."
        ),
        runbook="driftloopLiveQualityDropped".lower(),
    )


def rule_groups(settings: Settings, profile: Profile) -> list[dict[str, Any]]:
    """Prometheus rule groups (the body of a rules file and of a PrometheusRule's spec)."""
    return [
        {
            "name": "driftloop",
            "interval": profile.evaluation_interval,
            "rules": [rule.to_prometheus() for rule in alert_rules(settings, profile)],
        }
    ]


def alertmanager_config(
    profile: Profile, webhook_url: str, credentials_file: str, oncall: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Routing: every driftloop alert goes to the receiver (which records it and acts only on retrain="true");
    paging alerts also go to the on-call receiver (empty locally; production fills it in from a Secret)."""
    return {
        "route": {
            "receiver": RECEIVER_NAME,
            "group_by": GROUP_BY,
            "group_wait": profile.group_wait,
            "group_interval": profile.group_interval,
            "repeat_interval": profile.repeat_interval,
            "routes": [
                {"receiver": ONCALL_NAME, "matchers": ['severity="page"'], "continue": True},
                {"receiver": RECEIVER_NAME, "matchers": ['alertname=~"Driftloop.*"']},
            ],
        },
        "receivers": [
            {
                "name": RECEIVER_NAME,
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "max_alerts": 0,
                        "http_config": {"authorization": {"type": "Bearer", "credentials_file": credentials_file}},
                    }
                ],
            },
            {"name": ONCALL_NAME, **(oncall or {})},
        ],
        "inhibit_rules": [
            # while payloads do not match the schema, their drift (and the quality they score) is an artefact of the
            # rename: do not retrain on it
            {
                "source_matchers": ['alertname="DriftloopPayloadSchemaMismatch"'],
                "target_matchers": [RETRAIN_ALERTS],
                "equal": ["model"],
            }
        ],
    }
