"""The MLflow pyfunc that serves the tabular model: raw feature rows in, default probability out.

It carries its preprocessing (JSON artifact) and weights (state dict), so serving needs no training code state.

Its signature comes from **type hints** built from the Feast schema (:func:`served_model`): ``predict`` takes
``list[FeatureRow]``, a pydantic model with one field per feature (``extra="forbid"``), and returns
``list[Prediction]``. MLflow then validates each request against that model (strictly: a missing, renamed, extra or
mistyped column is a 400) instead of building a DataFrame and casting it to a column signature, which cost ~7 ms of
CPU per one-row request, most of the server's work (docs/benchmarks.md "Model serving"). Requests are
``{"inputs": [{column: value, ...}, ...]}``; models logged before this (a column signature) accept that body too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel

__all__ = [
    "OUTPUT_COLUMN",
    "PREPROCESSING",
    "WEIGHTS",
    "CreditRiskModel",
    "accepts_records",
    "feature_records",
    "probabilities",
    "served_model",
    "signature_for",
]

OUTPUT_COLUMN = "default_probability"
WEIGHTS = "weights"
PREPROCESSING = "preprocessing"
_MLFLOW_TYPES = {"int64": "long", "float64": "double", "string": "string"}
_PYTHON_TYPES: dict[str, type] = {"int64": int, "float64": float, "string": str}


def signature_for(schema: Any) -> Any:
    """The column signature (input columns, dtypes and optionality; one double output) that models logged before
    :func:`served_model` carry; kept to build such models (tests and the serving benchmark compare the two)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [ColSpec(_MLFLOW_TYPES[spec.dtype], spec.name, required=not spec.nullable) for spec in schema.features]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", OUTPUT_COLUMN)]))


def served_model(schema: Any) -> CreditRiskModel:
    """The model ``train`` logs: a :class:`CreditRiskModel` whose ``predict`` is typed by the feature schema, so
    MLflow infers the signature from it (one object of the features; required unless nullable) and validates each
    request row against it. The class is made here, per schema, so cloudpickle saves it (and its pydantic models)
    by value; the base class is imported from this module when the model loads."""
    import pydantic

    fields: dict[str, Any] = {
        spec.name: (_PYTHON_TYPES[spec.dtype] | None, None) if spec.nullable else (_PYTHON_TYPES[spec.dtype], ...)
        for spec in schema.features
    }
    row = pydantic.create_model("FeatureRow", __config__=pydantic.ConfigDict(extra="forbid"), **fields)
    outputs: dict[str, Any] = {OUTPUT_COLUMN: (float, ...)}
    prediction = pydantic.create_model("Prediction", **outputs)

    def predict(self: CreditRiskModel, context: Any, model_input: Any, params: Any = None) -> Any:
        return self.predict_records(model_input)

    # the hints must be objects (not the strings this module's ``from __future__ import annotations`` leaves, which
    # name locals MLflow cannot resolve) and in place when the class is made: PythonModel.__init_subclass__ wraps
    # ``predict`` with the validation they describe then, or never
    predict.__annotations__ = {"model_input": list[row], "return": list[prediction]}  # type: ignore[valid-type]
    typed = type(
        "TypedCreditRiskModel",
        (CreditRiskModel,),
        {
            "predict": predict,
            "__doc__": CreditRiskModel.__doc__,
            "__qualname__": "served_model.<locals>.TypedCreditRiskModel",
        },
    )
    return typed()


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

    def predict(self, context, model_input, params=None):  # no type hints here: MLflow would treat them as a schema
        """A frame (or what ``pd.DataFrame`` takes) in, a one-column frame out: models logged with a column
        signature."""
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return pd.DataFrame({OUTPUT_COLUMN: self._scores(*self.prep.transform(frame))})

    def predict_records(self, rows: Sequence[Any]) -> list[dict[str, float]]:
        """Rows (pydantic rows as MLflow validated them, or mappings) in, one ``{OUTPUT_COLUMN: p}`` per row out."""
        records = [row if isinstance(row, Mapping) else dict(row) for row in rows]
        return [{OUTPUT_COLUMN: score} for score in self._scores(*self.prep.transform_records(records)).tolist()]

    def _scores(self, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            logits = self.net(torch.from_numpy(numeric).to(self.device), torch.from_numpy(codes).to(self.device))
            return torch.sigmoid(logits).cpu().numpy().astype(np.float64)


# --- callers that score frames in process (evaluation) ------------------------------------------------------------


def accepts_records(model: Any) -> bool:
    """Whether a loaded pyfunc's signature is one object of the features (typed ``predict``): it then takes the
    rows as records with Python values (:func:`feature_records`), not a frame."""
    from mlflow.types.schema import Object

    metadata = getattr(model, "metadata", None)  # None: not a loaded pyfunc (a test's stand-in scores frames)
    schema = metadata.get_input_schema() if metadata is not None else None
    return schema is not None and len(schema.inputs) == 1 and isinstance(schema.inputs[0].type, Object)


def feature_records(frame: Any) -> list[dict[str, Any]]:
    """A frame's rows as the records a typed model validates strictly: Python ints, floats and strings, ``None``
    for every kind of null (NaN, ``pd.NA``, ``None``), as a JSON client would send them."""
    import pandas as pd

    columns = {
        name: [None if value is None or value is pd.NA or value != value else value for value in column.tolist()]
        for name, column in frame.items()
    }
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def probabilities(output: Any) -> np.ndarray:
    """The default probabilities of either model's output: the one-column frame, or the records."""
    if isinstance(output, list):
        return np.array([row[OUTPUT_COLUMN] for row in output], dtype=np.float64)
    return np.asarray(output).reshape(len(output), -1)[:, 0].astype(np.float64)
