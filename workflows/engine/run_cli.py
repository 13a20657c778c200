"""``driftloop engine run``: run one workflow file on this machine, without a server, and wait for it."""

from __future__ import annotations

import json
import secrets
import string
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from driftloop.config import get_settings
from driftloop.errors import DriftloopError, EngineError
from workflows.engine._cli_runs import print_workflow
from workflows.engine._lint import check_workflow
from workflows.engine._logs import log_file
from workflows.engine.runner import EngineContext, RunControl, run_workflow

__all__ = ["RunDocuments", "load_run_documents", "run_command"]

TEMPLATE_KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate")


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except UnicodeDecodeError:
        raise DriftloopError(
            f"{path}: not a text file (not UTF-8)", hint="give a workflow YAML file, e.g. manifests/workflows/*.yaml"
        ) from None
    except yaml.YAMLError as exc:
        raise DriftloopError(f"{path}: not valid YAML ({exc})", hint="fix the YAML (driftloop lint FILE)") from exc
    bad = [d for d in docs if not isinstance(d, dict)]
    if bad:
        raise DriftloopError(f"{path}: a document is not a mapping", hint="each YAML document must be an Argo object")
    return docs


@dataclass
class RunDocuments:
    """What ``engine run`` found in its files: the workflow, the templates it may reference, ConfigMaps."""

    workflow: dict[str, Any]
    templates: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    configmaps: list[dict[str, Any]] = field(default_factory=list)


def load_run_documents(file: Path, template_files: tuple[Path, ...] = ()) -> RunDocuments:
    """The Workflow to run, plus the (Cluster)WorkflowTemplates and ConfigMaps of FILE and the template files.

    A file holding no Workflow runs its CronWorkflow's workflowSpec once, or its (only) WorkflowTemplate
    through a ``workflowTemplateRef``.
    """
    found = RunDocuments({})
    docs = _documents(file)
    for doc in [d for extra in template_files for d in _documents(extra)] + docs:
        if doc.get("kind") in TEMPLATE_KINDS:
            found.templates[(doc["kind"], doc["metadata"]["name"])] = doc
        elif doc.get("kind") == "ConfigMap":
            found.configmaps.append(doc)
    workflow = next((d for d in docs if d.get("kind") == "Workflow"), None)
    if workflow is None:
        cron = next((d for d in docs if d.get("kind") == "CronWorkflow"), None)
        if cron is not None:
            workflow = {
                "metadata": {"generateName": cron["metadata"]["name"] + "-"},
                "spec": cron["spec"]["workflowSpec"],
            }
        else:
            stored = [d for d in docs if d.get("kind") in TEMPLATE_KINDS]
            if len(stored) != 1:
                raise DriftloopError(
                    f"{file}: no Workflow document to run",
                    hint="the file needs a 'kind: Workflow' document (or exactly one WorkflowTemplate/CronWorkflow)",
                )
            ref = {"name": stored[0]["metadata"]["name"], "clusterScope": stored[0]["kind"] == TEMPLATE_KINDS[1]}
            workflow = {"metadata": {"generateName": ref["name"] + "-"}, "spec": {"workflowTemplateRef": ref}}
        workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", **workflow}
    found.workflow = workflow
    return found


def _prepare(workflow: dict[str, Any], parameters: tuple[str, ...], entrypoint: str | None) -> dict[str, Any]:
    workflow = json.loads(json.dumps(workflow))
    metadata = workflow.setdefault("metadata", {})
    if not metadata.get("name"):
        suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        metadata["name"] = (metadata.get("generateName") or "workflow-") + suffix
    spec = workflow.setdefault("spec", {})
    if entrypoint:
        spec["entrypoint"] = entrypoint
    arguments = spec.setdefault("arguments", {})
    existing = arguments.setdefault("parameters", [])
    for pair in parameters:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise DriftloopError(f"-p {pair!r} is not name=value", hint="e.g. -p message=hello")
        for parameter in existing:
            if parameter["name"] == name:
                parameter.pop("valueFrom", None)
                parameter["value"] = value
                break
        else:
            existing.append({"name": name, "value": value})
    return workflow


