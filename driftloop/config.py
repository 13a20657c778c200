"""The one configuration module: every setting comes from a ``DRIFTLOOP_*`` environment variable.

Defaults describe the embedded (single-machine) mode, so a fresh clone works with no configuration;
on a cluster the same variables point at the real Argo Server, MLflow and object store.
Run ``driftloop config`` to see the values in force and where each came from.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from driftloop._setting_docs import SETTING_DOCS
from driftloop.errors import ConfigError

__all__ = [
    "PREFIX",
    "SETTING_DOCS",
    "Settings",
    "argo_server_url",
    "bound_mlflow_retries",
    "engine_token_path",
    "get_settings",
    "is_loopback_host",
    "parse_duration",
    "read_argo_token",
    "repo_root",
]

PREFIX = "DRIFTLOOP_"

# MLflow's client retries an unreachable server for minutes by default (7 retries, backoff factor 2, 120 s timeout)
_MLFLOW_HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def bound_mlflow_retries() -> None:
    """Make this process's MLflow calls give up within seconds, unless the user set ``MLFLOW_HTTP_REQUEST_*``.

    For the long-running services that already retry on their own loop (the drift monitor, the deployer): a registry
    outage must show up as an error now, and a SIGTERM must not wait behind minutes of a client's backoff (the
    deployer, blocked so, was SIGKILLed by ``stack down`` before it could stop its model servers).
    """
    for name, value in _MLFLOW_HTTP_BOUNDS.items():
        os.environ.setdefault(name, value)


def repo_root() -> Path:
    """The checkout this package runs from (editable install), else the working directory."""
    here = Path(__file__).resolve().parents[1]
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


@dataclass(frozen=True)
class Settings:
    home: Path
    shared_dir: Path
    argo_server: str
    argo_token: str
    argo_token_file: str
    engine_allowed_hosts: tuple[str, ...]
    namespace: str
    service_account: str
    artifact_repository: str
    mlflow_uri: str
    image: str
    model_name: str
    gpu_fallback: str
    semaphore_size: int
    lake_uri: str
    lake_retention: float  # seconds; 0: keep everything
    lake_compact_interval: float  # seconds; 0: off
    serving_url: str
    model_server_url: str
    monitor_url: str
    monitor_interval: float
    monitor_window_rows: int
    monitor_window_minutes: float
    monitor_min_rows: int
    monitor_drift_share: float
    prometheus_url: str
    alertmanager_url: str
    trigger_url: str
    trigger_token: str
    trigger_token_file: str
    trigger_cooldown: float
    trigger_parameters: str
    feedback_max_rows: int
    feedback_late_after: float
    monitor_quality_window_rows: int
    monitor_quality_min_rows: int
    quality_auc_tolerance: float
    quality_min_auc: float
    fairness_max_auc_gap: float
    fairness_max_parity_gap: float
    decision_threshold: float
    explain_top_k: int
    not_for_decisions: tuple[str, ...]
    gitops_repo: str
    gitops_branch: str
    approval_environments: tuple[str, ...]
    approval_timeout: str
    deployer_url: str
    deployer_environment: str
    deployer_canary_steps: tuple[int, ...]
    deployer_canary_window: float
    deployer_analysis_timeout: float
    deployer_poll: float
    deployer_max_error_rate: float
    deployer_max_p99: float
    deployer_min_requests: int
    deployer_min_p99_requests: int
    deployer_max_schema_mismatch: float
    deployer_drift_gate: str

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def source_of(self, name: str) -> str:
        """'env' when the value came from DRIFTLOOP_<NAME>, else 'default'."""
        return "env" if (PREFIX + name.upper()) in os.environ else "default"


def _raw(name: str, env: dict[str, str]) -> str:
    return env.get(PREFIX + name.upper(), SETTING_DOCS[name][0])


def _path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (repo_root() / path).resolve()


def _positive(
    name: str, source: dict[str, str], kind: type[int] | type[float], example: str, allow_zero: bool = False
) -> Any:
    """A setting that must be a positive (or, ``allow_zero``, non-negative) int/float, else a ConfigError naming the
    variable and an example."""
    text = _raw(name, source)
    try:
        value = kind(text)
        if not (value >= 0 if allow_zero else value > 0):
            raise ValueError
    except ValueError:
        noun = ("non-negative " if allow_zero else "positive ") + ("integer" if kind is int else "number")
        raise ConfigError(
            f"{PREFIX}{name.upper()}={text!r} is not a {noun}",
            hint=f"e.g. export {PREFIX}{name.upper()}={example}",
        ) from None
    return value


def _unit(name: str, source: dict[str, str]) -> float:
    """A setting that is a number in (0, 1]: a share, a probability or a metric gap."""
    value = float(_positive(name, source, float, SETTING_DOCS[name][0]))
    if value > 1:
        raise ConfigError(
            f"{PREFIX}{name.upper()}={value:g} is above 1",
            hint=f"a number between 0 and 1, e.g. {PREFIX}{name.upper()}={SETTING_DOCS[name][0]}",
        )
    return value


_DURATION_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, what: str) -> float:
    """``30d``, ``36h``, ``90m``, ``45s`` or plain seconds -> seconds; ``0`` (or ``off``) -> 0 (disabled)."""
    value = text.strip().lower()
    if value in {"0", "off", "none", ""}:
        return 0.0
    number, unit = (value[:-1], value[-1]) if value[-1] in "smhd" else (value, "")
    try:
        seconds = float(number) * _DURATION_UNITS[unit]
        if not seconds > 0 or seconds != seconds or seconds == float("inf"):
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"{what}={text!r} is not a duration", hint=f"a number with s, m, h or d, e.g. {what}=30d (0: off)"
        ) from None
    return seconds


def engine_token_path(home: Path) -> Path:
    """Where ``engine serve`` keeps the token it generated on its first start (mode 0600, folder 0700)."""
    return home / "engine" / "token"


def is_loopback_host(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (brackets allowed): names that cannot point at another machine."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _token_in_file(path: Path, variable: str) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"{variable}: cannot read the token file {path}: {exc.strerror or exc}",
            hint="point it at a readable file holding the token, or unset it",
        ) from None
    if not token:
        raise ConfigError(f"{variable}: the token file {path} is empty", hint="write the token into it")
    return token


def read_argo_token(source: dict[str, str], home: Path, argo_server: str) -> str:
    """The token a client sends, resolved in this order (the one place every command and the stack use):

    ``DRIFTLOOP_ARGO_TOKEN``; the file named by ``DRIFTLOOP_ARGO_TOKEN_FILE``; for a loopback server, the token
    the embedded engine generated (``<home>/engine/token``); else none. Call it again after starting an engine.
    """
    if source.get(PREFIX + "ARGO_TOKEN", "").strip():
        return source[PREFIX + "ARGO_TOKEN"].strip()
    named = source.get(PREFIX + "ARGO_TOKEN_FILE", "").strip()
    if named:
        return _token_in_file(_path(named), PREFIX + "ARGO_TOKEN_FILE")
    default = engine_token_path(home)
    host = urlsplit(argo_server).hostname or ""
    if is_loopback_host(host) and default.is_file():
        return _token_in_file(default, f"the engine's token file ({default})")
    return ""


_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def argo_server_url(text: str) -> str:
    """DRIFTLOOP_ARGO_SERVER as a URL; the Argo CLI's ``host:port`` form (ARGO_SERVER) is accepted.

    The Argo CLI reads ``host:port`` as HTTPS (its ARGO_SECURE defaults to true). Without a scheme we do
    the same, except on a loopback host, where the server is the embedded engine and speaks plain HTTP;
    write the scheme to say otherwise (``https://localhost:2746`` for a port-forwarded Argo Server).
    """
    value = text.strip().rstrip("/")
    variable = f"{PREFIX}ARGO_SERVER"
    example = f"e.g. {variable}=http://127.0.0.1:2746 (embedded engine) or https://argo.example.com:2746"
    if "://" not in value:
        host = value.rsplit(":", 1)[0] if value.count(":") == 1 or value.startswith("[") else value
        value = ("http://" if host in _LOOPBACK else "https://") + value
    scheme, _, rest = value.partition("://")
    host_port = rest.split("/", 1)[0]
    if scheme not in {"http", "https"} or not host_port or host_port.startswith(":") or host_port.endswith(":"):
        raise ConfigError(f"{variable}={text!r} is not an http(s) URL or host:port", hint=example)
    port = host_port.rsplit(":", 1)[1] if host_port.count(":") == 1 else ""
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError(f"{variable}={text!r}: port {port!r} is not a number from 1 to 65535", hint=example)
    return value


def get_settings(env: dict[str, str] | None = None) -> Settings:
    """Read the settings now (not at import), so tests and subprocesses can change the environment."""
    source = dict(os.environ if env is None else env)
    fallback = _raw("gpu_fallback", source)
    if fallback not in {"cpu", "error"}:
        raise ConfigError(
            f"{PREFIX}GPU_FALLBACK={fallback!r} is not valid",
            hint="use 'cpu' (run GPU steps on CPU with a warning) or 'error' (fail them)",
        )
    semaphore_size = _positive("semaphore_size", source, int, "2")
    drift_share = _positive("monitor_drift_share", source, float, "0.3")
    if drift_share > 1:
        raise ConfigError(
            f"{PREFIX}MONITOR_DRIFT_SHARE={drift_share} is above 1", hint="a share of features: e.g. 0.3 or 0.5"
        )
    home = _path(_raw("home", source))
    argo_server = argo_server_url(_raw("argo_server", source))
    return Settings(
        home=home,
        shared_dir=_path(_raw("shared_dir", source)),
        argo_server=argo_server,
        argo_token=read_argo_token(source, home, argo_server),
        argo_token_file=_raw("argo_token_file", source),
        engine_allowed_hosts=tuple(
            h.strip().lower() for h in _raw("engine_allowed_hosts", source).split(",") if h.strip()
        ),
        namespace=_raw("namespace", source),
        service_account=_raw("service_account", source),
        artifact_repository=_raw("artifact_repository", source),
        mlflow_uri=_raw("mlflow_uri", source).rstrip("/"),
        image=_raw("image", source),
        model_name=_raw("model_name", source),
        gpu_fallback=fallback,
        semaphore_size=semaphore_size,
        lake_uri=_raw("lake_uri", source) or str(_path(_raw("home", source)) / "lake"),
        lake_retention=parse_duration(_raw("lake_retention", source), f"{PREFIX}LAKE_RETENTION"),
        lake_compact_interval=parse_duration(_raw("lake_compact_interval", source), f"{PREFIX}LAKE_COMPACT_INTERVAL"),
        serving_url=_raw("serving_url", source).rstrip("/"),
        model_server_url=_raw("model_server_url", source).rstrip("/"),
        monitor_url=_raw("monitor_url", source).rstrip("/"),
        monitor_interval=_positive("monitor_interval", source, float, "30"),
        monitor_window_rows=_positive("monitor_window_rows", source, int, "2000"),
        monitor_window_minutes=_positive("monitor_window_minutes", source, float, "60"),
        monitor_min_rows=_positive("monitor_min_rows", source, int, "500"),
        monitor_drift_share=drift_share,
        prometheus_url=_raw("prometheus_url", source).rstrip("/"),
        alertmanager_url=_raw("alertmanager_url", source).rstrip("/"),
        trigger_url=_raw("trigger_url", source).rstrip("/"),
        trigger_token=_raw("trigger_token", source),
        trigger_token_file=_raw("trigger_token_file", source),
        trigger_cooldown=_positive("trigger_cooldown", source, float, "3600"),
        trigger_parameters=_raw("trigger_parameters", source),
        feedback_max_rows=_positive("feedback_max_rows", source, int, "10000"),
        feedback_late_after=_positive("feedback_late_after", source, float, "604800"),
        monitor_quality_window_rows=_positive("monitor_quality_window_rows", source, int, "5000"),
        monitor_quality_min_rows=_positive("monitor_quality_min_rows", source, int, "200"),
        quality_auc_tolerance=_unit("quality_auc_tolerance", source),
        quality_min_auc=_unit("quality_min_auc", source),
        fairness_max_auc_gap=_unit("fairness_max_auc_gap", source),
        fairness_max_parity_gap=_unit("fairness_max_parity_gap", source),
        decision_threshold=_unit("decision_threshold", source),
        explain_top_k=_positive("explain_top_k", source, int, "3"),
        not_for_decisions=tuple(n.strip() for n in _raw("not_for_decisions", source).split(",") if n.strip()),
        gitops_repo=_raw("gitops_repo", source) or str(_path(_raw("home", source)) / "gitops.git"),
        gitops_branch=_raw("gitops_branch", source),
        approval_environments=tuple(e.strip() for e in _raw("approval_environments", source).split(",") if e.strip()),
        approval_timeout=_approval_timeout(_raw("approval_timeout", source)),
        deployer_url=_raw("deployer_url", source).rstrip("/"),
        deployer_environment=_raw("deployer_environment", source),
        deployer_canary_steps=_canary_steps(_raw("deployer_canary_steps", source)),
        deployer_canary_window=_positive("deployer_canary_window", source, float, "10"),
        deployer_analysis_timeout=_positive("deployer_analysis_timeout", source, float, "1800"),
        deployer_poll=_positive("deployer_poll", source, float, "2"),
        deployer_max_error_rate=_positive("deployer_max_error_rate", source, float, "0.01"),
        deployer_max_p99=_positive("deployer_max_p99", source, float, "0.5"),
        deployer_min_requests=_positive("deployer_min_requests", source, int, "20"),
        deployer_min_p99_requests=_positive("deployer_min_p99_requests", source, int, "100"),
        deployer_max_schema_mismatch=_positive("deployer_max_schema_mismatch", source, float, "0", allow_zero=True),
        deployer_drift_gate=_choice("deployer_drift_gate", source, ("dry-run", "gate")),
    )


def _approval_timeout(text: str) -> str:
    """An Argo ``suspend.duration`` (``90``, ``30m``, ``24h``, ``2d``), checked here rather than at the suspend."""
    if parse_duration(text, f"{PREFIX}APPROVAL_TIMEOUT") <= 0:
        raise ConfigError(f"{PREFIX}APPROVAL_TIMEOUT={text!r} must be positive", hint="e.g. 24h")
    return text.strip()


def _choice(name: str, source: dict[str, str], allowed: tuple[str, ...]) -> str:
    value = _raw(name, source)
    if value not in allowed:
        raise ConfigError(f"{PREFIX}{name.upper()}={value!r} is not one of {', '.join(allowed)}",
                          hint=f"e.g. export {PREFIX}{name.upper()}={allowed[-1]}")  # fmt: skip
    return value


def _canary_steps(text: str) -> tuple[int, ...]:
    """``10,50`` -> (10, 50): increasing shares strictly between 0 and 100 (empty: straight to 100 %)."""
    try:
        steps = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        steps = (0,)
    if any(not 0 < s < 100 for s in steps) or list(steps) != sorted(set(steps)):
        raise ConfigError(
            f"{PREFIX}DEPLOYER_CANARY_STEPS={text!r} is not a list of increasing percentages between 0 and 100",
            hint=f"e.g. export {PREFIX}DEPLOYER_CANARY_STEPS=10,50",
        )
    return steps
