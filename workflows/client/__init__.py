"""The Argo Server client: the one submit path, used against the embedded engine and a real Argo Server alike.

    from workflows.client import ArgoClient
    ArgoClient().submit("training", parameters=["trigger=manual"])

``_argo`` speaks the Argo Server REST API (Hera's models over httpx); ``_submission`` builds what ``submit`` sends
(a pipeline's objects, through the compiler, or a YAML file). The client sits above the compiler and the spec layer
and beside the engine: it reaches the engine only over HTTP (docs/architecture.md, "Layers of workflows/").
"""

from __future__ import annotations

from workflows.client._argo import ArgoClient, is_local_server, serve_log_path

__all__ = ["ArgoClient", "is_local_server", "serve_log_path"]
