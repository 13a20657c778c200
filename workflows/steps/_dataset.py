"""The training-set parquet: features + label + the contract it was built under, and its snapshot id.

The feature schema travels inside the parquet metadata, so ``train`` derives the model signature from exactly the
Feast schema the data was built with, and the snapshot id can be re-checked anywhere from the file alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from driftloop.errors import DataContractError
from features.columns import ENTITY_KEY, LABEL, TIMESTAMP
from features.contract import FeatureSchema

__all__ = ["HOLDOUT_SHARE", "TrainingSet", "read_training_set", "snapshot_id", "split", "write_training_set"]

_METADATA_KEY = b"driftloop.schema"
HOLDOUT_SHARE = 0.2
VALIDATION_SHARE = 0.1


@dataclass(frozen=True)
class TrainingSet:
    frame: pd.DataFrame
    schema: FeatureSchema

    @property
    def features(self) -> pd.DataFrame:
        return self.frame[self.schema.names]

    @property
    def labels(self) -> pd.Series:
        return self.frame[LABEL]


def snapshot_id(frame: pd.DataFrame, schema: FeatureSchema) -> str:
    """Content hash of every row and column (order included) plus the feature view definitions."""
    digest = hashlib.sha256()
    digest.update(json.dumps(list(map(str, frame.columns))).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update(schema.definition_hash().encode())
    return digest.hexdigest()[:24]


def write_training_set(frame: pd.DataFrame, schema: FeatureSchema, path: Path) -> str:
    """Write parquet with the schema in its metadata; returns the snapshot id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), _METADATA_KEY: json.dumps(schema.to_json()).encode()}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table.replace_schema_metadata(metadata), partial)
    partial.replace(path)
    return snapshot_id(frame, schema)


def read_training_set(path: Path) -> TrainingSet:
    """Read a training set written by ``build-training-set``; a missing file or schema is a contract error."""
    import pyarrow.parquet as pq

    if not path.exists():
        raise DataContractError(
            f"training set {path} does not exist",
            hint="run build-training-set first (its output artifact 'training-set'), or set DRIFTLOOP_STEP_INPUT_DIR",
        )
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_METADATA_KEY)
    if raw is None:
        raise DataContractError(
            f"{path} carries no feature schema", hint="build it with `python -m workflows.steps.build_training_set`"
        )
    schema = FeatureSchema.from_json(json.loads(raw))
    return TrainingSet(table.to_pandas(), schema)


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Time-ordered train / validation / holdout: the newest 20% is the holdout, never seen by training."""
    ordered = frame.sort_values([TIMESTAMP, ENTITY_KEY], kind="stable").reset_index(drop=True)
    holdout_start = int(len(ordered) * (1 - HOLDOUT_SHARE))
    validation_start = int(holdout_start * (1 - VALIDATION_SHARE))
    return ordered.iloc[:validation_start], ordered.iloc[validation_start:holdout_start], ordered.iloc[holdout_start:]
