"""The tabular model: categorical embeddings + MLP over standardised numerics, and the preprocessing it needs.

Preprocessing is fitted on the training rows only and saved as JSON next to the weights, so the MLflow pyfunc
scores raw feature rows exactly as training saw them. Everything runs on CPU; CUDA is used when visible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from features.contract import FeatureSchema

__all__ = [
    "Preprocessing",
    "TabularNet",
    "pick_device",
    "predict_proba",
    "predict_tensors",
    "seed_everything",
    "to_tensors",
]

UNKNOWN = 0  # embedding index for nulls and categories unseen in training
_PLAIN_NUMBERS = (int, float, bool)  # exact types: numpy scalars and decimals take the frame path


@dataclass
class Preprocessing:
    """Medians (null fill), means and scales for numerics; vocabularies for categoricals."""

    numeric: list[str]
    categorical: list[str]
    medians: dict[str, float]
    means: dict[str, float]
    scales: dict[str, float]
    vocabularies: dict[str, list[str]]

    @classmethod
    def fit(cls, frame: pd.DataFrame, schema: FeatureSchema) -> Preprocessing:
        numeric = [spec.name for spec in schema.numeric]
        categorical = [spec.name for spec in schema.categorical]
        values = frame[numeric].astype("float64")
        medians = values.median().fillna(0.0)
        filled = values.fillna(medians)
        scales = filled.std(ddof=0).replace(0.0, 1.0).fillna(1.0)
        vocabularies = {
            name: sorted(set(frame[name].dropna().astype(str)) | set(schema.spec(name).domain)) for name in categorical
        }
        return cls(
            numeric=numeric,
            categorical=categorical,
            medians={k: float(v) for k, v in medians.items()},
            means={k: float(v) for k, v in filled.mean().items()},
            scales={k: float(v) for k, v in scales.items()},
            vocabularies=vocabularies,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(**data)

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Raw feature rows -> (float32 numerics, int64 category indices).

        Plain numpy on whole arrays (one-row scoring requests made per-column pandas work the bulk of serving
        latency); element for element the same float64 arithmetic as fill-median / subtract-mean / divide-scale.
        """
        values = np.empty((len(frame), len(self.numeric)), dtype=np.float64)
        for i, name in enumerate(self.numeric):
            values[:, i] = _as_float(frame[name])
        return self._encoded(values, [frame[name].to_numpy(dtype=object) for name in self.categorical])

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transform` for rows as mappings (what a typed model's ``predict`` gets), without building a frame:
        the same float64 arithmetic on the same values, so the same tensors. A missing key is a null; a numeric
        value that is not a number (only an untyped caller can pass one) takes the frame path, whose coercion it
        needs."""
        values = np.empty((len(records), len(self.numeric)), dtype=np.float64)
        for i, name in enumerate(self.numeric):
            column = [record.get(name) for record in records]
            if not all(value is None or type(value) in _PLAIN_NUMBERS for value in column):
                return self.transform(pd.DataFrame(list(records)))
            values[:, i] = [math.nan if value is None else value for value in column]
        return self._encoded(values, [[record.get(name) for record in records] for name in self.categorical])

    def _encoded(self, values: np.ndarray, categorical: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Raw numerics (NaN for nulls) and each categorical column's values -> the model's two inputs."""
        medians, means, scales = self._numeric_vectors
        values = np.where(np.isnan(values), medians, values)
        numeric = ((values - means) / scales).astype(np.float32)
        codes = np.zeros((len(values), len(self.categorical)), dtype=np.int64)
        for i, (column, lookup) in enumerate(zip(categorical, self._category_codes, strict=True)):
            # unseen values, non-strings and nulls get UNKNOWN (0); known ones start at 1
            codes[:, i] = [lookup.get(value, UNKNOWN) if isinstance(value, str) else UNKNOWN for value in column]
        return numeric, codes

    @cached_property
    def _numeric_vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Medians, means and scales in column order (computed once; the fitted statistics never change)."""
        medians, means, scales = (
            np.array([stats[name] for name in self.numeric], dtype=np.float64)
            for stats in (self.medians, self.means, self.scales)
        )
        return medians, means, scales

    @cached_property
    def _category_codes(self) -> list[dict[str, int]]:
        """Per categorical column: value -> embedding index (known values start at 1)."""
        return [
            {value: code + 1 + UNKNOWN for code, value in enumerate(self.vocabularies[name])}
            for name in self.categorical
        ]


def _as_float(column: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls; anything else goes through ``pd.to_numeric`` (coerce)."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "iuf":
        return column.to_numpy(dtype=np.float64)
    return pd.to_numeric(column, errors="coerce").astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)


class TabularNet(nn.Module):
    """One embedding per categorical column, concatenated with numerics, through a small MLP to one logit."""

    def __init__(self, numeric_width: int, cardinalities: list[int], hidden: tuple[int, ...] = (64, 32)) -> None:
        super().__init__()
        dims = [min(8, math.ceil((size + 1) / 2)) for size in cardinalities]
        self.embeddings = nn.ModuleList(
            nn.Embedding(size + 1, dim) for size, dim in zip(cardinalities, dims, strict=True)
        )
        width = numeric_width + sum(dims)
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, numeric: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        embedded = [embedding(codes[:, i]) for i, embedding in enumerate(self.embeddings)]
        return self.mlp(torch.cat([numeric, *embedded], dim=1)).squeeze(1)


def pick_device() -> torch.device:
    """CUDA when visible, else CPU (every code path runs on both)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int, device: torch.device) -> None:
    """Same seed, same weights, same metrics on CPU (one thread: reductions keep their order)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if device.type == "cuda":  # CPU kernels used here are deterministic already; this call imports dynamo (6 s)
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.set_num_threads(1)


def to_tensors(prep: Preprocessing, frame: pd.DataFrame, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    numeric, codes = prep.transform(frame)
    return torch.from_numpy(numeric).to(device), torch.from_numpy(codes).to(device)


@torch.no_grad()
def predict_tensors(net: TabularNet, numeric: torch.Tensor, codes: torch.Tensor) -> np.ndarray:
    net.eval()
    return torch.sigmoid(net(numeric, codes)).cpu().numpy().astype(np.float64)


def predict_proba(net: TabularNet, prep: Preprocessing, frame: pd.DataFrame, device: torch.device) -> np.ndarray:
    return predict_tensors(net, *to_tensors(prep, frame, device))
