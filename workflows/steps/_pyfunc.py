"""The MLflow pyfunc that serves the tabular model: raw feature rows in, default probability out.

It carries its preprocessing (JSON artifact) and weights (state dict), so serving needs no training code state;
the signature is derived from the Feast schema, so MLflow rejects payloads that do not match it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow.pyfunc import PythonModel

__all__ = ["OUTPUT_COLUMN", "PREPROCESSING", "WEIGHTS", "CreditRiskModel", "signature_for"]

OUTPUT_COLUMN = "default_probability"
WEIGHTS = "weights"
PREPROCESSING = "preprocessing"
_MLFLOW_TYPES = {"int64": "long", "float64": "double", "string": "string"}


def signature_for(schema: Any) -> Any:
    """Input columns, dtypes and optionality from the feature schema; one double output."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [ColSpec(_MLFLOW_TYPES[spec.dtype], spec.name, required=not spec.nullable) for spec in schema.features]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", OUTPUT_COLUMN)]))


class CreditRiskModel(PythonModel):
    """Loads weights + preprocessing from the model's artifacts; predicts on CUDA when visible."""

    def load_context(self, context: Any) -> None:
        import torch

        from workflows.steps._tabular import Preprocessing, TabularNet, pick_device

        config = json.loads(Path(context.artifacts[PREPROCESSING]).read_text())
        self.prep = Preprocessing.from_json(config["preprocessing"])
        self.device = pick_device()
        self.net = TabularNet(len(self.prep.numeric), config["cardinalities"], tuple(config["hidden"]))
        state = torch.load(context.artifacts[WEIGHTS], map_location=self.device, weights_only=True)
        self.net.load_state_dict(state)
        self.net.to(self.device)

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would treat them as a schema
        import pandas as pd

        from workflows.steps._tabular import predict_proba

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return pd.DataFrame({OUTPUT_COLUMN: predict_proba(self.net, self.prep, frame, self.device)})
