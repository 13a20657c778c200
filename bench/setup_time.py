"""Set-up time of a fresh clone: the locked venv against the unlocked install it replaced, and a no-change re-run.

    .venv/bin/python bench/setup_time.py            # locked fresh venv + no-change `make venv system`
    .venv/bin/python bench/setup_time.py --peer     # also the old way: `pip install -e '.[dev]'` (resolves; CUDA torch)

Each case runs in a fresh `git clone` of this checkout under a temporary folder (the Debian packages are whatever
this machine has: on a machine that lacks them, `make system` adds its apt time to the first row). Wall and CPU
time (user+sys of the children) are printed with the load average, because the machines are shared: CPU seconds
are the figure that noise moves least.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(command: list[str] | str, cwd: Path, shell: bool = False) -> tuple[float, float]:
    """(wall s, CPU s of the children) for one command; raises when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, shell=shell, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"error: {command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _clone(into: Path) -> Path:
    target = into / "main"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    shared = ROOT.parent / "shared"
    if shared.exists() and not (into / "shared").exists():
        (into / "shared").symlink_to(shared)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", action="store_true", help="also time the unlocked install (slow: ~7 GB)")
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="driftloop-setup-") as tmp:
        clone = _clone(Path(tmp))
        rows.append(("fresh clone: make venv system (locked)", *_timed(["make", "-s", "venv", "system"], clone)))
        rows.append(("same clone, nothing changed: make venv system", *_timed(["make", "-s", "venv", "system"], clone)))
        if args.peer:
            peer = Path(tmp) / "peer-venv"
            subprocess.run(["python3.11", "-m", "venv", str(peer)], check=True)
            command = f"{peer}/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'"
            rows.append(("peer: pip install -e '.[dev]' (unlocked, resolves)", *_timed(command, clone, shell=True)))
        sizes = {"locked venv": clone / ".venv"}
        if args.peer:
            sizes["peer venv"] = Path(tmp) / "peer-venv"
        disk = {name: _du(path) for name, path in sizes.items()}
        shutil.rmtree(clone / ".venv", ignore_errors=True)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    print("| case | wall s | CPU s |")
    print("|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")
    for name, size in disk.items():
        print(f"{name}: {size / 2**30:.1f} GiB")
    return 0


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with_path = Path(dirpath) / name
            if not with_path.is_symlink():
                total += with_path.stat().st_size
    return total


if __name__ == "__main__":
    sys.exit(main())
