"""The model pin: one small YAML file per environment in the GitOps repository that says what serving runs.

``manifests/serving/overlays/<env>/model-pin.yaml`` — kustomize turns it into the ``model-pin`` ConfigMap (with a
content hash in its name), so a new pin is a new pod template and Argo Rollouts starts a canary. The serving pod
reads the same file and refuses a model whose digest differs. The file is generated: same pin, same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import PurePosixPath

import yaml

from driftloop.errors import LintIssue, ValidationError
from driftloop.registry_contract import CHAMPION

__all__ = ["ENVIRONMENTS", "UNPINNED", "ModelPin", "alias_for", "pin_path"]

ENVIRONMENTS = ("staging", "production")
UNPINNED = "none"  # model_version of the placeholder pin committed in the project before any promotion
_HEADER = (
    "# Model pin for environment {env}. Written by `driftloop promote` / `driftloop rollback`: do not edit by hand.\n"
    "# sha256 = sha256 over the MLflow model directory (workflows/gitops/digest.py); the serving pod checks it.\n"
)


def pin_path(environment: str) -> PurePosixPath:
    """Where the pin of ``environment`` lives, relative to the GitOps repository root."""
    return PurePosixPath("manifests/serving/overlays") / environment / "model-pin.yaml"


def alias_for(environment: str) -> str:
    """The registry alias an environment's pin mirrors: ``champion`` for production, the env name otherwise."""
    return CHAMPION if environment == "production" else environment


@dataclass(frozen=True)
class ModelPin:
    """What one environment serves: the model version, where it is, its digest, and the lineage it came from."""

    environment: str
    model_name: str
    model_version: str
    run_id: str
    model_uri: str
    sha256: str
    feature_schema_fingerprint: str
    data_snapshot_id: str
    code_commit: str

    @classmethod
    def unpinned(cls, environment: str, model_name: str) -> ModelPin:
        return cls(environment, model_name, UNPINNED, "", "", "", "", "", "")

    @property
    def is_pinned(self) -> bool:
        return self.model_version != UNPINNED

    def to_yaml(self) -> str:
        """Deterministic text: fixed key order, every value a quoted string, no timestamp."""
        # a JSON string is a valid YAML double-quoted scalar: exact, and the same bytes every time
        body = "".join(f"{key}: {json.dumps(str(value))}\n" for key, value in asdict(self).items())
        return _HEADER.format(env=self.environment) + body

    @classmethod
    def from_yaml(cls, text: str, source: str = "model-pin.yaml") -> ModelPin:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValidationError([LintIssue(source, "$", f"not YAML: {exc}", "pin")]) from None
        expected = [f.name for f in fields(cls)]
        if not isinstance(data, dict):
            raise ValidationError([LintIssue(source, "$", "a pin is a mapping of strings", "pin")])
        issues = [LintIssue(source, key, "missing", "pin") for key in expected if key not in data]
        issues += [LintIssue(source, str(key), "unknown key", "pin") for key in data if key not in expected]
        if issues:
            raise ValidationError(issues, hint="regenerate the pin with `driftloop promote` instead of editing it")
        return cls(**{key: str(data[key]) for key in expected})
