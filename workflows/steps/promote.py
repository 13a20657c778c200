"""Step ``promote`` (runs only when evaluate passed): the schema compatibility gate, then alias ``champion``.

The model's signature must match the Feast feature service schema in force and, when the lake has captured
payloads, the columns serving actually receives. A mismatch blocks promotion with an error naming the columns.
Then the pin is committed to the GitOps repository (one commit carrying the lineage) and the aliases follow:
``champion``, and ``previous-champion`` for the one it replaced (workflows/gitops/promotion.py). The CLI's
``driftloop promote`` calls this same function.

    python -m workflows.steps.promote --model-name credit-risk --version 3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workflows.steps._io import run_step
from workflows.steps.contract import StepContract

__all__ = ["PromotionResult", "main", "model_signature", "promote", "recent_payload_columns"]

PAYLOAD_ROWS = 1_000


@dataclass(frozen=True)
class PromotionResult:
    champion_version: str
    previous_version: str | None
    checked: list[str] = field(default_factory=list)
    commit: str | None = None  # the GitOps commit; None when the version was pinned already (idempotent)


def model_signature(model_uri: str) -> tuple[dict[str, str], set[str]]:
    """Input column -> MLflow type, and the set of required columns, of a logged model: the columns of a column
    signature, or the properties of a typed model's one input object (``_pyfunc.served_model``)."""
    from mlflow.models import get_model_info
    from mlflow.types.schema import Object

    specs = get_model_info(model_uri).signature.inputs.inputs
    if len(specs) == 1 and isinstance(specs[0].type, Object):
        properties = specs[0].type.properties
        return {p.name: _type_name(p.dtype) for p in properties}, {p.name for p in properties if p.required}
    columns = {spec.name: _type_name(spec.type) for spec in specs}
    return columns, {spec.name for spec in specs if getattr(spec, "required", True)}


def _type_name(kind: Any) -> str:
    return str(kind.name if hasattr(kind, "name") else kind)


def recent_payload_columns(model_name: str) -> dict[str, str]:
    """Columns (and inferred kinds) of the latest captured payloads; empty when there is no lake or no data."""
    try:
        from monitors.lake import default_lake_uri, read_window
    except ImportError:
        return {}
    return dict(read_window(default_lake_uri(), model_name, last_rows=PAYLOAD_ROWS).columns_seen)


def _require_passed_evaluation(client: Any, model_version: Any) -> None:
    """Defence in depth behind the DAG's ``when``: a version whose evaluation failed is never promoted."""
    from driftloop.errors import ConflictError

    tags = client.get_run(model_version.run_id).data.tags if model_version.run_id else {}
    if tags.get("evaluation.passed") == "false":
        raise ConflictError(
            f"{model_version.name} v{model_version.version} failed evaluation: {tags.get('evaluation.reason', '')}",
            hint="train a better challenger; only versions that pass evaluate can become champion",
        )


def promote(
    model_name: str,
    version: str,
    *,
    feature_schema: Any = None,
    payload_columns: dict[str, str] | None = None,
    environment: str = "production",
    who: str | None = None,
    approved_by: str = "",
) -> PromotionResult:
    """Gate, then pin ``version`` in git and move ``champion``; SchemaMismatchError names the columns on a mismatch."""
    from driftloop.errors import SchemaMismatchError
    from features.store import schema_in_force
    from workflows.gitops.promotion import publish
    from workflows.steps._compatibility import signature_vs_payloads, signature_vs_schema
    from workflows.steps._registry import connect, get_version

    client = connect()
    _require_passed_evaluation(client, get_version(client, model_name, version))
    signature, required = model_signature(f"models:/{model_name}/{version}")
    schema = feature_schema or schema_in_force(model_name)
    seen = recent_payload_columns(model_name) if payload_columns is None else payload_columns
    mismatches = [signature_vs_schema(signature, schema)]
    if seen:
        mismatches.append(signature_vs_payloads(signature, seen, required))
    blocking = [mismatch for mismatch in mismatches if mismatch]
    if blocking:
        columns = sorted({column for mismatch in blocking for column in mismatch.columns})
        raise SchemaMismatchError(
            f"{model_name} v{version} is not promoted: its signature does not match the schema in force "
            f"(columns {columns}): " + " | ".join(mismatch.describe() for mismatch in blocking),
            columns=columns,
            hint="retrain on data built from the feature views in force, or migrate the feature service and serving "
            "together (features/definitions.py) before promoting",
        )
    # the GitOps commit first, then the aliases (champion, previous-champion): workflows/gitops/promotion.py
    change = publish(client, model_name, str(version), environment=environment, who=who, approved_by=approved_by)
    return PromotionResult(
        str(version), change.previous_version, [mismatch.against for mismatch in mismatches], change.commit
    )


def approval_for(model_name: str, workflow: str, environment: str = "production") -> Any:
    """The recorded decision on this run when `environment` needs one (None: it does not); a run that reached
    promote with no decision (the approval timeout passed, or a resume without `driftloop approve`) is recorded
    as rejected by ``timeout``."""
    from driftloop.config import get_settings
    from workflows.steps._registry import connect
    from workflows.steps.approval import TIMEOUT_ACTOR, lookup, record

    if environment not in get_settings().approval_environments:
        return None
    client = connect()
    decision = lookup(client, model_name, workflow)
    if decision is None:
        reason = (
            f"no `driftloop approve {workflow}` before promote: the approval timeout "
            f"({get_settings().approval_timeout}) passed, or the run was resumed without a decision"
        )
        decision = record(
            client, model_name, workflow, approve=False, by=TIMEOUT_ACTOR, reason=reason, environment=environment
        )
    return decision


def _body(contract: StepContract, flags: dict[str, Any]) -> dict[str, Any]:
    # the pipeline promotes on its own: the GitOps commit names it as the actor (a person runs `driftloop promote`)
    # and, where the environment needs one, the person who approved the run
    decision = approval_for(flags["model_name"], flags["workflow_name"])
    if decision is not None and not decision.approved:
        from workflows.gitops.promotion import current_pin, gitops_repo

        pin = current_pin(gitops_repo(), flags["model_name"], "production")
        print(f"not promoted: {flags['workflow_name']} was rejected by {decision.by} at {decision.at}: "
              f"{decision.reason}; the champion stays v{pin.model_version}", flush=True)  # fmt: skip
        return {"champion-version": pin.model_version if pin.is_pinned else "none"}
    result = promote(
        flags["model_name"],
        flags["version"],
        who="pipeline (promote step)",
        approved_by=f"{decision.by} at {decision.at}: {decision.reason}" if decision is not None else "",
    )
    return {"champion-version": result.champion_version}


def main(argv: Sequence[str] | None = None) -> None:
    run_step("promote", argv, _body)


if __name__ == "__main__":
    main()
