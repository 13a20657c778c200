"""One model server of the deployer: MLflow's own scoring app (FastAPI) on exactly the verified model directory.

``mlflow models serve`` would start a CLI process that starts uvicorn (two interpreter starts, and it resolves the
model URI itself); this serves the directory ``verified_download`` checked, in one process, and exits when told.

    python -m monitors.deployer._serve --model-dir DIR --host 127.0.0.1 --port 41001
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    import mlflow.pyfunc
    import uvicorn
    from mlflow.pyfunc.scoring_server import init

    app = init(mlflow.pyfunc.load_model(args.model_dir))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
