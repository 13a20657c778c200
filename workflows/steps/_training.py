"""The training loop, free of MLflow: a training set in, a fitted model and its per-epoch history out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from features.columns import LABEL
from workflows.steps._dataset import TrainingSet, split
from workflows.steps._metrics import log_loss, roc_auc
from workflows.steps._tabular import Preprocessing, TabularNet, predict_tensors, seed_everything, to_tensors

__all__ = ["BATCH_SIZE", "HIDDEN", "LEARNING_RATE", "Fitted", "fit"]

HIDDEN = (64, 32)
BATCH_SIZE = 256
LEARNING_RATE = 3e-3


@dataclass
class Fitted:
    net: TabularNet
    prep: Preprocessing
    cardinalities: list[int]
    history: list[dict[str, float]] = field(default_factory=list)

    def config(self) -> dict[str, Any]:
        return {"preprocessing": self.prep.to_json(), "cardinalities": self.cardinalities, "hidden": list(HIDDEN)}


def fit(data: TrainingSet, epochs: int, seed: int, device: torch.device) -> Fitted:
    """Train on the oldest rows, report loss/AUC on the validation slice each epoch; the holdout stays unseen."""
    threads = torch.get_num_threads()
    try:
        return _fit(data, epochs, seed, device)
    finally:
        torch.set_num_threads(threads)  # seed_everything pins one thread for determinism; give the rest back


def _fit(data: TrainingSet, epochs: int, seed: int, device: torch.device) -> Fitted:
    seed_everything(seed, device)
    train_rows, validation_rows, _ = split(data.frame)
    prep = Preprocessing.fit(train_rows, data.schema)
    cardinalities = [len(prep.vocabularies[name]) for name in prep.categorical]
    net = TabularNet(len(prep.numeric), cardinalities, HIDDEN).to(device)
    numeric, codes = to_tensors(prep, train_rows, device)
    validation = to_tensors(prep, validation_rows, device)
    labels = torch.from_numpy(train_rows[LABEL].to_numpy(np.float32)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    fitted = Fitted(net, prep, cardinalities)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(labels), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            optimizer.zero_grad()
            loss = loss_fn(net(numeric[batch], codes[batch]), labels[batch])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        scores = predict_tensors(net, *validation)
        truth = validation_rows[LABEL].to_numpy()
        fitted.history.append(
            {
                "epoch": float(epoch),
                "train_loss": total / max(len(order), 1),
                "val_loss": log_loss(truth, scores),
                "val_roc_auc": roc_auc(truth, scores),
            }
        )
    return fitted
