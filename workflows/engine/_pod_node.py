"""Pod-like nodes (container, script, containerSet): build the processes, volumes and GPUs, run them in a
sandbox, and turn the exit into Argo's phase, message and outputs."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from driftloop.config import get_settings, repo_root
from driftloop.errors import DriftloopError, EngineError
from workflows.engine._artifacts import ArtifactMissing
from workflows.engine._gpu import gpus_requested
from workflows.engine._images import SHIMS_INSIDE
from workflows.engine._logs import node_log_path
from workflows.engine._outputs import OutputsError, collect_pod_outputs
from workflows.engine._pods import ContainerRun, Sandbox
from workflows.engine._retry import parse_duration
from workflows.engine.expressions import evaluate
from workflows.engine.templating import substitute_obj

__all__ = ["project_paths_hidden_by_tmp", "run_pod"]

SCRIPT_PATH = "/argo/staging/script"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


class StartError(EngineError):
    """A container the engine can see cannot start (its command does not exist): the node Fails, as in Argo."""


def project_paths_hidden_by_tmp() -> list[Path]:
    """What a project-image node needs that the node's private ``/tmp`` would hide: the checkout and the
    interpreter (venv and base) when they live under /tmp. They are bound at their own path (writes there are
    real, as for the engine home); elsewhere the overlay shows them and keeps the node's writes private."""
    wanted = {repo_root(), Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent}
    hidden = sorted(
        {
            p.resolve()
            for p in wanted
            if p.exists() and p.resolve().is_relative_to("/tmp") and p.resolve() != Path("/tmp")
        }
    )
    return [p for p in hidden if not any(p != q and p.is_relative_to(q) for q in hidden)]


