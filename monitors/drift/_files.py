"""File names of the drift package's on-disk formats, importable without pandas (the CLI checks them early)."""

from __future__ import annotations

__all__ = ["PROFILE_FILE"]

PROFILE_FILE = "profile.json"  # a saved ReferenceProfile directory holds this document
