"""Open the Feast feature store for a data source, apply the definitions and read historical features.

Each source gets its own registry under ``$DRIFTLOOP_HOME/feast/<key>/`` so building a training set from a
scenario never rewrites the registry in force (``main``), which ``driftloop features apply`` owns.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from driftloop.config import get_settings
from driftloop.errors import DataContractError
from features.columns import ENTITY_KEY, LABEL, TIMESTAMP, declared_schema
from features.contract import FeatureSchema, schema_from_views
from features.definitions import Definitions, build_definitions, feature_service_name

log = logging.getLogger("driftloop.features")

__all__ = [
    "MAIN_REGISTRY",
    "REPO_DIR",
    "FeatureRepo",
    "code_schema",
    "entity_rows",
    "historical_features",
    "open_repo",
    "schema_in_force",
]

REPO_DIR = Path(__file__).resolve().parent / "repo"
MAIN_REGISTRY = "main"


class FeatureRepo:
    """A Feast store plus the definitions applied to it."""

    def __init__(self, store: Any, definitions: Definitions, model_name: str) -> None:
        self.store = store
        self.definitions = definitions
        self.model_name = model_name

    @property
    def service_name(self) -> str:
        return feature_service_name(self.model_name)

    def schema(self) -> FeatureSchema:
        return schema_from_views(self.service_name, self.definitions.views)

    def apply(self) -> None:
        self.store.apply(self.definitions.objects())


def _repo_config(key: str, offline_store: str | None) -> Any:
    from feast.repo_config import RepoConfig

    raw = yaml.safe_load((REPO_DIR / "feature_store.yaml").read_text())
    state = get_settings().home / "feast" / key
    state.mkdir(parents=True, exist_ok=True)
    raw["registry"] = str(state / "registry.db")
    raw["online_store"] = {**raw.get("online_store", {}), "path": str(state / "online.db")}
    if offline_store:
        raw["offline_store"] = {"type": offline_store}
    return RepoConfig(repo_path=REPO_DIR, **raw)


def _source_key(source_path: Path, offline_store: str | None) -> str:
    digest = hashlib.sha256(f"{source_path}|{offline_store or ''}".encode()).hexdigest()[:12]
    return f"{source_path.stem}-{digest}"


def open_repo(
    source_path: str | Path,
    model_name: str | None = None,
    *,
    key: str | None = None,
    offline_store: str | None = None,
    view_columns: dict[str, Any] | None = None,
    apply: bool = True,
) -> FeatureRepo:
    """A store reading ``source_path``; ``offline_store`` overrides the yaml (``file`` for the benchmark)."""
    from feast import FeatureStore

    source = Path(source_path).expanduser().resolve()
    model = model_name or get_settings().model_name
    config = _repo_config(key or _source_key(source, offline_store), offline_store)
    repo = FeatureRepo(FeatureStore(config=config), build_definitions(source, model, view_columns), model)
    if apply:
        repo.apply()
    return repo


def code_schema(model_name: str | None = None) -> FeatureSchema:
    """The contract as declared in code (no registry, no data, no Feast import needed)."""
    return declared_schema(model_name or get_settings().model_name)


def schema_in_force(model_name: str | None = None) -> FeatureSchema:
    """The feature service schema registered by `driftloop features apply`, else the one declared in code.

    The promotion gate compares a model's signature with this, so it never guesses: with no registry yet, or a
    registry that does not hold this model's feature service, it falls back to the code's schema and logs why (a
    warning in the step's log); a registry that exists but cannot be read is an error, not a fallback.
    """
    model = model_name or get_settings().model_name
    registry = get_settings().home / "feast" / MAIN_REGISTRY / "registry.db"
    service_name = feature_service_name(model)
    if not registry.exists():
        log.warning(
            "no Feast registry at %s (`driftloop features apply` writes it): using the feature schema declared in "
            "code for %r",
            registry,
            service_name,
        )
        return code_schema(model)
    from feast import FeatureStore
    from feast.errors import FeatureServiceNotFoundException, ProjectNotFoundException

    try:
        store = FeatureStore(config=_repo_config(MAIN_REGISTRY, None))
        service = store.get_feature_service(service_name)
    except (FeatureServiceNotFoundException, ProjectNotFoundException) as exc:
        log.warning(
            "the Feast registry at %s has no feature service %r (%s): using the feature schema declared in code",
            registry,
            service_name,
            exc.__class__.__name__,
        )
        return code_schema(model)
    except Exception as exc:  # a registry we cannot read must not let a model through on the code's schema
        raise DataContractError(
            f"cannot read the feature service {service_name!r} from the Feast registry at {registry}: "
            f"{exc.__class__.__name__}: {exc}",
            hint="re-create it with `driftloop features apply` (or restore it); the schema in force is unknown "
            "until then, so promotion is refused",
        ) from exc
    return schema_from_views(service.name, service.feature_view_projections)


def entity_rows(dataset: pd.DataFrame) -> pd.DataFrame:
    """The labelled entity rows (key, timestamp, label) of a dataset: what get_historical_features joins onto."""
    columns = [ENTITY_KEY, TIMESTAMP] + ([LABEL] if LABEL in dataset.columns else [])
    rows = dataset[columns].copy()
    rows[TIMESTAMP] = pd.to_datetime(rows[TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    return rows


def historical_features(repo: FeatureRepo, rows: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time correct features for ``rows``, in a stable order (the offline store does not keep one)."""
    service = repo.store.get_feature_service(repo.service_name)
    job = repo.store.get_historical_features(entity_df=rows, features=service)
    frame = job.to_df()
    _release_ibis_backend()
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    ordered = [ENTITY_KEY, TIMESTAMP] + [c for c in rows.columns if c not in (ENTITY_KEY, TIMESTAMP)]
    ordered += [name for name in repo.schema().names if name in frame.columns]
    return frame[ordered].sort_values([TIMESTAMP, ENTITY_KEY], kind="stable").reset_index(drop=True)


def _release_ibis_backend() -> None:
    """Close the DuckDB connection ibis keeps for Feast's reads; left open, nanobind prints ~100 'leaked' lines at
    interpreter exit into every step log. ibis opens a fresh one on the next read."""
    try:
        import ibis
    except ImportError:
        return
    backend = ibis.options.default_backend
    if backend is not None:
        backend.disconnect()
        ibis.options.default_backend = None
