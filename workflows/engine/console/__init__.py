"""The operator console: server-rendered pages the embedded engine serves next to its API, at the Argo UI's URLs.

``/workflows``, ``/workflows/<namespace>/<name>``, ``/workflow-templates``, ``/cron-workflows`` (Argo's paths, so
a link works against either) and ``/models/<name>`` (driftloop's registry view). See docs/console.md.
"""

from urllib.parse import quote

from workflows.engine.console._app import ConsoleApp, Page
from workflows.engine.console._approval import approval_gate, model_of
from workflows.engine.console._sources import ModelSources

__all__ = ["ConsoleApp", "ModelSources", "Page", "approval_gate", "console_url", "model_of"]


def console_url(engine_url: str, *segments: str) -> str:
    """A console page's URL on the engine at ``engine_url`` (segments percent-quoted; never carries the token)."""
    return engine_url.rstrip("/") + "".join("/" + quote(part, safe="") for part in segments)
