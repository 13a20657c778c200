"""The model digest: one sha256 over an MLflow model directory, defined so anyone can recompute it.

Definition: inside the model directory, take every regular file (symlinks and directories excluded), name it by
its path relative to the directory with a leading ``./`` (as ``find .`` prints it), sort those names bytewise,
write one line ``<sha256 of the file's bytes>  <name>\\n`` per file, and hash that text with sha256. It is exactly

    cd MODEL_DIR && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum

(for names without blanks or newlines, which MLflow never writes).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["digest_lines", "model_digest"]

_CHUNK = 1 << 20


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def digest_lines(directory: Path) -> list[str]:
    """The ``sha256sum`` lines the digest is taken over, in order (useful to see *which* file differs)."""
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a model directory")
    names = sorted(
        (("./" + path.relative_to(root).as_posix()).encode("utf-8"), path)
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink()
    )
    return [f"{_file_sha256(path)}  {name.decode('utf-8')}\n" for name, path in names]


def model_digest(directory: Path) -> str:
    """sha256 (hex) of the model directory, per the definition in this module's docstring."""
    return hashlib.sha256("".join(digest_lines(directory)).encode("utf-8")).hexdigest()
