"""Every ``DRIFTLOOP_*`` setting's default and documentation: the one table behind ``driftloop config``,
docs/configuration.md (``driftloop config --markdown``) and ``get_settings``.

Kept apart from ``driftloop.config`` (which parses and checks the values) because it is data and grows with
every feature; ``driftloop.config`` re-exports it.
"""

from __future__ import annotations

__all__ = ["SETTING_DOCS"]

# name -> (default, documentation). Defaults that are paths are relative to the repository root.
SETTING_DOCS: dict[str, tuple[str, str]] = {
    "home": (".driftloop", "All local state: engine database, logs, artifacts, MLflow store, lake, spool."),
    "shared_dir": ("../shared", "Read-only reference schemas (Argo CRDs, Rollouts, Argo CD, prometheus-operator)."),
    "argo_server": (
        "http://127.0.0.1:2746",
        "Argo Server URL; the embedded engine serves the same API here. The Argo CLI's host:port form is accepted: "
        "http:// on a loopback host (the embedded engine), https:// otherwise (as ARGO_SECURE's default).",
    ),
    "argo_token": (
        "",
        "Bearer token for the Argo Server. Empty: DRIFTLOOP_ARGO_TOKEN_FILE, else (local server) the engine's "
        "<home>/engine/token. Prefer the file: the environment of a process is private, a command line is not.",
    ),
    "argo_token_file": ("", "A file holding the Argo Server token (used when DRIFTLOOP_ARGO_TOKEN is empty)."),
    "engine_allowed_hosts": (
        "",
        "Host names (comma list) the engine answers to besides loopback ones; others get 403 (DNS rebinding).",
    ),
    "namespace": ("driftloop", "Kubernetes namespace of workflows, templates and serving objects."),
    "service_account": ("driftloop-workflow", "Service account the workflow pods run as."),
    "artifact_repository": ("", "artifactRepositoryRef configMap:key for a cluster (empty: the default repository)."),
    "mlflow_uri": ("http://127.0.0.1:5000", "MLflow tracking and registry server."),
    "image": ("ghcr.io/driftloop/driftloop:latest", "The project image every pipeline step runs in."),
    "model_name": ("credit-risk", "The default model; every other name derives from it."),
    "gpu_fallback": ("cpu", "When a GPU is requested but the machine has none: 'cpu' (warn) or 'error'."),
    "semaphore_size": ("1", "Default size of a synchronization semaphore whose ConfigMap is not configured."),
    "lake_uri": ("", "Payload lake: a directory or fsspec URI, e.g. s3://bucket/lake (empty: <home>/lake)."),
    "lake_retention": (
        "30d",
        "Age after which the lake's hour partitions are deleted (`driftloop lake prune`, and the monitor every compaction "
        "interval): a number with s, m, h or d (e.g. 30d, 36h); 0 keeps everything.",
    ),
    "lake_compact_interval": (
        "600",
        "Seconds between two upkeep passes of the lake by the monitor loop: compaction of finished hours (their 5 s "
        "parts merged into a few files) and retention; 0: the monitor leaves it to `driftloop lake compact`.",
    ),
    "serving_url": (
        "http://127.0.0.1:8180",
        "Sidecar in front of the model servers (the stack's only routes); `traffic` targets it.",
    ),
    "model_server_url": ("http://127.0.0.1:5001", "MLflow scoring server for models:/<model>@champion."),
    "monitor_url": ("http://127.0.0.1:9308", "Drift monitor: where its Prometheus /metrics is served."),
    "monitor_interval": (
        "5",
        "Seconds between two drift evaluations of the stack's monitor (production: 30-60; see docs/alerting.md).",
    ),
    "monitor_window_rows": ("2000", "The monitor's window: at most this many of the latest captured rows."),
    "monitor_window_minutes": ("60", "…and only rows captured in the last this many minutes."),
    "monitor_min_rows": (
        "500",
        "Fewer rows than this in the window (or than the window's rows, if smaller): no drift is scored (small samples "
        "give noisy verdicts, e.g. the first seconds of traffic); driftloop_window_rows still shows the count.",
    ),
    "monitor_drift_share": (
        "0.3",
        "Dataset drift when at least this share of features drifted (Evidently's default 0.5 misses a 4-of-11 shift).",
    ),
    "prometheus_url": (
        "http://127.0.0.1:9090",
        "Prometheus of the stack (scrapes the sidecar, model servers, monitor, receiver).",
    ),
    "alertmanager_url": ("http://127.0.0.1:9093", "Alertmanager of the stack; it sends alerts to the receiver."),
    "trigger_url": ("http://127.0.0.1:9095", "The alert receiver (`driftloop trigger serve`) that submits retrains."),
    "trigger_token": ("", "Bearer token the receiver requires (empty: DRIFTLOOP_TRIGGER_TOKEN_FILE, else generated)."),
    "trigger_token_file": (
        "",
        "File holding the receiver's token (empty: <home>/trigger/token, created 0600 on first start).",
    ),
    "trigger_cooldown": (
        "3600",
        "Seconds after an alert-started retrain during which further incidents of that model and trigger wait.",
    ),
    "trigger_parameters": (
        "",
        "Extra parameters of drift retrains, comma-separated name=value (e.g. dataset=s3://…/recent,epochs=4).",
    ),
    "feedback_max_rows": ("10000", "Outcome rows one `POST /feedback` (or one `driftloop feedback` batch) may carry."),
    "feedback_late_after": (
        "604800",
        "Seconds: an outcome observed more than this before it arrived is counted late (still stored and joined).",
    ),
    "monitor_quality_window_rows": (
        "5000",
        "Live quality: the monitor joins outcomes to at most this many of the latest captured rows (same minutes).",
    ),
    "monitor_quality_min_rows": (
        "200",
        "Fewer labelled rows than this for a model version (or segment): no live quality is exported for it.",
    ),
    "quality_auc_tolerance": (
        "0.05",
        "DriftloopLiveQualityDropped fires when live ROC AUC is this far below the champion's evaluation AUC.",
    ),
    "quality_min_auc": ("0.6", "…or when live ROC AUC is below this floor (a champion without a recorded AUC)."),
    "fairness_max_auc_gap": (
        "0.2",
        "Fairness gate of `evaluate`: the largest ROC AUC gap between the values of a segment column (term, "
        "home_ownership) a candidate may show (1 disables).",
    ),
    "fairness_max_parity_gap": (
        "0.4",
        "Fairness gate: the largest gap in positive-prediction rate at the decision threshold between a segment "
        "column's values (demographic-parity difference; 1 disables). Lenient by default: 60-month loans really "
        "default more, so parity is a policy choice (covariate-shift data shows a gap near 0.28).",
    ),
    "decision_threshold": ("0.5", "Score at or above which a prediction counts as positive (accuracy, parity)."),
    "explain_top_k": ("3", "Explainability gate: how many of the top permutation-importance drivers are checked."),
    "not_for_decisions": (
        "",
        "Features (comma list) that must not drive decisions, besides those the feature schema marks; the "
        "explainability gate blocks a model where one is among the top drivers.",
    ),
    "gitops_repo": ("", "GitOps repository (path or git URL) the model pins go to (empty: <home>/gitops.git)."),
    "gitops_branch": ("main", "Branch of the GitOps repository that Argo CD (or `driftloop deployer`) follows."),
    "approval_environments": (
        "production",
        "Environments (comma list) a pipeline promotes to only after a person's `driftloop approve RUN`: the training "
        "workflow suspends before promote; a rejection or the timeout leaves the champion unchanged (empty: none).",
    ),
    "approval_timeout": (
        "24h",
        "How long a training run waits for `driftloop approve` (Argo `suspend.duration`) before it counts as rejected.",
    ),
    "deployer_url": ("http://127.0.0.1:9097", "`driftloop deployer`: where its /status, /metrics and /healthz answer."),
    "deployer_environment": ("production", "The environment (model pin) the local deployer serves."),
    "deployer_canary_steps": (
        "10,50",
        "Canary shares (%) of the local deployer before 100 %, each judged like the AnalysisTemplate.",
    ),
    "deployer_canary_window": ("10", "Seconds each canary step lasts at least (and until it has enough requests)."),
    "deployer_analysis_timeout": (
        "1800",
        "Seconds a canary step may stay inconclusive (too little traffic) before the deployer aborts and rolls back "
        "(Argo Rollouts would pause for a person instead).",
    ),
    "deployer_poll": ("2", "Seconds between two looks of the deployer at the GitOps branch head."),
    # the canary analysis (monitors/deployer/analysis.py): the AnalysisTemplate and the local deployer share these
    "deployer_max_error_rate": ("0.01", "Canary analysis: highest share of 5xx answers of the canary that passes."),
    "deployer_max_p99": ("0.5", "Canary analysis: highest p99 latency (seconds) of the canary's model server."),
    "deployer_min_requests": (
        "20",
        "Canary analysis: fewer canary requests in a window is no verdict (inconclusive), never a pass.",
    ),
    "deployer_min_p99_requests": (
        "100",
        "Canary analysis: fewer canary requests is no p99 verdict yet (inconclusive): a 99th percentile of 20 "
        "requests is their slowest one, and one stall of a shared machine would decide the canary.",
    ),
    "deployer_drift_gate": (
        "dry-run",
        "Canary analysis: `gate` lets drift-share fail a canary; `dry-run` measures and reports it without gating "
        "(Argo Rollouts' dryRun): data drift comes with the traffic, and it must not block the retrain it triggers.",
    ),
    "deployer_max_schema_mismatch": (
        "0",
        "Canary analysis: most payload-schema mismatches (monitor) during a canary window that still pass.",
    ),
}
