"""The MLflow pyfunc that serves the tabular model: raw feature rows in, default probability out.

It carries its preprocessing (JSON artifact) and weights (state dict), so serving needs no training code state;
the signature is derived from the Feast schema, so MLflow rejects payloads that do not match it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
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
    """Loads weights + preprocessing from the model's artifacts; predicts on CUDA when visible.

    Tuned for what a scoring server sends, one or a few rows per request: one torch thread on CPU (splitting a
    64-wide MLP over threads costs more in hand-off than it saves, and a server scales by workers, not threads),
    the network switched to eval mode once, and the preprocessing done on numpy arrays.
    """

    def load_context(self, context: Any) -> None:
        import torch

        from workflows.steps._tabular import Preprocessing, TabularNet, pick_device

        config = json.loads(Path(context.artifacts[PREPROCESSING]).read_text())
        self.prep = Preprocessing.from_json(config["preprocessing"])
        self.device = pick_device()
        if self.device.type == "cpu":
            torch.set_num_threads(1)
        self.net = TabularNet(len(self.prep.numeric), config["cardinalities"], tuple(config["hidden"]))
        state = torch.load(context.artifacts[WEIGHTS], map_location=self.device, weights_only=True)
        self.net.load_state_dict(state)
        self.net.to(self.device).eval()

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would treat them as a schema
        import pandas as pd
        import torch

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        numeric, codes = self.prep.transform(frame)
        with torch.inference_mode():
            logits = self.net(torch.from_numpy(numeric).to(self.device), torch.from_numpy(codes).to(self.device))
            scores = torch.sigmoid(logits).cpu().numpy().astype(np.float64)
        return pd.DataFrame({OUTPUT_COLUMN: scores})
