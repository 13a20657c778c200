"""The Feast objects (entity, feature views, feature service), built from the declared columns.

Every column's contract (dtype, nullability, categorical domain, range) is written into the Feast ``Field`` tags,
so the data contract used by ``validate-data`` and the schema gate of ``promote`` are read from the feature views
themselves. Source paths are resolved to absolute paths at run time: the DuckDB offline store needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Float64, Int64, String

from features.columns import ENTITY_KEY, TIMESTAMP, VIEW_COLUMNS
from features.contract import FeatureSpec, feature_service_name

__all__ = ["Definitions", "build_definitions", "feature_service_name", "to_field"]

FEATURE_TTL = timedelta(days=365)
_FEAST_TYPES = {"int64": Int64, "float64": Float64, "string": String}


def to_field(spec: FeatureSpec) -> Field:
    """A Feast field whose tags carry the contract (read back by ``features.contract.schema_from_views``)."""
    tags = {"kind": "categorical" if spec.categorical else "numeric", "nullable": str(spec.nullable).lower()}
    if spec.domain:
        tags["domain"] = "|".join(spec.domain)
    if spec.minimum is not None:
        tags["min"] = repr(spec.minimum)
    if spec.maximum is not None:
        tags["max"] = repr(spec.maximum)
    if not spec.for_decisions:
        tags["decisions"] = "false"
    return Field(name=spec.name, dtype=_FEAST_TYPES[spec.dtype], tags=tags)


@dataclass(frozen=True)
class Definitions:
    """Everything ``feast apply`` registers for one data source."""

    entity: Entity
    source: FileSource
    views: tuple[FeatureView, ...]
    services: tuple[FeatureService, ...]

    def objects(self) -> list[object]:
        return [self.entity, self.source, *self.views, *self.services]


def build_definitions(
    source_path: str | Path,
    model_name: str = "credit-risk",
    view_columns: dict[str, tuple[FeatureSpec, ...]] | None = None,
) -> Definitions:
    """Feast objects reading ``source_path`` (made absolute); ``view_columns`` overrides the columns (migrations)."""
    absolute = str(Path(source_path).expanduser().resolve())
    entity = Entity(
        name="applicant", join_keys=[ENTITY_KEY], value_type=ValueType.INT64, description="A loan applicant."
    )
    source = FileSource(
        name="credit_applications",
        path=absolute,
        file_format=ParquetFormat(),
        timestamp_field=TIMESTAMP,
        description="Loan applications (one row per application), written by `driftloop data generate`.",
    )
    views = tuple(
        FeatureView(
            name=view,
            entities=[entity],
            ttl=FEATURE_TTL,
            schema=[to_field(spec) for spec in specs],
            source=source,
            online=True,
            tags={"owner": "driftloop"},
        )
        for view, specs in (view_columns or VIEW_COLUMNS).items()
    )
    service = FeatureService(name=feature_service_name(model_name), features=list(views), tags={"model": model_name})
    return Definitions(entity=entity, source=source, views=views, services=(service,))
