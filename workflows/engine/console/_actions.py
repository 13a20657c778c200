"""The console's POSTs (retry, resubmit, stop, terminate, suspend, resume) and its artifact downloads.

An action runs the very handler the REST API runs for ``PUT /api/v1/workflows/<ns>/<name>/<action>`` (found
through the API's own route table), so the console can never drift from what ``argo``, Hera and ``driftloop runs``
get: same checks, same errors, same effect. After it, the browser is redirected (303) to the run's page — or, for
resubmit, to the new run's.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

from driftloop.errors import EngineError, NotFoundError
from workflows.engine._api_routes import Request, find_route
from workflows.engine._artifacts import ArtifactRepository
from workflows.engine.console._html import segment
from workflows.engine.controller import Controller
from workflows.engine.store import WORKFLOW

__all__ = ["ACTIONS", "artifact_download", "run_action"]

ACTIONS = ("retry", "resubmit", "stop", "terminate", "suspend", "resume")


def run_action(
    controller: Controller, auth: str, namespace: str, name: str, action: str, body: dict[str, Any] | None = None
) -> str:
    """Run ``action`` through the API's handler (with the request ``body`` the API takes); the next page's URL."""
    if action not in ACTIONS:
        raise NotFoundError(f"no action {action[:40]!r}", hint="one of " + ", ".join(ACTIONS))
    handler, params = find_route("PUT", f"/api/v1/workflows/{segment(namespace)}/{segment(name)}/{action}")
    result = handler(Request(controller, params, {}, dict(body or {}), auth))
    target = name
    if action == "resubmit" and isinstance(result, dict):
        target = str((result.get("metadata") or {}).get("name") or name)
    return f"/workflows/{segment(namespace)}/{segment(target)}"


def _find_artifact(workflow: dict[str, Any], node_id: str, artifact_name: str) -> dict[str, Any]:
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    node = nodes.get(node_id)
    if node is None:
        raise NotFoundError(f"no node {node_id[:80]!r} in {workflow['metadata']['name']}", hint="pick a node")
    for side in ("outputs", "inputs"):
        for artifact in (node.get(side) or {}).get("artifacts") or []:
            if artifact.get("name") == artifact_name:
                return dict(artifact)
    raise NotFoundError(f"node {node_id[:80]} has no artifact {artifact_name[:80]!r}", hint="see the node panel")


def artifact_download(
    controller: Controller, namespace: str, name: str, node_id: str, artifact_name: str
) -> tuple[str, bytes | Path]:
    """(file name, content or path) of a node's artifact, as the local repository holds it.

    A tar.gz archive (Argo's default) downloads as ``<name>.tgz``; an unarchived file as itself; an unarchived
    folder is packed into a tar.gz on the fly. The key is resolved inside the repository (no ``..`` escape).
    """
    workflow = controller.store.get(WORKFLOW, namespace, name)
    artifact = _find_artifact(workflow, node_id, artifact_name)
    key = (artifact.get("s3") or {}).get("key")
    if not key:
        raise NotFoundError(f"artifact {artifact_name[:80]!r} is not in the local repository", hint="see its node")
    location = ArtifactRepository(controller.home / "artifacts").location(str(key))
    if not location.exists():
        raise NotFoundError(f"artifact {artifact_name[:80]!r} is gone from {location.parent}", hint="rerun the step")
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in artifact_name)[:100] or "artifact"
    if location.is_dir():
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(location, arcname=location.name)
        return f"{safe_name}.tgz", buffer.getvalue()
    archived = "none" not in (artifact.get("archive") or {})
    return (f"{safe_name}.tgz" if archived else safe_name), location


def parse_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the console's forms), strictly UTF-8."""
    from urllib.parse import parse_qsl

    try:
        return dict(parse_qsl(body.decode("utf-8", errors="strict"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise EngineError("the form is not UTF-8", hint="submit the console's own forms") from None
