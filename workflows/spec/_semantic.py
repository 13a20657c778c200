"""The checks Argo's controller makes at submit time and Hera does not: names, references, DAG shape, GPUs.

One :class:`_SpecLinter` walks one workflow spec (of a Workflow, WorkflowTemplate, ClusterWorkflowTemplate or a
CronWorkflow's ``workflowSpec``). Templates of *other* documents are only known when they are linted together
(``templateRef`` / ``workflowTemplateRef``); otherwise those references are skipped, as ``argo lint`` does offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from driftloop.errors import LintIssue
from workflows.spec._graph import build_task_graph
from workflows.spec._references import Scope, check_references, iter_strings
from workflows.spec.yamlio import Document

__all__ = ["GPU_RESOURCE", "TEMPLATE_TYPES", "TemplateIndex", "build_index", "check_semantics"]

GPU_RESOURCE = "nvidia.com/gpu"
TEMPLATE_TYPES = (
    "container",
    "script",
    "dag",
    "steps",
    "resource",
    "suspend",
    "containerSet",
    "data",
    "http",
    "plugin",
)
_ARTIFACT_SOURCES = frozenset(
    {"s3", "git", "http", "raw", "artifactory", "gcs", "hdfs", "oss", "azure", "plugin", "from", "fromExpression"}
)
_TEMPLATE_KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate")
_SPEC_KINDS = ("Workflow", *_TEMPLATE_KINDS, "CronWorkflow")

TemplateIndex = dict[tuple[bool, str], dict[str, Any]]  # (cluster scoped, name) -> spec


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _named(items: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(str(item["name"]), item) for item in _as_list(items) if isinstance(item, dict) and "name" in item]


def _names(items: Any) -> set[str]:
    return {name for name, _ in _named(items)}


def build_index(documents: Iterable[Document]) -> TemplateIndex:
    """The WorkflowTemplates and ClusterWorkflowTemplates among the linted documents, by name."""
    index: TemplateIndex = {}
    for document in documents:
        if document.kind in _TEMPLATE_KINDS and document.name:
            index[(document.kind == "ClusterWorkflowTemplate", document.name)] = _as_dict(document.data.get("spec"))
    return index


def _requests_gpu(template: dict[str, Any]) -> bool:
    containers = [template.get("container"), template.get("script")]
    containers += _as_list(_as_dict(template.get("containerSet")).get("containers"))
    for container in containers:
        resources = _as_dict(_as_dict(container).get("resources"))
        for section in ("limits", "requests"):
            if GPU_RESOURCE in _as_dict(resources.get(section)):
                return True
    return False


def _tolerates_gpu(tolerations: list[Any]) -> bool:
    for toleration in tolerations:
        toleration = _as_dict(toleration)
        if toleration.get("key") == GPU_RESOURCE or (
            toleration.get("operator") == "Exists" and not toleration.get("key")
        ):
            return True
    return False


class _SpecLinter:
    """Every semantic finding for one workflow spec; `prefix` is its path in the document."""

    def __init__(self, label: str, spec: dict[str, Any], prefix: str, index: TemplateIndex, strict_args: bool) -> None:
        self.label, self.spec, self.prefix, self.index = label, spec, prefix, index
        self.issues: list[LintIssue] = []
        self.templates = dict(_named(spec.get("templates")))
        self.workflow_parameters: set[str] | None = _names(_as_dict(spec.get("arguments")).get("parameters"))
        self.referenced: dict[str, Any] | None = None  # the spec behind workflowTemplateRef, when known
        self.strict_args = strict_args
        ref = _as_dict(spec.get("workflowTemplateRef"))
        if ref:
            self.referenced = index.get((bool(ref.get("clusterScope")), str(ref.get("name"))))
            if self.referenced is None:
                self.workflow_parameters = None
            else:
                self.templates = {**dict(_named(self.referenced.get("templates"))), **self.templates}
                assert self.workflow_parameters is not None
                self.workflow_parameters |= _names(_as_dict(self.referenced.get("arguments")).get("parameters"))

    def report(self, path: str, message: str, check: str = "semantic") -> None:
        self.issues.append(LintIssue(self.label, path, message, check))

    def _duplicates(self, items: Any, path: str, what: str) -> None:
        seen: set[str] = set()
        for name, _ in _named(items):
            if name in seen:
                self.report(f"{path}[{name}]", f"duplicate {what} name '{name}'")
            seen.add(name)

    # -- the spec ----------------------------------------------------------------------------------------------
    def run(self) -> list[LintIssue]:
        spec, prefix = self.spec, self.prefix
        arguments = _as_dict(spec.get("arguments"))
        self._duplicates(arguments.get("parameters"), f"{prefix}.arguments.parameters", "parameter")
        self._duplicates(arguments.get("artifacts"), f"{prefix}.arguments.artifacts", "artifact")
        self._duplicates(spec.get("templates"), f"{prefix}.templates", "template")
        self._check_entry_points()
        for name, template in _named(spec.get("templates")):
            self._check_template(template, f"{prefix}.templates[{name}]")
        for hook_name, hook in _as_dict(spec.get("hooks")).items():
            self._resolve_call(_as_dict(hook), f"{prefix}.hooks.{hook_name}")
        return self.issues

    def _check_entry_points(self) -> None:
        spec, prefix = self.spec, self.prefix
        if self.referenced is None and spec.get("workflowTemplateRef"):
            return  # the referenced template is not among the linted files: nothing more to know
        entrypoint = spec.get("entrypoint") or (self.referenced or {}).get("entrypoint")
        if entrypoint is None and self.strict_args and self.templates:
            self.report(f"{prefix}.entrypoint", "no entrypoint: say which template the workflow starts with")
        for field_name, name in (("entrypoint", entrypoint), ("onExit", spec.get("onExit"))):
            if name is None:
                continue
            if str(name) not in self.templates:
                self.report(f"{prefix}.{field_name}", self._unknown_template(str(name)))
            elif field_name == "entrypoint" and self.strict_args:
                supplied = self.workflow_parameters or set()
                self._check_required_inputs(self.templates[str(name)], supplied, None, f"{prefix}.arguments")

    def _unknown_template(self, name: str) -> str:
        return f"template '{name}' is not defined (templates: {', '.join(sorted(self.templates)) or 'none'})"

    # -- calls: tasks, steps, hooks ----------------------------------------------------------------------------
    def _resolve_call(self, call: dict[str, Any], path: str) -> dict[str, Any] | None:
        """The template a task/step/hook runs, when it can be known; reports unknown names."""
        if "inline" in call:
            inline = _as_dict(call["inline"])
            self._check_template(inline, f"{path}.inline")
            return inline
        if "template" in call:
            name = str(call["template"])
            if name not in self.templates:
                self.report(f"{path}.template", self._unknown_template(name))
                return None
            return self.templates[name]
        if "templateRef" in call:
            ref = _as_dict(call["templateRef"])
            cluster = bool(ref.get("clusterScope"))
            other = self.index.get((cluster, str(ref.get("name"))))
            if other is None:
                return None  # not among the linted files: cannot be checked offline
            found = dict(_named(other.get("templates"))).get(str(ref.get("template")))
            if found is None:
                kind = "ClusterWorkflowTemplate" if cluster else "WorkflowTemplate"
                self.report(
                    f"{path}.templateRef",
                    f"{kind} '{ref.get('name')}' has no template '{ref.get('template')}'"
                    f" (it has: {', '.join(sorted(_names(other.get('templates')))) or 'none'})",
                )
            return found
        self.report(path, "runs no template: set 'template', 'templateRef' or 'inline'")
        return None

    def _check_required_inputs(
        self, callee: dict[str, Any], parameters: set[str], artifacts: set[str] | None, path: str
    ) -> None:
        inputs = _as_dict(callee.get("inputs"))
        for name, parameter in _named(inputs.get("parameters")):
            if name not in parameters and not ({"value", "default", "valueFrom"} & set(parameter)):
                self.report(
                    f"{path}.parameters",
                    f"required input parameter '{name}' of template '{callee.get('name')}' is not supplied",
                )
        if artifacts is None:
            return
        for name, artifact in _named(inputs.get("artifacts")):
            if name not in artifacts and not artifact.get("optional") and not (_ARTIFACT_SOURCES & set(artifact)):
                self.report(
                    f"{path}.artifacts",
                    f"required input artifact '{name}' of template '{callee.get('name')}' is not supplied",
                )

    def _check_call(self, call: dict[str, Any], path: str) -> dict[str, Any] | None:
        arguments = _as_dict(call.get("arguments"))
        self._duplicates(arguments.get("parameters"), f"{path}.arguments.parameters", "parameter")
        self._duplicates(arguments.get("artifacts"), f"{path}.arguments.artifacts", "artifact")
        callee = self._resolve_call(call, path)
        if callee is not None:
            supplied = (_names(arguments.get("parameters")), _names(arguments.get("artifacts")))
            self._check_required_inputs(callee, *supplied, f"{path}.arguments")
        if call.get("onExit") is not None and str(call["onExit"]) not in self.templates:
            self.report(f"{path}.onExit", self._unknown_template(str(call["onExit"])))
        for hook_name, hook in _as_dict(call.get("hooks")).items():
            self._resolve_call(_as_dict(hook), f"{path}.hooks.{hook_name}")
        return callee

    # -- templates ---------------------------------------------------------------------------------------------
    def _scope(self, template: dict[str, Any]) -> Scope:
        inputs = _as_dict(template.get("inputs"))
        return Scope(
            input_parameters=_names(inputs.get("parameters")),
            input_artifacts=_names(inputs.get("artifacts")),
            workflow_parameters=self.workflow_parameters if self.strict_args else None,
        )

    def _check_strings(self, node: Any, path: str, scope: Scope, skip: frozenset[str] = frozenset()) -> None:
        for where, text in iter_strings(node, path, skip):
            check_references(text, scope, where, self.report)

    def _check_template(self, template: dict[str, Any], path: str) -> None:
        types = [t for t in TEMPLATE_TYPES if t in template]
        if not types:
            self.report(path, f"template has no type: give it one of {', '.join(TEMPLATE_TYPES)}")
        elif len(types) > 1:
            self.report(path, f"template has several types ({', '.join(types)}); keep exactly one")
        for section in ("inputs", "outputs"):
            for what in ("parameters", "artifacts"):
                items = _as_dict(template.get(section)).get(what)
                self._duplicates(items, f"{path}.{section}.{what}", f"{section[:-1]} {what[:-1]}")
        scope = self._scope(template)
        if "dag" in template:
            self._check_nodes(self._dag_nodes(template, path), "tasks", template, path, scope)
        elif "steps" in template:
            self._check_nodes(self._step_nodes(template, path), "steps", template, path, scope)
        else:
            self._check_strings(template, path, scope)
        self._check_gpu(template, path)

    def _dag_nodes(self, template: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any], set[str]]]:
        tasks = _named(_as_dict(template.get("dag")).get("tasks"))
        prefix = f"{path}.dag.tasks"
        self._duplicates(_as_dict(template.get("dag")).get("tasks"), prefix, "task")
        graph = build_task_graph(tasks, prefix, self.report)
        return [(name, task, graph.ancestors(name)) for name, task in tasks]

    def _step_nodes(self, template: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any], set[str]]]:
        nodes: list[tuple[str, dict[str, Any], set[str]]] = []
        earlier: set[str] = set()
        all_steps: list[Any] = []
        for group in _as_list(template.get("steps")):
            group_steps = _named(group)
            all_steps += _as_list(group)
            nodes += [(name, step, set(earlier)) for name, step in group_steps]
            earlier |= {name for name, _ in group_steps}
        self._duplicates(all_steps, f"{path}.steps", "step")
        return nodes

    def _check_nodes(
        self,
        nodes: list[tuple[str, dict[str, Any], set[str]]],
        kind: str,
        template: dict[str, Any],
        path: str,
        scope: Scope,
    ) -> None:
        """Calls and references of the tasks (or steps) of one template; `nodes` carry what precedes each."""
        scope.node_kind, scope.siblings = kind, {name for name, _, _ in nodes}
        location = "dag.tasks" if kind == "tasks" else "steps"
        for name, node, _ in nodes:
            callee = self._check_call(node, f"{path}.{location}[{name}]")
            if callee is None:
                scope.outputs_of[name] = None
            else:
                outputs = _as_dict(callee.get("outputs"))
                scope.outputs_of[name] = (_names(outputs.get("parameters")), _names(outputs.get("artifacts")))
        self._check_strings(template, path, scope, skip=frozenset({"dag", "steps"}))
        for name, node, before in nodes:
            where = f"{path}.{location}[{name}]"
            scope.visible = before
            self._check_strings(node, where, scope, skip=frozenset({"inline", "hooks"}))
            scope.visible = before | {name}
            self._check_strings(node.get("hooks"), f"{where}.hooks", scope)
        scope.visible = None

    def _check_gpu(self, template: dict[str, Any], path: str) -> None:
        if not _requests_gpu(template) or "podSpecPatch" in template or "podSpecPatch" in self.spec:
            return
        tolerations = _as_list(template.get("tolerations")) + _as_list(self.spec.get("tolerations"))
        tolerations += _as_list(_as_dict(self.spec.get("templateDefaults")).get("tolerations"))
        if not _tolerates_gpu(tolerations):
            self.report(
                f"{path}.tolerations",
                f"requests {GPU_RESOURCE} but tolerates no '{GPU_RESOURCE}' taint: GPU nodes are tainted, so the pod"
                f" would stay Pending; add tolerations: [{{key: {GPU_RESOURCE}, operator: Exists, effect: NoSchedule}}]",
                check="gpu",  # not an Argo check: a runtime may choose to treat it as a warning
            )


def _check_metadata(document: Document) -> list[LintIssue]:
    metadata = _as_dict(document.data.get("metadata"))
    if not (metadata.get("name") or metadata.get("generateName")):
        return [LintIssue(document.label, "metadata", f"the {document.kind} has neither 'name' nor 'generateName'")]
    return []


_CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@every ")


def _check_cron(document: Document) -> list[LintIssue]:
    """Schedules Argo's cron parser (five fields, or a descriptor) accepts, and a real time zone."""
    spec = _as_dict(document.data.get("spec"))
    issues = []
    for index, schedule in enumerate(_as_list(spec.get("schedules"))):
        text = str(schedule).strip()
        valid = text.startswith(_CRON_DESCRIPTORS) or (len(text.split()) == 5 and croniter.is_valid(text))
        if not valid:
            issues.append(
                LintIssue(document.label, f"spec.schedules[{index}]", f"{text!r} is not a 5-field cron schedule")
            )
    timezone = spec.get("timezone")
    if timezone:
        try:
            ZoneInfo(str(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            issues.append(LintIssue(document.label, "spec.timezone", f"unknown time zone {timezone!r} (e.g. UTC)"))
    return issues


def check_semantics(document: Document, index: TemplateIndex, strict_templates: bool = False) -> list[LintIssue]:
    """Semantic findings for one document (non-Argo kinds and broken YAML yield none).

    Like ``argo template lint``, a WorkflowTemplate's ``{{workflow.parameters.x}}`` and entrypoint inputs are
    not checked by default, since the submitter may supply them; `strict_templates` checks them against the
    template's own ``spec.arguments`` (the compiler does, because our templates declare every parameter).
    """
    if document.kind not in _SPEC_KINDS or not isinstance(document.data, dict):
        return []
    issues = _check_metadata(document)
    spec = _as_dict(document.data.get("spec"))
    prefix = "spec"
    if document.kind == "CronWorkflow":
        issues += _check_cron(document)
        spec, prefix = _as_dict(spec.get("workflowSpec")), "spec.workflowSpec"
    strict_args = strict_templates or document.kind not in _TEMPLATE_KINDS
    return issues + _SpecLinter(document.label, spec, prefix, index, strict_args).run()
