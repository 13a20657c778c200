"""What `make system` costs on a fresh Debian machine, measured without changing this one.

    .venv/bin/python bench/system_packages.py

A fresh machine is stood in for by a dpkg status file holding only Debian's required and essential packages
(closed over their dependencies: about the 90 packages of a minimal image); `apt-get install -s` and
`--print-uris` against it give what each way of installing would pull in and download. Then, into throwaway
folders (the machine's own lists and cache are not touched): `apt-get update`, the download of the packages, and
their unpacked size. Rows: the old script (every package, recommends excluded) and the new one (only what dpkg
lacks: a machine that cloned the repository has git), plus Debian's default (recommends included) for scale.
Install time itself (dpkg unpack + configure) needs a fresh machine; it is not measured here.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ["prometheus", "prometheus-alertmanager", "git", "cowsay"]
STATUS = Path("/var/lib/dpkg/status")


def _field(block: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*(?:\n .*)*)", block, re.M)
    return match.group(1).replace("\n", " ") if match else ""


def minimal_status(target: Path, extra: tuple[str, ...] = ()) -> int:
    """Write a status file of the required/essential packages (plus ``extra``) closed over Depends; return its size."""
    installed: dict[str, str] = {}
    provides: dict[str, str] = {}
    for block in STATUS.read_text().strip().split("\n\n"):
        if "install ok installed" in _field(block, "Status"):
            name = _field(block, "Package")
            installed[name] = block
            for provided in _field(block, "Provides").split(","):
                if provided.strip():
                    provides.setdefault(provided.strip().split(" ")[0], name)

    def depends(block: str) -> list[str]:
        found = []
        for kind in ("Pre-Depends", "Depends"):
            for group in _field(block, kind).split(","):
                for alternative in (a.strip().split(" ")[0].split(":")[0] for a in group.split("|") if a.strip()):
                    if alternative in installed or alternative in provides:
                        found.append(alternative if alternative in installed else provides[alternative])
                        break
        return found

    todo = [n for n, b in installed.items() if re.search(r"^(Priority: required|Essential: yes)", b, re.M)]
    todo += [name for name in extra if name in installed]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += depends(installed[name])
    target.write_text("\n\n".join(installed[name] for name in sorted(seen)) + "\n")
    return len(seen)


def _apt(args: list[str], status: Path, cache: Path) -> str:
    options = ["-o", f"Dir::State::status={status}", "-o", f"Dir::Cache::archives={cache}"]
    result = subprocess.run(["apt-get", *options, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"apt-get {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def plan(packages: list[str], status: Path, cache: Path, recommends: bool) -> tuple[int, float]:
    """(packages to install, MiB to download) for ``apt-get install packages`` on the stand-in machine."""
    flags = [] if recommends else ["--no-install-recommends"]
    simulated = _apt(["install", "-s", *flags, *packages], status, cache)
    uris = _apt(["install", "-qq", "-y", "--print-uris", *flags, *packages], status, cache)
    size = sum(int(line.split()[2]) for line in uris.splitlines() if line.startswith("'"))
    return sum(line.startswith("Inst ") for line in simulated.splitlines()), size / 2**20


def main() -> int:
    if os.geteuid() != 0:
        raise SystemExit("run as root: apt-get needs its lock even for simulations into throwaway folders")
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="driftloop-apt-") as tmp:
        folder = Path(tmp)
        cache = folder / "archives"
        (cache / "partial").mkdir(parents=True)
        bare, with_git = folder / "status-bare", folder / "status-git"
        base = minimal_status(bare)
        minimal_status(with_git, ("git",))
        rows.append(("stand-in fresh machine", f"{base} packages installed (required + essential)"))
        for label, packages, status, recommends in [
            ("Debian default (recommends), all 4", PACKAGES, bare, True),
            ("old script: all 4, --no-install-recommends", PACKAGES, bare, False),
            ("new script, machine without git", PACKAGES, bare, False),
            ("new script, a clone's machine (git present)", [p for p in PACKAGES if p != "git"], with_git, False),
        ]:
            count, mib = plan(packages, status, cache, recommends)
            rows.append((label, f"{count} packages, {mib:.1f} MiB to download"))
        lists = folder / "lists"
        (lists / "partial").mkdir(parents=True)
        start = time.perf_counter()
        subprocess.run(["apt-get", "update", "-qq", "-o", f"Dir::State::Lists={lists}"], check=True,
                       capture_output=True)  # fmt: skip
        size = sum(path.stat().st_size for path in lists.iterdir() if path.is_file()) / 2**20
        rows.append(
            ("apt-get update (skipped when lists are fresh)", f"{time.perf_counter() - start:.1f} s, {size:.0f} MiB")
        )
        wanted = [p for p in PACKAGES if p != "git"]
        start = time.perf_counter()
        _apt(["install", "-qq", "-y", "-d", "--no-install-recommends", *wanted], with_git, cache)
        debs = sorted(cache.glob("*.deb"))
        rows.append((f"download {len(debs)} packages (new script)", f"{time.perf_counter() - start:.1f} s"))
        root = folder / "root"
        root.mkdir()
        start = time.perf_counter()
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        files = [p for p in root.rglob("*") if p.is_file()]
        unpacked = sum(p.stat().st_size for p in files) / 2**20
        manpages = sum(1 for p in files if "/usr/share/man/" in str(p))
        rows.append(("unpack them (dpkg-deb -x, no fsync, no scripts)",
                     f"{time.perf_counter() - start:.1f} s, {unpacked:.0f} MiB in {len(files)} files "
                     f"({manpages} man pages)"))  # fmt: skip
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    width = max(len(label) for label, _ in rows)
    print(f"make system on a fresh machine (load average {load}; {os.cpu_count()} CPUs)")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