def _lint_as_the_server_does(workflow: dict[str, Any], found: RunDocuments, *, named_by_us: bool) -> None:
    """The checks ``POST /api/v1/workflows`` makes (one code path: ``_lint.check_workflow``), before anything runs.

    The server lints before it generates a name, so a name we generated is left out: the messages are the
    API's, word for word. The templates given alongside are checked too, as the server checks them on create.
    """

    def resolve(kind: str, name: str) -> dict[str, Any] | None:
        return found.templates.get((kind, name))

    for template in found.templates.values():
        check_workflow(template, resolve)
    as_submitted = {**workflow, "metadata": dict(workflow.get("metadata") or {})}
    if named_by_us:
        as_submitted["metadata"].pop("name", None)
    check_workflow(as_submitted, resolve)


def _wait(workflow: dict[str, Any], ctx: EngineContext) -> dict[str, Any]:
    """Run in a worker thread so Ctrl-C can stop (first) or terminate (second) the workflow cleanly."""
    control = RunControl()
    result: dict[str, Any] = {}
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.update(run_workflow(workflow, ctx, control))
        except BaseException as exc:  # surfaced in the main thread
            failure.append(exc)

    worker = threading.Thread(target=target, name="engine-run", daemon=True)
    worker.start()
    interrupts = 0
    while worker.is_alive():
        try:
            worker.join(0.2)
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts == 1:
                click.echo("stopping (exit handlers still run; Ctrl-C again to terminate)…", err=True)
                control.stop("Stopped by Ctrl-C")
            else:
                control.terminate("Terminated by Ctrl-C")
    if failure:
        raise failure[0]
    return result


@click.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-p", "--parameter", "parameters", multiple=True, metavar="NAME=VALUE", help="Workflow parameter.")
@click.option("--entrypoint", default=None, help="Template to start from (overrides spec.entrypoint).")
@click.option(
    "--templates",
    "template_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML file(s) of WorkflowTemplates/ClusterWorkflowTemplates the workflow references.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["wide", "summary", "json", "yaml"]),
    default="wide",
    show_default=True,
    help="wide: the summary and node tree of `driftloop runs get` (summary: the same); json/yaml: the final Workflow.",
)
def run_command(
    file: Path, parameters: tuple[str, ...], entrypoint: str | None, template_files: tuple[Path, ...], output: str
) -> None:
    """Run one workflow FILE on this machine (no server, no cluster) and wait for it.

    Each container/script step runs as a local process tree with its own private filesystem view (/tmp
    included); images map to local runtimes (see docs/engine.md). Templates referenced with templateRef /
    workflowTemplateRef are taken from FILE itself and from --templates files; ConfigMaps in those files (and
    in $DRIFTLOOP_HOME/configmaps/*.yaml) feed valueFrom.configMapKeyRef parameters and semaphore sizes.
    Exit status: 0 when the workflow Succeeded, 1 when it Failed or Errored. Ctrl-C stops it (exit handlers
    run), a second Ctrl-C terminates it. Logs: $DRIFTLOOP_HOME/logs/<workflow>/<node-id>.log.

    \b
    Examples:
      driftloop engine run ../shared/argo-workflows/examples/dag-diamond.yaml
      driftloop engine run manifests/workflows/training.retrain.workflow.yaml \\
          --templates manifests/workflows/training.workflowtemplate.yaml -p model-name=credit-risk
      driftloop engine run wf.yaml -p message=hi --entrypoint main -o json
    """
    found = load_run_documents(file, template_files)
    workflow = _prepare(found.workflow, parameters, entrypoint)
    _lint_as_the_server_does(workflow, found, named_by_us=not found.workflow.get("metadata", {}).get("name"))
    settings = get_settings()
    ctx = EngineContext.local(settings.home, lambda kind, name: found.templates.get((kind, name)))
    for configmap in found.configmaps:
        ctx.configmaps.apply(configmap)
    if not ctx.isolated:
        click.echo("warning: cannot create mount namespaces here (needs root + unshare); nodes share /tmp", err=True)
    finished = _wait(workflow, ctx)
    if not finished:
        raise EngineError("the engine returned no workflow", hint="see the logs under $DRIFTLOOP_HOME/logs")
    name = finished["metadata"]["name"]

    def local_log(node: dict[str, Any]) -> list[str]:
        path = log_file(settings.home, name, node["id"])
        return path.read_text(errors="replace").splitlines() if path.is_file() else []

    print_workflow(finished, "wide" if output == "summary" else output, local_log)
    phase = (finished.get("status") or {}).get("phase")
    sys.stdout.flush()
    click.get_current_context().exit(0 if phase == "Succeeded" else 1)
