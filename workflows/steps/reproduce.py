"""`driftloop reproduce MODEL VERSION`: re-run a registered version's training and compare the metrics.

It takes the version's recorded training set (an artifact of its run, checked against the data snapshot id), its
parameters (epochs, seed) and its code: the current checkout when the recorded commit is HEAD (or unknown), else
that commit exported read-only with ``git archive``. On CPU the per-epoch metrics must match exactly.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import click

__all__ = ["ReproduceResult", "fit_history", "reproduce", "reproduce_command"]

TOLERANCE = 1e-9
_COMPARED = ("train_loss", "val_loss", "val_roc_auc")


@dataclass
class ReproduceResult:
    model_name: str
    version: str
    code: str  # how the code was obtained
    rows: list[tuple[str, float, float]] = field(default_factory=list)  # (metric@epoch, recorded, reproduced)

    @property
    def matches(self) -> bool:
        return bool(self.rows) and all(math.isclose(a, b, rel_tol=0, abs_tol=TOLERANCE) for _, a, b in self.rows)


def fit_history(training_set: Path, epochs: int, seed: int) -> list[dict[str, float]]:
    """Train exactly as the ``train`` step does, without MLflow; the per-epoch history."""
    from workflows.steps._dataset import read_training_set
    from workflows.steps._tabular import pick_device
    from workflows.steps._training import fit

    return fit(read_training_set(training_set), epochs, seed, pick_device()).history


def _git(*args: str) -> str | None:
    from driftloop.config import repo_root

    try:
        done = subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _history_at_commit(
    commit: str, training_set: Path, epochs: int, seed: int, current_code: bool = False, checkout_dirty: bool = False
) -> tuple[list[dict[str, float]], str]:
    """Run the fit from the recorded commit's code (exported with `git archive`, never checked out).

    The checkout itself stands in for the commit only when it is that commit and clean (`checkout_dirty` False);
    a version trained from uncommitted changes has been checked to match them before this is called.
    """
    from driftloop.config import get_settings

    if current_code:
        return fit_history(training_set, epochs, seed), "current checkout (--current-code)"
    head = _git("rev-parse", "HEAD")
    if (
        commit in {"", "unknown", "none"}
        or (head and head.startswith(commit) and not checkout_dirty)
        or _git("cat-file", "-e", commit) is None
    ):
        label = (
            "current checkout"
            if head and head.startswith(commit)
            else f"current checkout (commit {commit!r} unavailable)"
        )
        return fit_history(training_set, epochs, seed), label
    target = get_settings().home / "reproduce" / commit
    if not (target / "workflows").exists():
        target.mkdir(parents=True, exist_ok=True)
        from driftloop.config import repo_root

        archive = subprocess.run(["git", "archive", commit], cwd=repo_root(), capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    code = (
        "import json, sys; from pathlib import Path; from workflows.steps.reproduce import fit_history; "
        "print(json.dumps(fit_history(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(training_set), str(epochs), str(seed)],
        cwd=target,
        env={**os.environ, "PYTHONPATH": str(target)},  # the archived packages shadow the installed checkout
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        from driftloop.errors import DriftloopError

        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise DriftloopError(
            f"training with the code of commit {commit} failed:\n{tail}",
            hint="that commit may predate the training code or need other packages; "
            "`driftloop reproduce MODEL VERSION --current-code` re-trains with this checkout instead",
        )
    return json.loads(done.stdout.strip().splitlines()[-1]), f"commit {commit} (git archive)"


def reproduce(model_name: str, version: str, current_code: bool = False) -> ReproduceResult:
    """Re-train ``model_name`` v``version`` from its recorded snapshot, parameters and commit; compare metrics."""
    from workflows.steps._registry import connect, download_artifact, get_version
    from workflows.steps.train import TRAINING_SET_ARTIFACT, _verify_snapshot

    client = connect()
    model_version = get_version(client, model_name, version)
    run = client.get_run(model_version.run_id)
    params, tags = run.data.params, model_version.tags or {}
    with tempfile.TemporaryDirectory() as tmp:
        training_set = download_artifact(client, run.info.run_id, TRAINING_SET_ARTIFACT, Path(tmp))
        from workflows.steps._dataset import read_training_set

        data = read_training_set(training_set)
        _verify_snapshot(data.frame, data.schema, tags.get("data_snapshot_id") or params["snapshot_id"])
        commit = tags.get("git_commit") or params.get("git_commit", "unknown")
        from driftloop.config import repo_root
        from workflows.steps._lineage import check_reproducible, git_state

        state = git_state(repo_root())
        if not current_code:
            check_reproducible(tags, state)  # trained from uncommitted changes: only from exactly those
        epochs, seed = int(params["epochs"]), int(params["seed"])
        checkout_differs = state.dirty and tags.get("git_dirty") != "true"
        history, code = _history_at_commit(commit, training_set, epochs, seed, current_code, checkout_differs)
    result = ReproduceResult(model_name, str(version), code)
    for key in _COMPARED:
        recorded = {int(m.step): m.value for m in client.get_metric_history(run.info.run_id, key)}
        for row in history:
            epoch = int(row["epoch"])
            if epoch in recorded:
                result.rows.append((f"{key}@{epoch}", recorded[epoch], row[key]))
    return result


@click.command("reproduce")
@click.argument("model_name")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--current-code", is_flag=True, help="Train with this checkout instead of the recorded commit.")
@click.pass_context
def reproduce_command(ctx: click.Context, model_name: str, version: str, as_json: bool, current_code: bool) -> None:
    """Re-run MODEL_NAME version VERSION's training from its recorded commit, data snapshot and parameters, and
    report whether every per-epoch metric matches (exit code 1 when not).

    \b
    Examples:
      driftloop reproduce credit-risk 3
      driftloop reproduce credit-risk 3 --json
      driftloop reproduce credit-risk 3 --current-code   # this checkout, not the recorded commit
    Needs MLflow (DRIFTLOOP_MLFLOW_URI). On CPU the metrics match exactly; on GPU small differences can appear.
    """
    result = reproduce(model_name, version, current_code)
    if as_json:
        rows = [{"metric": k, "recorded": a, "reproduced": b} for k, a, b in result.rows]
        click.echo(json.dumps({"matches": result.matches, "code": result.code, "metrics": rows}, indent=2))
    else:
        click.echo(f"{model_name} v{version}: code from {result.code}")
        for key, recorded, reproduced in result.rows:
            mark = "ok" if math.isclose(recorded, reproduced, rel_tol=0, abs_tol=TOLERANCE) else "DIFFERS"
            click.echo(f"  {key:18} recorded {recorded:.10f}  reproduced {reproduced:.10f}  {mark}")
        click.echo("metrics match" if result.matches else "metrics DO NOT match")
    ctx.exit(0 if result.matches else 1)
