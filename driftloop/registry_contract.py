"""The model-registry contract: the names training, promotion, serving and the drift monitor agree on in MLflow.

One module, imported by every side (``workflows/steps``, ``workflows/gitops``, ``monitors/drift``,
``monitors/sidecar``): a renamed alias or artifact folder changes here, or nowhere. Standard library only, so
the lightest process (the sidecar's placeholder) can import it.

- Aliases: ``register`` sets ``challenger``; promotion moves ``champion`` and keeps the replaced version as
  ``previous-champion``; serving and the monitor follow ``champion``.
- The reference artifacts ``register`` logs on the training run, under ``reference/``: ``sample.parquet``
  (training features: the data gate's and the HTML report's reference), ``profile/`` (the monitor's
  precomputed drift profile), ``stats.json`` and ``schema.json``.
- The run tag ``model_uri`` holds the URI ``train`` logged the model at (fallback ``runs:/<run>/model``).
- A training run that needs a person's yes suspends in its ``approval`` task (``APPROVAL_TASK``) before promote;
  ``driftloop approve`` and the console's Approve/Reject resume that node after recording the decision as the
  registered model's tag ``approval.<workflow>`` (``APPROVAL_TAG_PREFIX``, workflows/steps/approval.py).
- The run metric ``holdout_roc_auc`` (``evaluate``) is what the monitor holds the champion's live ROC AUC to, and
  ``TRIGGERS`` the values a run's ``trigger`` may take.
"""

from __future__ import annotations

__all__ = [
    "APPROVAL_TAG_PREFIX",
    "APPROVAL_TASK",
    "CHALLENGER",
    "CHAMPION",
    "EVALUATION_AUC_METRIC",
    "MODEL_PATH",
    "MODEL_URI_TAG",
    "PREVIOUS_CHAMPION",
    "REFERENCE_DIR",
    "REFERENCE_PROFILE",
    "REFERENCE_SAMPLE",
    "REFERENCE_SAMPLE_ARTIFACT",
    "REFERENCE_TAG",
    "TRIGGERS",
    "alias_uri",
    "previous_alias",
    "run_model_uri",
]

CHAMPION = "champion"
APPROVAL_TASK = "approval"
APPROVAL_TAG_PREFIX = "approval."
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"

MODEL_PATH = "model"  # the artifact path `train` logs the model under
MODEL_URI_TAG = "model_uri"  # run tag: where `train` logged the model

REFERENCE_DIR = "reference"  # run artifact folder `register` logs
REFERENCE_SAMPLE = "sample.parquet"
REFERENCE_PROFILE = "profile"
REFERENCE_SAMPLE_ARTIFACT = f"{REFERENCE_DIR}/{REFERENCE_SAMPLE}"
REFERENCE_TAG = "reference"  # model-version tag: what the reference artifacts hold (JSON)
EVALUATION_AUC_METRIC = "holdout_roc_auc"  # run metric `evaluate` logs; the monitor holds live ROC AUC to it

# What may start a training run (the pipeline's `trigger` parameter enum, the register step's `trigger` tag):
# a person, the schedule, the drift alert, or the live-quality alert (outcomes joined to predictions).
TRIGGERS = ("manual", "schedule", "drift", "quality")


def previous_alias(alias: str) -> str:
    """The alias that keeps the version ``alias`` pointed at before a promotion (``previous-champion``)."""
    return f"previous-{alias}"


def alias_uri(model: str, alias: str = CHAMPION) -> str:
    """``models:/<model>@<alias>``: what serving and the evaluation gate load."""
    return f"models:/{model}@{alias}"


def version_uri(model: str, version: str) -> str:
    """``models:/<model>/<version>``: one registered version, which an alias moving later cannot change."""
    return f"models:/{model}/{version}"


def run_model_uri(run_id: str, tags: dict[str, str] | None = None) -> str:
    """The model of a training run: its ``model_uri`` tag, else ``runs:/<run>/model``."""
    return (tags or {}).get(MODEL_URI_TAG) or f"runs:/{run_id}/{MODEL_PATH}"
