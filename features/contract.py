"""The data contract, read from the Feast feature views: column names, dtypes, nullability, domains, ranges.

``FeatureSchema`` is what ``validate-data`` checks data against, what ``train`` turns into an MLflow signature,
what ``register`` writes as ``reference/schema.json`` and what ``promote`` compares a model's signature with.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["FeatureSchema", "FeatureSpec", "feature_service_name", "schema_from_views"]

# Feast value type name -> the dtype name the contract (and pandas) uses
_FEAST_TO_DTYPE = {"Int64": "int64", "Int32": "int64", "Float64": "float64", "Float32": "float64", "String": "string"}


@dataclass(frozen=True)
class FeatureSpec:
    """One feature column and what valid values look like."""

    name: str
    dtype: str  # int64 | float64 | string
    view: str
    nullable: bool = False
    domain: tuple[str, ...] = ()  # categorical values; empty for numeric columns
    minimum: float | None = None
    maximum: float | None = None
    for_decisions: bool = True  # False: the model must not lean on it (the explainability gate of `evaluate`)

    @property
    def categorical(self) -> bool:
        return self.dtype == "string"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["domain"] = list(self.domain)
        if self.for_decisions:  # the default is not written: contracts (and their hashes) stay as they were
            del data["for_decisions"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(**{**data, "domain": tuple(data.get("domain") or ())})


@dataclass(frozen=True)
class FeatureSchema:
    """The ordered feature columns of one feature service."""

    service: str
    features: tuple[FeatureSpec, ...]

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.features]

    @property
    def numeric(self) -> list[FeatureSpec]:
        return [spec for spec in self.features if not spec.categorical]

    @property
    def categorical(self) -> list[FeatureSpec]:
        return [spec for spec in self.features if spec.categorical]

    def spec(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def fingerprint(self) -> str:
        """Hash of names and dtypes only: what a model's input signature depends on."""
        payload = json.dumps([[spec.name, spec.dtype] for spec in self.features])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def definition_hash(self) -> str:
        """Hash of the full contract (domains and ranges too): part of the data snapshot id."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()

    def renamed(self, mapping: dict[str, str]) -> FeatureSchema:
        """A copy with columns renamed: how the seeds' incident (``age`` -> ``customer_age_years``) is modelled."""
        specs = tuple(replace(spec, name=mapping.get(spec.name, spec.name)) for spec in self.features)
        return replace(self, features=specs)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "fingerprint": self.fingerprint(),
            "features": [spec.to_json() for spec in self.features],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureSchema:
        return cls(service=data["service"], features=tuple(FeatureSpec.from_json(item) for item in data["features"]))


def feature_service_name(model_name: str) -> str:
    """Feature services are named after the model they feed: ``<model>-v1``."""
    return f"{model_name}-v1"


def _spec_from_field(view: str, field: Any) -> FeatureSpec:
    tags = dict(field.tags or {})
    dtype = _FEAST_TO_DTYPE.get(str(field.dtype), "string" if tags.get("kind") == "categorical" else "float64")
    domain = tuple(value for value in tags.get("domain", "").split("|") if value)
    return FeatureSpec(
        name=field.name,
        dtype=dtype,
        view=view,
        nullable=tags.get("nullable", "false") == "true",
        domain=domain,
        minimum=float(tags["min"]) if "min" in tags else None,
        maximum=float(tags["max"]) if "max" in tags else None,
        for_decisions=tags.get("decisions", "true") == "true",
    )


def schema_from_views(service: str, views: Iterable[Any]) -> FeatureSchema:
    """Derive the contract from Feast feature views (or feature view projections) in service order."""
    specs: list[FeatureSpec] = []
    for view in views:
        fields = getattr(view, "features", None) or getattr(view, "schema", [])
        specs.extend(_spec_from_field(view.name, field) for field in fields)
    return FeatureSchema(service=service, features=tuple(specs))
