"""A POSIX-sh stand-in for the ``argoproj/argosay:v2`` image entrypoint (and ``python`` -> ``python3``).

Argo's examples use argosay's tiny command language (echo/cat/sleep/exit/assert_contains/sh); a shell script
starts in about a millisecond, where a Python stand-in would cost tens of milliseconds per node.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["ARGOSAY_V2", "host_python", "install_shims"]

ARGOSAY_V2 = r"""#!/bin/sh
# argosay v2 stand-in (driftloop embedded engine)
[ $# -eq 0 ] && { echo "hello argo"; exit 0; }
cmd="$1"; shift
case "$cmd" in
  echo)
    if [ $# -eq 0 ]; then echo "hello argo"
    elif [ $# -eq 1 ]; then printf '%s\n' "$1"
    else mkdir -p "$(dirname "$2")" && printf '%s\n' "$1" > "$2"; fi ;;
  cat) cat "$@" ;;
  sleep) sleep "$1" ;;
  exit) exit "${1:-0}" ;;
  assert_contains) grep -q -- "$2" "$1" || { echo "$1 does not contain $2" >&2; exit 1; } ;;
  sh) exec sh "$@" ;;
  *) echo "argosay: unknown command $cmd" >&2; exit 1 ;;
esac
"""


def host_python() -> str:
    """The base interpreter behind this venv (not pyenv's slow shell shim), else python3 on PATH."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    return str(base) if base.exists() else (shutil.which("python3") or "/usr/bin/python3")


def install_shims(bin_dir: Path) -> Path:
    """Write ``argosay`` and a ``python`` -> host ``python3`` shim into ``bin_dir`` (idempotent); return it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    scripts = {"argosay": ARGOSAY_V2}
    python3 = host_python()
    # -S: a python:* image has no third-party packages, so the host's site-packages (and their .pth start-up
    # hooks, ~200 ms here) are skipped; the standard library is all such steps can import in the image too.
    scripts["python"] = f'#!/bin/sh\nexec {python3} -S "$@"\n'
    scripts["python3"] = scripts["python"]
    for name, text in scripts.items():
        target = bin_dir / name
        if not target.exists() or target.read_text() != text:
            temporary = target.with_suffix(".tmp")
            temporary.write_text(text)
            os.chmod(temporary, 0o755)
            temporary.replace(target)
    return bin_dir
