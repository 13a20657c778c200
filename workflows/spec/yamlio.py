"""Strict YAML in, deterministic YAML out.

Reading is strict because PyYAML silently keeps the last of two duplicate keys (one of Argo's own examples
has two ``annotations:`` blocks): we report duplicates instead of losing half of the user's intent.
Writing sorts keys and never wraps lines, so a compile is byte-for-byte reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from driftloop.errors import LintIssue

__all__ = ["Document", "dump_documents", "load_documents", "load_file"]

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Document:
    """One YAML document of a file; `label` names it in messages (``file.yaml`` or ``file.yaml#2``)."""

    label: str
    data: Any
    issues: list[LintIssue] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "")) if isinstance(self.data, dict) else ""

    @property
    def name(self) -> str:
        metadata = self.data.get("metadata") if isinstance(self.data, dict) else None
        if not isinstance(metadata, dict):
            return ""
        return str(metadata.get("name") or metadata.get("generateName") or "")


class _StrictLoader(_BaseLoader):
    """A safe loader that records duplicate mapping keys (with their line) instead of dropping them."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable key: let the base class report it
                continue
            if duplicate and key != "<<":
                self.duplicates.append((str(key), key_node.start_mark.line + 1))
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping)


def load_documents(text: str, source: str) -> list[Document]:
    """Parse every document of `text`; a syntax error becomes one document carrying the issue."""
    loader = _StrictLoader(text)
    documents: list[Document] = []
    try:
        while loader.check_data():
            data = loader.get_data()
            documents.append(Document(label=source, data=data))
            for key, line in loader.duplicates:
                documents[-1].issues.append(
                    LintIssue(source, f"line {line}", f"duplicate key '{key}' (YAML keeps only the last one)", "yaml")
                )
            loader.duplicates.clear()
    except yaml.YAMLError as exc:
        documents.append(Document(label=source, data=None, issues=[LintIssue(source, "yaml", str(exc), "yaml")]))
    finally:
        loader.dispose()
    documents = [d for d in documents if d.data is not None or d.issues]
    if len(documents) > 1:
        for number, document in enumerate(documents, start=1):
            document.label = f"{source}#{number}"
            document.issues = [LintIssue(document.label, i.path, i.message, i.check) for i in document.issues]
    return documents


def load_file(path: Path) -> list[Document]:
    """Read and parse one file; unreadable files become a document carrying the issue."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Document(label=str(path), data=None, issues=[LintIssue(str(path), "file", str(exc), "yaml")])]
    return load_documents(text, str(path))


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_documents(documents: list[Any], header: str = "") -> str:
    """Serialise documents with sorted keys and no line wrapping: the same input gives the same bytes."""
    body = yaml.dump_all(
        documents, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=10_000
    )
    return header + body