def _ordered_set(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """containerSet containers in dependency order (a stable topological sort)."""
    by_name = {c["name"]: c for c in containers}
    done: list[str] = []
    pending = [c["name"] for c in containers]
    while pending:
        ready = [n for n in pending if all(d in done for d in by_name[n].get("dependencies") or [])]
        if not ready:
            raise EngineError(f"containerSet dependencies form a cycle among {pending}")
        done.append(ready[0])
        pending.remove(ready[0])
    return [by_name[n] for n in done]


def _environment(container: dict[str, Any], runtime: Any, node_id: str) -> dict[str, str]:
    env = {"PATH": runtime.path, "HOME": "/root", "HOSTNAME": node_id, "ARGO_NODE_ID": node_id}
    env.update(runtime.pass_env)
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        elif ((entry.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") == "metadata.name":
            env[entry["name"]] = node_id
    return env


def _volume_dirs(ex: Any, template: dict[str, Any], node_dir: Path) -> dict[str, Path]:
    """Volume name -> host folder: emptyDir per node, claims per workflow (or per engine for existing claims)."""
    dirs: dict[str, Path] = {}
    for claim in ex.spec.get("volumeClaimTemplates") or []:
        name = (claim.get("metadata") or {}).get("name")
        if name:
            dirs[name] = ex.run_dir / "volumes" / name
    for volume in [*(ex.spec.get("volumes") or []), *(template.get("volumes") or [])]:
        name = volume.get("name")
        if "persistentVolumeClaim" in volume:
            dirs[name] = ex.ctx.home / "pvc" / volume["persistentVolumeClaim"].get("claimName", name)
        elif "hostPath" in volume:
            dirs[name] = Path(volume["hostPath"].get("path", "/"))
        else:  # emptyDir, configMap, secret…: a fresh folder per node
            dirs[name] = node_dir / "volumes" / name
    return dirs


def _mounts(
    ex: Any, template: dict[str, Any], containers: list[dict[str, Any]], node_dir: Path
) -> list[tuple[Path, str]]:
    dirs = _volume_dirs(ex, template, node_dir)
    mounts: dict[str, Path] = {}
    for container in containers:
        for mount in container.get("volumeMounts") or []:
            if not mount.get("mountPath"):  # what the Kubernetes API answers when the pod is created
                raise EngineError(
                    f"pod is invalid: volumeMounts[{mount.get('name')}].mountPath: Required value",
                    hint="give every volumeMount a mountPath",
                )
            source = dirs.get(mount.get("name"))
            if source is None:
                raise EngineError(
                    f"volumeMount {mount.get('name')!r} names no volume of the workflow or template",
                    hint="declare it under spec.volumes, template volumes, or spec.volumeClaimTemplates",
                )
            if mount.get("subPath"):
                source = source / mount["subPath"]
            source.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = source
    return [(source, target) for target, source in mounts.items()]


def _containers(ex: Any, template: dict[str, Any], sandbox_script: str | None, node_id: str) -> list[ContainerRun]:
    specs: list[tuple[str, dict[str, Any]]] = [("init", c) for c in template.get("initContainers") or []]
    if template.get("containerSet"):
        ordered = _ordered_set(template["containerSet"].get("containers") or [])
        specs += [("main", c) for c in ordered]
    else:
        specs.append(("main", template.get("script") or template.get("container") or {}))
    specs += [("sidecar", c) for c in template.get("sidecars") or []]
    runs = []
    single_main = sum(1 for role, _ in specs if role == "main") == 1
    for role, spec in specs:
        image = str(spec.get("image") or "")
        runtime = ex.ctx.images.runtime(image, ex.ctx.isolated)
        command = [str(c) for c in spec.get("command") or []]
        args = [str(a) for a in spec.get("args") or []]
        if role == "main" and sandbox_script is not None:  # Argo appends the script's path to the args
            argv = runtime.argv(command, [*args, sandbox_script]) if command or runtime.kind == "argosay" else []
            argv = argv or ["sh", *args, sandbox_script]
        else:
            argv = runtime.argv(command, args)
        if not argv or runtime.which(argv[0]) is None:
            # Kubernetes starts the pod and the container fails (StartError): Argo marks the node Failed
            raise StartError(
                f'failed to start container "{spec.get("name") or "main"}": exec: '
                f'"{argv[0] if argv else ""}": executable file not found in $PATH (image {image!r}, '
                f"{runtime.kind} runtime on this machine)",
                hint="install it on the host, or map the image to another runtime in <home>/image-map.yaml",
            )
        if role == "main" and ex.ctx.isolated:
            # Argo's executor is the container's pid 1 and the user's command its child, so a command that
            # signals itself dies (exit 128+n) instead of being ignored, as a namespace's pid 1 would be
            argv = ["/bin/sh", "-c", '"$@"; exit $?', "sh", *argv]
        if role == "main" and template.get("containerSet"):
            argv = _with_container_retries(argv, (template["containerSet"] or {}).get("retryStrategy"))
        name = str(spec.get("name") or "main")
        captures = role == "main" and (single_main or name == "main")
        runs.append(
            ContainerRun(
                name,
                argv,
                _environment(spec, runtime, node_id),
                str(spec.get("workingDir") or runtime.default_cwd),
                role,
                captures,
            )
        )
    return runs


def _with_container_retries(argv: list[str], strategy: dict[str, Any] | None) -> list[str]:
    """``containerSet.retryStrategy``: Argo's executor re-runs a failed container inside the same pod (its
    filesystem kept) up to ``retries`` more times, ``duration`` apart."""
    if not strategy or str(strategy.get("retries") or "0") in ("0", ""):
        return argv
    retries = int(str(strategy["retries"]))
    pause = parse_duration(strategy["duration"]) if strategy.get("duration") else 0
    loop = (
        f'n=0; while :; do "$@"; rc=$?; [ $rc -eq 0 ] && exit 0; [ $n -ge {retries} ] && exit $rc; '
        f"n=$((n+1)); sleep {pause:g}; done"
    )
    return ["/bin/sh", "-c", loop, "retry", *argv]


@contextlib.contextmanager
def _gpus(ex: Any, node: dict[str, Any], template: dict[str, Any]) -> Iterator[tuple[dict[str, str], str | None]]:
    """CUDA_VISIBLE_DEVICES for the node (held until it ends) and a warning when it falls back to CPU."""
    specs = [template.get("container") or template.get("script") or {}]
    specs += list((template.get("containerSet") or {}).get("containers") or [])
    wanted = max((gpus_requested(s) for s in specs), default=0)
    if wanted == 0:
        yield {}, None
        return
    pool = ex.ctx.gpus
    if not pool.devices:
        if ex.ctx.gpu_fallback == "error":
            raise EngineError(
                f"the node requests {wanted} nvidia.com/gpu but this machine has no GPU",
                hint="set DRIFTLOOP_GPU_FALLBACK=cpu to run it on CPU, or run on a machine with a GPU",
            )
        yield {"CUDA_VISIBLE_DEVICES": ""}, f"warning: requested {wanted} GPU(s) but none exist here; ran on CPU"
        return
    ex.book.update(node, message=f"Waiting for {wanted} GPU(s)")
    taken = pool.acquire(wanted, lambda: ex.shutdown_reason() is not None)
    if taken is None:
        raise EngineError(
            f"the node requests {wanted} nvidia.com/gpu; this machine has {len(pool.devices)}",
            hint="lower the request or run on a bigger machine",
        )
    ex.book.update(node, message="")
    try:
        yield {"CUDA_VISIBLE_DEVICES": ",".join(taken)}, None
    finally:
        pool.release(taken)


@contextlib.contextmanager
def _pod_slot(ex: Any) -> Iterator[None]:
    if ex.pod_slots is None:
        yield
        return
    while not ex.pod_slots.acquire(timeout=0.1):
        if ex.shutdown_reason() is not None:
            break
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            ex.pod_slots.release()


def _deadline(template: dict[str, Any]) -> float | None:
    limits = [
        parse_duration(template[k]) for k in ("activeDeadlineSeconds", "timeout") if template.get(k) not in (None, "")
    ]
    return time.monotonic() + min(limits) if limits else None


def _prepare(
    ex: Any, node: dict[str, Any], resolved: dict[str, Any], artifacts: dict[str, Any]
) -> tuple[Sandbox, list[ContainerRun]]:
    """The node's sandbox (volumes, shims, the engine home for project images), inputs and script in place."""
    node_dir = ex.run_dir / "nodes" / f"{node['id']}-{uuid.uuid4().hex[:8]}"  # unique: a retry may reuse the id
    main_specs = (resolved.get("containerSet") or {}).get("containers") or [
        resolved.get("script") or resolved.get("container") or {}
    ]
    every_spec = [*main_specs, *(resolved.get("initContainers") or []), *(resolved.get("sidecars") or [])]
    mounts = _mounts(ex, resolved, every_spec, node_dir)
    if any(ex.ctx.images.kind_of(str(c.get("image") or "")) == "project" for c in main_specs):
        homes = {Path(ex.ctx.home).resolve(), get_settings().home}
        mounts += [(home, str(home)) for home in homes if home.exists()]
        mounts += [(path, str(path)) for path in project_paths_hidden_by_tmp()]
    mounts.append((ex.ctx.images.shim_dir, SHIMS_INSIDE))
    sandbox = Sandbox(node_dir, ex.ctx.isolated, mounts, ex.ctx.launcher)
    try:
        for declared in (resolved.get("inputs") or {}).get("artifacts") or []:
            artifact = artifacts.get(declared["name"])
            if artifact is not None and declared.get("path"):
                destination = sandbox.host_path(declared["path"], for_write=True)
                missing_parents = [p for p in destination.parents if not p.exists()]
                try:
                    ex.ctx.artifacts.load(artifact, destination, artifact.get("subPath"))
                except ArtifactMissing:
                    if not declared.get("optional"):
                        raise  # Argo's executor skips an optional input artifact it cannot find; the step runs
                    for parent in missing_parents:  # an empty upper-layer /bin would hide the image's /bin
                        with contextlib.suppress(OSError):
                            parent.rmdir()
        if sandbox.isolated and any(ex.ctx.images.kind_of(str(c.get("image") or "")) == "argosay" for c in every_spec):
            # the image's entrypoint lives at /argosay: commands such as `sh -c "sleep 1; /argosay"` call it
            sandbox.place_file("/argosay", f'#!/bin/sh\nexec {SHIMS_INSIDE}/argosay "$@"\n', 0o755)
        script = None
        if resolved.get("script") is not None and resolved["script"].get("source"):
            script = sandbox.place_file(SCRIPT_PATH, str(resolved["script"].get("source") or ""), 0o755)
        return sandbox, _containers(ex, resolved, script, node["id"])
    except BaseException:
        sandbox.cleanup()
        raise


def run_pod(
    ex: Any,
    node: dict[str, Any],
    template: dict[str, Any],
    scope: dict[str, Any],
    artifacts: dict[str, Any],
    stop_reason: Callable[[], str | None] | None = None,
) -> dict[str, Any]:
    """Run a container/script/containerSet node to its end (or until ``stop_reason`` gives a reason, as for a
    daemon whose boundary finished); returns the finished node."""
    resolved = substitute_obj(template, scope)
    log = node_log_path(ex.ctx.home, ex.name, node["id"])
    try:
        sandbox, containers = _prepare(ex, node, resolved, artifacts)
    except StartError as exc:
        return ex.book.finish(node, "Failed", exc.message)
    except DriftloopError as exc:
        ex.not_started.add(node["id"])
        return ex.book.finish(node, "Error", exc.message)
    deadline = _deadline(resolved)

    def should_kill() -> str | None:
        reason = ex.shutdown_reason() or (stop_reason() if stop_reason is not None else None)
        if reason is None and deadline is not None and time.monotonic() > deadline:
            reason = DEADLINE_MESSAGE
        return reason

    try:
        with _gpus(ex, node, resolved) as (gpu_env, warning), _pod_slot(ex):
            for container in containers:
                container.env.update(gpu_env)
            if should_kill() is not None:
                return ex.book.finish(node, "Failed", should_kill())
            ex.book.update(node, phase="Running", hostNodeName="localhost")
            outcome = sandbox.run(containers, log, should_kill)
        return _finish(ex, node, resolved, sandbox, outcome, scope, warning)
    except DriftloopError as exc:
        return ex.book.finish(node, "Error", exc.message)
    finally:
        if not os.environ.get("DRIFTLOOP_ENGINE_KEEP_SANDBOX"):
            sandbox.cleanup()


def _finish(
    ex: Any,
    node: dict[str, Any],
    template: dict[str, Any],
    sandbox: Sandbox,
    outcome: Any,
    scope: dict[str, Any],
    warning: str | None,
) -> dict[str, Any]:
    if outcome.sandbox_error:
        return ex.book.finish(node, "Error", outcome.sandbox_error)
    phase = "Succeeded" if outcome.exit_code == 0 and outcome.killed is None else "Failed"
    message = outcome.killed or (None if phase == "Succeeded" else f"Error (exit code {outcome.exit_code})")
    daemoned = bool(node.get("daemoned"))
    if daemoned:  # Argo ignores the failure (or the kill) of a pod once it is daemoned
        phase, message = "Succeeded", None
    try:
        outputs = collect_pod_outputs(
            template,
            sandbox.host_path,
            outcome.stdout,
            outcome.exit_code,
            ex.ctx.artifacts,
            f"{ex.name}/{node['id']}",
            lambda expression: evaluate(expression, scope),
        )
    except DriftloopError as exc:
        outputs = {"exitCode": str(outcome.exit_code)} if outcome.exit_code is not None else {}
        if phase == "Succeeded":
            phase, message = "Error", exc.message
    except OSError as exc:
        raise OutputsError(f"collecting outputs failed: {exc}") from exc
    ex.publish_globals(outputs)
    if warning:
        message = f"{message}; {warning}" if message else warning
    _container_children(ex, node, template, sandbox, outcome.exit_code)
    return ex.book.finish(node, phase, message, outputs=outputs or None, daemoned=None)


def _container_children(
    ex: Any, node: dict[str, Any], template: dict[str, Any], sandbox: Sandbox, pod_exit: int | None
) -> None:
    """containerSet: one Container node per container, as Argo shows them."""
    containers = (template.get("containerSet") or {}).get("containers") or []
    for container in containers:
        code = sandbox.exit_code_of(container["name"])
        if code is None and len(containers) == 1:  # a lone container is the pod's process (no exit record)
            code = pod_exit
        child = ex.book.create(
            f"{node['name']}.{container['name']}",
            display_name=container["name"],
            node_type="Container",
            template_name=node.get("templateName"),
            boundary_id=node.get("boundaryID"),
            parent_id=node["id"],
        )
        if code is None:  # Argo's executor terminates the pod's remaining containers (SIGTERM)
            ex.book.finish(child, "Failed", "Error (exit code 143): not run, an earlier container failed")
        else:
            ex.book.finish(
                child,
                "Succeeded" if code == 0 else "Failed",
                None if code == 0 else f"Error (exit code {code})",
                outputs={"exitCode": str(code)},
            )
