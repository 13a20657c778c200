"""The demo's reviewer: `make demo` runs unattended, yet production promotions wait for a person's approval.

Rather than switch the gate off (DRIFTLOOP_APPROVAL_ENVIRONMENTS stays ``production``), the demo approves each
training run that waits in its ``approval`` task, as a person would: ``driftloop approve RUN --by demo --reason …``,
so the decision is recorded and shows in ``driftloop history`` and in the GitOps commit's ``Approved-By``.
"""

from __future__ import annotations

import threading

from driftloop._demo_support import driftloop
from driftloop.errors import DriftloopError

__all__ = ["DemoApprover"]


class DemoApprover:
    """A background thread approving every training run that waits before promote, until ``stop()``."""

    def __init__(self, poll_s: float = 2.0) -> None:
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-approver", daemon=True)
        self.approved: list[str] = []

    def __enter__(self) -> DemoApprover:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from workflows.client import ArgoClient
        from workflows.engine.console import approval_gate

        argo = ArgoClient()
        while not self._stop.wait(self.poll_s):
            try:
                waiting = [w for w in argo.list_workflows() if approval_gate(w)]
            except DriftloopError:
                continue  # the engine restarts or is busy: look again at the next poll
            for workflow in waiting:
                name = str(workflow["metadata"]["name"])
                if name not in self.approved:
                    self.approved.append(name)
                    reason = "make demo: evaluation gate passed, approved by the demo's reviewer"
                    driftloop("approve", name, "--by", "demo", "--reason", reason, expect_ok=False)
