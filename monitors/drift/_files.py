"""The drift package's on-disk conventions, importable without pandas (the CLI checks them before importing it)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["PROFILE_FILE", "TEXT_SUFFIXES", "is_profile_dir"]

PROFILE_FILE = "profile.json"  # a saved ReferenceProfile directory holds this document
TEXT_SUFFIXES = (".csv", ".tsv")  # read as delimited text; anything else is parquet (a file or a directory)


def is_profile_dir(path: str | Path) -> bool:
    return (Path(path) / PROFILE_FILE).is_file()
