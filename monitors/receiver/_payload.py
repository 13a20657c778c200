"""Alertmanager's webhook payload, version 4, validated: anything else is a 422 that names the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

__all__ = ["Alert", "Notification", "ValidationError", "describe"]

MAX_ALERTS = 1000
Text = Annotated[str, StringConstraints(max_length=4096)]
LabelName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Labels = Annotated[dict[LabelName, Text], Field(max_length=64)]


class _Model(BaseModel):
    # Alertmanager may add fields in later releases: unknown keys are ignored, known ones are strict
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class Alert(_Model):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    startsAt: datetime = Field(strict=False)  # RFC 3339 text
    endsAt: datetime | None = Field(default=None, strict=False)
    generatorURL: Annotated[str, StringConstraints(max_length=4096)] = ""
    fingerprint: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


class Notification(_Model):
    version: Literal["4"]
    groupKey: Text
    truncatedAlerts: int = Field(default=0, ge=0)
    status: Literal["firing", "resolved"]
    receiver: Text
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Labels = Field(default_factory=dict)
    externalURL: Text = ""
    alerts: Annotated[list[Alert], Field(min_length=1, max_length=MAX_ALERTS)]


def describe(error: ValidationError) -> str:
    """The first few problems as ``alerts.0.fingerprint: String should match pattern …``."""
    parts = []
    for item in error.errors(include_url=False)[:5]:
        where = ".".join(str(part) for part in item["loc"]) or "(body)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
