"""`make demo`: the most complete loop that exists so far, narrated step by step.

Each stage is a real command a user could type; the demo only strings them together and stops at the first
failure with that command's own error.
"""

from __future__ import annotations

import subprocess
import sys
import time

__all__ = ["main"]

STAGES: list[tuple[str, list[str]]] = [
    ("compile the Hera pipelines into validated Argo YAML", ["compile"]),
]


def run_stage(title: str, args: list[str]) -> None:
    print(f"\n== {title}\n$ driftloop {' '.join(args)}", flush=True)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "driftloop", *args], check=False)
    if proc.returncode != 0:
        print(f"demo stopped: `driftloop {' '.join(args)}` exited {proc.returncode}", file=sys.stderr)
        sys.exit(proc.returncode)
    print(f"   ({time.monotonic() - started:.1f} s)", flush=True)


def main() -> None:
    for title, args in STAGES:
        run_stage(title, args)
    print("\ndemo finished.")


if __name__ == "__main__":
    main()
