"""The serving pod's digest check: download the pinned model, recompute its sha256, refuse on a mismatch.

Runs as the Rollout's init container (``manifests/serving/base/rollout.yaml``) and in ``driftloop deployer``
before a new version is started. The model server then serves exactly the directory that was checked, never a
second download. Exit status 3 (and nothing left in ``--dest``) when the model must not be served.

    python -m workflows.gitops.verify --pin /etc/driftloop/pin/model-pin.yaml --dest /models/current
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from driftloop.config import get_settings
from driftloop.errors import ConflictError, DriftloopError, NotFoundError
from workflows.gitops.digest import digest_lines, model_digest
from workflows.gitops.pin import ModelPin

__all__ = ["main", "verified_download"]

REFUSED = 3


def verified_download(pin: ModelPin, dest: Path) -> Path:
    """Download ``pin.model_uri`` into ``dest`` (replaced) and return it, or raise when its digest differs."""
    import mlflow

    if not pin.is_pinned:
        raise NotFoundError(
            f"no model is pinned for {pin.environment}", hint="promote one: `driftloop promote MODEL --version V`"
        )
    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix=".verify-", dir=dest.parent if dest.parent.exists() else None) as tmp:
        # models:/ is resolved through MLflow's *global* registry URI (3.17 ignores download_artifacts' registry_uri
        # there), whose default is ./mlflow.db in the working directory: point it at DRIFTLOOP_MLFLOW_URI first
        uri = get_settings().mlflow_uri
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=pin.model_uri, dst_path=tmp))
        actual = model_digest(local)
        if actual != pin.sha256:
            files = "".join(digest_lines(local)[:20])
            raise ConflictError(
                f"refusing to serve {pin.model_uri}: its sha256 is {actual}, the pin says {pin.sha256}. "
                f"Files as downloaded:\n{files}",
                hint="the registry artifact changed after promotion; re-register from the run and promote again",
            )
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(local), dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pin", type=Path, required=True, help="the model-pin.yaml to honour")
    parser.add_argument("--dest", type=Path, required=True, help="where the verified model directory goes")
    args = parser.parse_args(argv)
    try:
        pin = ModelPin.from_yaml(args.pin.read_text(), str(args.pin))
        verified_download(pin, args.dest)
    except (DriftloopError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return REFUSED
    print(f"verified {pin.model_uri} sha256 {pin.sha256} -> {args.dest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
