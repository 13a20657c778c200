"""``driftloop feedback``: post a file of outcomes to the receiver's ``POST /feedback``, in idempotent batches."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import click

__all__ = ["BATCH_ROWS", "feedback_command", "post_outcomes"]

BATCH_ROWS = 2000  # ~100 bytes a row: well under the receiver's 1 MiB body limit
_RETRIES = 5


def post_outcomes(url: str, token: str, items: list[dict[str, Any]], *, batch_id: str) -> dict[str, int]:
    """Post ``items`` in batches, each with an ``Idempotency-Key`` derived from ``batch_id`` and its position, so a
    batch re-sent after a lost answer (a retry, or the whole command run again) counts nothing twice. Returns the
    summed counts; DriftloopError when the receiver refuses or stays unreachable."""
    import httpx

    from driftloop.errors import DataContractError, ServiceUnavailableError

    totals: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(timeout=30) as client:
        for start in range(0, len(items), BATCH_ROWS):
            body = json.dumps(items[start : start + BATCH_ROWS]).encode()
            key = f"{batch_id}-{start // BATCH_ROWS}"
            for attempt in range(_RETRIES):
                try:
                    answer = client.post(f"{url}/feedback", content=body, headers={**headers, "Idempotency-Key": key})
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                else:
                    if answer.status_code == 200:
                        for name, n in answer.json()["counts"].items():
                            totals[name] = totals.get(name, 0) + int(n)
                        break
                    error = f"HTTP {answer.status_code}: {answer.text[:300]}"
                    if answer.status_code < 500:
                        raise DataContractError(f"the receiver refused the outcomes ({error})")
                time.sleep(min(8.0, 0.5 * 2**attempt))
            else:
                raise ServiceUnavailableError(
                    f"cannot post outcomes to {url}/feedback ({error})",
                    hint="start the receiver (`driftloop trigger serve` or `driftloop stack up`), or set "
                    "DRIFTLOOP_TRIGGER_URL",
                )
    return totals


def _read(path: Path) -> Any:
    import pandas as pd

    from driftloop.errors import NotFoundError

    if not path.is_file():
        raise NotFoundError(f"no file {path}", hint="give a parquet, CSV or JSON file of outcomes")
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix in {".json", ".jsonl"}:
        return pd.read_json(path, lines=path.suffix == ".jsonl")
    return pd.read_parquet(path)


@click.command("feedback")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Outcomes: parquet (or .csv / .json / .jsonl) with request_id, outcome, observed_at [, row].")  # fmt: skip
@click.option("--url", default=None, help="The receiver [default: DRIFTLOOP_TRIGGER_URL].")
def feedback_command(path: Path, url: str | None) -> None:
    """Send ground-truth outcomes for served predictions to the receiver's POST /feedback.

    Each row labels the captured request it names (X-Request-ID; `row` is the record's position in a
    batch request, default 0) with outcome 0 or 1, observed at observed_at (ISO 8601 or unix seconds).
    Batches carry an Idempotency-Key derived from the file's content: running the command twice on the
    same file counts nothing twice. Prints the counts: accepted, duplicate, late, unknown, malformed.

    \b
    Examples:
      driftloop feedback --file outcomes.parquet
      driftloop feedback --file outcomes.csv --url http://127.0.0.1:9095
    """
    from driftloop.config import get_settings
    from driftloop.errors import DataContractError
    from monitors.feedback._parse import BodyError, rows_from_frame
    from monitors.receiver._auth import resolve_token

    settings = get_settings()
    try:
        items = rows_from_frame(_read(path))
    except BodyError as exc:
        raise DataContractError(f"{path}: {exc}", hint="columns: request_id, outcome (0/1), observed_at") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:24]
    token = resolve_token(settings, create=False)
    totals = post_outcomes((url or settings.trigger_url).rstrip("/"), token, items, batch_id=f"file-{digest}")
    click.echo(f"{len(items)} outcome(s) sent: " + ", ".join(f"{n} {name}" for name, n in totals.items()))
