"""How a pipeline task runs on a cluster — GPUs, resources, retries, deadlines — as small typed Python values.

An ML engineer writes ``TaskRuntime(gpu=GpuSpec(count=1, accelerator="NVIDIA-A100-SXM4-80GB"))`` and the
compiler turns it into everything a GPU pod needs on Kubernetes: the ``nvidia.com/gpu`` limit, a toleration
for the GPU taint, a node selector, an in-memory ``/dev/shm`` (PyTorch data loaders need more than the 64 MiB
default), a deadline and a retry strategy that retries infrastructure faults but not bugs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from hera.workflows import EmptyDirVolume, Resources, RetryStrategy
from hera.workflows import models as m

from driftloop.errors import ConfigError

__all__ = [
    "ACCELERATOR_LABEL",
    "CPU_TASK",
    "GPU_RESOURCE",
    "GPU_TASK",
    "GpuSpec",
    "ResourceSpec",
    "RetrySpec",
    "TaskRuntime",
    "default_runtime",
    "with_contract_gpu",
]

GPU_RESOURCE = "nvidia.com/gpu"
ACCELERATOR_LABEL = "nvidia.com/gpu.product"  # set on GPU nodes by NVIDIA GPU feature discovery
RETRY_POLICIES = ("OnError", "OnTransientError", "OnFailure", "Always")


@dataclass(frozen=True)
class GpuSpec:
    """GPUs for one task. `accelerator` pins a GPU model (value of the ``nvidia.com/gpu.product`` node label)."""

    count: int = 1
    accelerator: str | None = None
    shared_memory: str = "8Gi"

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"GpuSpec.count={self.count} must be at least 1", hint="use gpu=None for a CPU task")


@dataclass(frozen=True)
class ResourceSpec:
    """Requests (what the scheduler reserves) and limits (where the pod is throttled or killed)."""

    cpu_request: str = "500m"
    cpu_limit: str = "2"
    memory_request: str = "1Gi"
    memory_limit: str = "4Gi"


@dataclass(frozen=True)
class RetrySpec:
    """Retry on infrastructure faults by default (``OnTransientError``/``OnError``), never on a failing exit code."""

    limit: int = 2
    policy: str = "OnTransientError"
    backoff: str = "30s"
    factor: int = 2
    max_backoff: str = "10m"

    def __post_init__(self) -> None:
        if self.policy not in RETRY_POLICIES:
            raise ConfigError(
                f"RetrySpec.policy={self.policy!r} is not an Argo retry policy", hint=f"use one of {RETRY_POLICIES}"
            )


@dataclass(frozen=True)
class TaskRuntime:
    """Everything about *where and how* a task runs, as opposed to *what* it runs (the step contract)."""

    resources: ResourceSpec = field(default_factory=ResourceSpec)
    gpu: GpuSpec | None = None
    retry: RetrySpec | None = field(default_factory=RetrySpec)
    deadline_seconds: int = 3600

    def container_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a Hera ``Container``."""
        res = self.resources
        kwargs: dict[str, Any] = {
            "resources": Resources(
                cpu_request=res.cpu_request,
                cpu_limit=res.cpu_limit,
                memory_request=res.memory_request,
                memory_limit=res.memory_limit,
                gpus=self.gpu.count if self.gpu else None,
                gpu_flag=GPU_RESOURCE,
            ),
            "active_deadline_seconds": m.IntOrString(__root__=self.deadline_seconds),
        }
        if self.retry is not None:
            kwargs["retry_strategy"] = RetryStrategy(
                limit=m.IntOrString(__root__=self.retry.limit),
                retry_policy=self.retry.policy,
                backoff=m.Backoff(
                    duration=self.retry.backoff,
                    factor=m.IntOrString(__root__=self.retry.factor),
                    max_duration=self.retry.max_backoff,
                ),
            )
        if self.gpu is not None:
            kwargs["tolerations"] = [m.Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")]
            kwargs["volumes"] = [
                EmptyDirVolume(
                    name="dshm",
                    mount_path="/dev/shm",
                    medium="Memory",
                    size_limit=m.Quantity(__root__=self.gpu.shared_memory),
                )
            ]
            if self.gpu.accelerator:
                kwargs["node_selector"] = {ACCELERATOR_LABEL: self.gpu.accelerator}
        return kwargs


# The one default of every pipeline: a step whose contract says gpu=True runs on GPU_TASK, any other on CPU_TASK,
# unless the pipeline names another runtime for it (a runtime without a GPU still gets one: see with_contract_gpu).
CPU_TASK = TaskRuntime(deadline_seconds=1800)
GPU_TASK = TaskRuntime(
    resources=ResourceSpec(cpu_request="2", cpu_limit="8", memory_request="8Gi", memory_limit="32Gi"),
    gpu=GpuSpec(count=1),
    retry=RetrySpec(limit=3, policy="OnError"),
    deadline_seconds=4 * 3600,
)


class _NeedsGpu(Protocol):
    @property
    def gpu(self) -> bool: ...


def default_runtime(contract: _NeedsGpu) -> TaskRuntime:
    """GPU_TASK for a step whose contract needs a GPU, else CPU_TASK — the same in every pipeline."""
    return GPU_TASK if contract.gpu else CPU_TASK


def with_contract_gpu(runtime: TaskRuntime, contract: _NeedsGpu) -> TaskRuntime:
    """`runtime`, with a GPU added when the contract needs one: ``gpu=True`` is never silently dropped."""
    if contract.gpu and runtime.gpu is None:
        return replace(runtime, gpu=GpuSpec())
    return runtime
