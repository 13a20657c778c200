"""``{{ name }}`` and ``{{=expr}}`` substitution, as Argo applies it to templates.

Argo replaces tags in a template's text in passes (workflow, then inputs, then task outputs...), so a tag
that is not known yet must survive a non-strict pass untouched; a strict pass (the last one) raises
:class:`UnresolvedReference` naming it. ``{{=...}}`` holds an expr-lang expression, printed like Go's ``%v``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from driftloop.errors import EngineError
from workflows.engine.expressions import ExpressionError, ExpressionSyntaxError, evaluate_traced, nest
from workflows.engine.expressions._gofmt import go_json, go_string

__all__ = ["UnresolvedReference", "find_tags", "substitute", "substitute_obj", "to_text"]

# Set only once exit handlers run; an expression naming them must wait rather than see nil.
_EXIT_ONLY = ("workflow.status", "workflow.failures")


class UnresolvedReference(EngineError):
    """A ``{{...}}`` reference that the scope cannot resolve; ``name`` is what was referenced."""

    def __init__(self, name: str, text: str = "") -> None:
        where = f" in {text!r}" if text and text != "{{" + name + "}}" else ""
        super().__init__(
            f"unresolved reference {{{{{name}}}}}{where}",
            hint="check the variable's spelling against Argo's variables (docs/variables.md) and that the step, task "
            "or parameter it names exists and has run before this point",
        )
        self.name = name


def to_text(value: Any) -> str:
    """How a scope value reads inside text: strings verbatim, objects and lists as JSON (like Argo's items)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return go_json(value)
    return go_string(value) if value is not None else ""


def _expression_end(text: str, start: int) -> int:
    """Index of the ``}}`` closing an expression that starts at ``start``; quotes and map braces may nest."""
    depth, i = 0, start
    while i < len(text):
        char = text[i]
        if char in "'\"`":
            i += 1
            while i < len(text) and text[i] != char:
                i += 2 if text[i] == "\\" and char != "`" else 1
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0 and text.startswith("}}", i):
                return i
            depth = max(depth - 1, 0)
        i += 1
    return -1


def find_tags(text: str) -> list[tuple[int, int, str]]:
    """Every ``{{...}}`` tag as (start, end, inner text stripped); expressions keep their leading ``=``."""
    tags: list[tuple[int, int, str]] = []
    pos = 0
    while (start := text.find("{{", pos)) >= 0:
        inner_start = start + 2
        stripped = text[inner_start:].lstrip()
        end = -1
        if stripped.startswith("="):  # an unbalanced quote falls back to the first "}}", so it fails loudly
            end = _expression_end(text, inner_start + (len(text) - inner_start - len(stripped)) + 1)
        if end < 0:
            end = text.find("}}", inner_start)
        if end < 0:
            break
        tags.append((start, end + 2, text[inner_start:end].strip()))
        pos = end + 2
    return tags


class _Substituter:
    """One substitution pass over one scope; nests the scope once, only if an expression needs it."""

    def __init__(self, scope: Mapping[str, Any], strict: bool) -> None:
        self.scope = scope
        self.strict = strict
        self._env: dict | None = None

    @property
    def env(self) -> dict:
        if self._env is None:
            self._env = nest(self.scope)
        return self._env

    def text(self, text: str) -> str:
        if "{{" not in text:
            return text
        out: list[str] = []
        pos = 0
        for start, end, tag in find_tags(text):
            out.append(text[pos:start])
            replacement = self._expression(tag[1:].strip(), text) if tag.startswith("=") else self._name(tag, text)
            out.append(text[start:end] if replacement is None else replacement)
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def _name(self, name: str, text: str) -> str | None:
        if name in self.scope:
            return to_text(self.scope[name])
        if self.strict:
            raise UnresolvedReference(name, text)
        return None

    def _expression(self, expression: str, text: str) -> str | None:
        """The expression's text, or None to leave the tag for a later pass.

        A failure or a nil result caused by a reference that is absent, nil or still unsubstituted means
        "not known yet": kept in a lenient pass, UnresolvedReference in a strict one. Any other failure is a
        real error (a malformed expression, asInt('x')...) and is raised in both.
        """
        if not self.strict and any(
            name not in self.scope and re.search(rf"\b{re.escape(name)}\b", expression) for name in _EXIT_ONLY
        ):
            return None  # like Argo: exit-handler variables stay for the pass that knows them
        try:
            result, missing = evaluate_traced(expression, self.env)
        except ExpressionSyntaxError:
            raise
        except ExpressionError as exc:
            if not exc.missing:
                raise
            result, missing = None, list(exc.missing)
        if result is not None:
            return go_string(result)
        if self.strict:
            if missing:
                raise UnresolvedReference(missing[0], text)
            raise ExpressionError(expression, "the expression evaluated to nil")
        return None

    def obj(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):  # keys too: Argo templates the whole JSON text of an object
            return {self.text(key) if isinstance(key, str) else key: self.obj(value) for key, value in obj.items()}
        if isinstance(obj, list):
            return [self.obj(item) for item in obj]
        return obj


def substitute(text: str, scope: Mapping[str, Any], *, strict: bool = False) -> str:
    """Replace ``{{ name }}`` (whitespace tolerant) and ``{{=expr}}`` tags of ``text`` from ``scope``.

    ``scope`` keys are full dotted names (``inputs.parameters.x``, ``item``, ``item.key``...). With
    ``strict=False`` unknown tags stay as they are; with ``strict=True`` they raise UnresolvedReference.
    A malformed expression always raises ExpressionError.
    """
    return _Substituter(scope, strict).text(text)


def substitute_obj(obj: Any, scope: Mapping[str, Any], *, strict: bool = False) -> Any:
    """:func:`substitute` over every string (values and keys) of a JSON-like object; returns a new object."""
    return _Substituter(scope, strict).obj(obj)
