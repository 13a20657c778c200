"""What one template invocation carries through the walker: where names resolve, the call, the bound inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflows.engine._model import StatusBook

__all__ = ["Bound", "Call", "Source"]


@dataclass(frozen=True)
class Source:
    """Where template names resolve: the workflow's own templates, or a WorkflowTemplate's."""

    templates: dict[str, dict[str, Any]]
    label: str = "workflow"


@dataclass
class Call:
    """One invocation of a template: from a step, a task, a hook, or the entrypoint."""

    spec: dict[str, Any]  # has template | templateRef | inline
    arguments: dict[str, Any]
    node_name: str
    display_name: str
    boundary_id: str | None
    parent_id: str | None
    source: Source
    extra: dict[str, Any] = field(default_factory=dict)

    def create_node(
        self,
        book: StatusBook,
        node_type: str,
        template_name: str | None,
        phase: str = "Pending",
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """This call's node (named, placed and linked as the call says), created or reused after a restart."""
        return book.create(
            self.node_name,
            display_name=self.display_name,
            node_type=node_type,
            template_name=template_name,
            boundary_id=self.boundary_id,
            parent_id=self.parent_id,
            phase=phase,
            extra=extra,
        )


@dataclass
class Bound:
    """A call after its template is resolved and its inputs bound: everything an attempt needs."""

    call: Call
    template: dict[str, Any]
    source: Source
    parameters: dict[str, str]
    artifacts: dict[str, Any]
    node_type: str
    inputs_record: dict[str, Any]

    def node_extra(self) -> dict[str, Any] | None:
        return {"inputs": self.inputs_record} if self.inputs_record else None
