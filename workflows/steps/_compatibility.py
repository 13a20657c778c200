"""The schema compatibility gate: model signature vs the Feast feature service in force vs recent payloads.

Pure functions over plain data, so the GitOps issue (and tests) can call them without MLflow or a lake.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from features.contract import FeatureSchema

__all__ = ["SIGNATURE_TO_DTYPE", "Mismatch", "signature_vs_payloads", "signature_vs_schema"]

SIGNATURE_TO_DTYPE = {"long": "int64", "integer": "int64", "double": "float64", "float": "float64", "string": "string"}
# pandas.api.types.infer_dtype results a column of each contract dtype may show in captured payloads
_PAYLOAD_KINDS = {
    "int64": {"integer", "empty"},
    "float64": {"floating", "integer", "mixed-integer-float", "decimal", "empty"},
    "string": {"string", "empty"},
}


@dataclass
class Mismatch:
    """Columns that differ between the model and one other side; empty means compatible."""

    against: str  # "feature service <name>" or "recent payloads"
    missing: list[str] = field(default_factory=list)  # the model expects them, the other side lacks them
    unexpected: list[str] = field(default_factory=list)  # the other side has them, the model does not know them
    mistyped: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return sorted(set(self.missing) | set(self.unexpected) | set(self.mistyped))

    def __bool__(self) -> bool:
        return bool(self.columns)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"model expects {self.missing} which {self.against} lacks")
        if self.unexpected:
            parts.append(f"{self.against} has {self.unexpected} which the model does not take")
        if self.mistyped:
            parts.append(f"dtype differs for {self.mistyped}")
        return "; ".join(parts)


def signature_vs_schema(signature: dict[str, str], schema: FeatureSchema) -> Mismatch:
    """``signature``: input column -> MLflow type (long/double/string)."""
    result = Mismatch(f"feature service {schema.service!r}")
    names = set(schema.names)
    result.missing = [name for name in signature if name not in names]
    result.unexpected = [name for name in schema.names if name not in signature]
    result.mistyped = [
        spec.name
        for spec in schema.features
        if spec.name in signature and SIGNATURE_TO_DTYPE.get(signature[spec.name], signature[spec.name]) != spec.dtype
    ]
    return result


def signature_vs_payloads(signature: dict[str, str], seen: dict[str, str], required: set[str]) -> Mismatch:
    """``seen``: payload column -> pandas infer_dtype; optional model columns may be absent from payloads."""
    result = Mismatch("recent payloads")
    result.missing = [name for name in signature if name in required and name not in seen]
    result.unexpected = [name for name in seen if name not in signature]
    result.mistyped = [
        name
        for name, kind in seen.items()
        if name in signature and kind not in _PAYLOAD_KINDS.get(SIGNATURE_TO_DTYPE.get(signature[name], ""), {kind})
    ]
    return result
