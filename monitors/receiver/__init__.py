"""Alerting as code and the Alertmanager receiver that turns a drift alert into exactly one retraining Workflow.

- ``_rules.py``: the one source of truth (rules, timings, routing), rendered to the local stack's configs
  (``_local.py``) and to ``manifests/monitoring/`` (``_manifests.py``).
- ``_server.py``: ``driftloop trigger serve`` — the webhook, its SQLite decision store (``_store.py``) and the
  submission worker (``_submit.py``).
"""

from __future__ import annotations

__all__: list[str] = []
