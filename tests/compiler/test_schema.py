"""Argo's CRD schemas, translated for python-jsonschema: int-or-string, nullable, strict fields, and the cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from driftloop.errors import ConfigError
from workflows.spec import schema as _schema
from workflows.spec.schema import translate_schema, validate_structure


def _workflow(**template: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "s-"},
        "spec": {"entrypoint": "a", "templates": [{"name": "a", "container": {"image": "busybox"}, **template}]},
    }


@pytest.mark.parametrize("limit", [3, "3", "{{inputs.parameters.n}}"])
def test_int_or_string_accepts_both(limit: object) -> None:
    assert validate_structure(_workflow(retryStrategy={"limit": limit}), "wf") == []


def test_int_or_string_rejects_other_types() -> None:
    (issue,) = validate_structure(_workflow(retryStrategy={"limit": 1.5}), "wf")
    assert issue.path == "spec.templates[a].retryStrategy.limit"
    assert "is not of type 'integer'" in issue.message and "is not of type 'string'" in issue.message


def test_translation_rules() -> None:
    schema = {
        "type": "object",
        "description": "dropped",
        "properties": {
            "port": {"x-kubernetes-int-or-string": True},
            "maybe": {"type": "string", "nullable": True},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {}}},
        },
    }
    assert translate_schema(schema) == {
        "type": "object",
        "properties": {
            "port": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "free": {"type": "object", "properties": {"a": {}}},
        },
        "additionalProperties": False,
    }


def test_unknown_fields_are_named() -> None:
    (issue,) = validate_structure(_workflow(retryStrategy={"limt": 2}), "wf")
    assert issue.path == "spec.templates[a].retryStrategy" and "'limt'" in issue.message


def test_cache_is_written_once_and_survives_corruption(tmp_path: Path) -> None:
    crd = _schema.crd_dir() / _schema.ARGO_KINDS["WorkflowEventBinding"]
    first = _schema._load_translated(crd, tmp_path)
    (cached,) = tmp_path.glob("*.json")
    assert json.loads(cached.read_text()) == first
    cached.write_text("{torn")
    assert _schema._load_translated(crd, tmp_path) == first
    assert json.loads(cached.read_text()) == first


def test_missing_shared_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        _schema.crd_dir(tmp_path)
    assert "DRIFTLOOP_SHARED_DIR" in str(error.value)
