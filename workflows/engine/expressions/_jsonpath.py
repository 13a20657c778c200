"""``jsonpath(json, path)``: Argo parses the JSON text, then queries it (evilmonkeyinc/jsonpath semantics).

A definite path (``$.a.b[0]``) yields one value; a path with a wildcard, slice, union, filter or deep scan
yields an array. Slices exclude their end. Filters ``[?(...)]`` compare ``@``/``$`` paths with literals using
``== != < <= > >= =~`` and combine them with ``&& || !`` and parentheses. Numbers are float64, as in Go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from workflows.engine.expressions._values import is_number, values_equal

__all__ = ["jsonpath", "query"]

_Step = Callable[[list[Any], Any], list[Any]]


class JsonPathError(ValueError):
    """A malformed path or a failed lookup; the message names the path."""


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [node[key] for key in sorted(node)]
    return list(node) if isinstance(node, list) else []


def _descendants(node: Any) -> list[Any]:
    out = [node]
    for child in _children(node):
        out.extend(_descendants(child))
    return out


def _key_step(key: str, strict: bool) -> _Step:
    def step(nodes: list[Any], root: Any) -> list[Any]:
        out = []
        for node in nodes:
            if isinstance(node, dict) and key in node:
                out.append(node[key])
            elif strict:
                raise JsonPathError(f"key {key!r} not found")
        return out

    return step


def _index_step(indexes: list[int], strict: bool) -> _Step:
    def step(nodes: list[Any], root: Any) -> list[Any]:
        out = []
        for node in nodes:
            for index in indexes:
                if isinstance(node, list) and -len(node) <= index < len(node):
                    out.append(node[index])
                elif strict:
                    raise JsonPathError(f"index {index} out of range")
        return out

    return step


def _slice_step(start: int | None, stop: int | None, stride: int | None) -> _Step:
    def step(nodes: list[Any], root: Any) -> list[Any]:
        out = []
        for node in nodes:
            if isinstance(node, list):
                out.extend(node[slice(start, stop, stride)])
        return out

    return step


def _filter_step(condition: Callable[[Any, Any], bool]) -> _Step:
    def step(nodes: list[Any], root: Any) -> list[Any]:
        return [child for node in nodes for child in _children(node) if condition(child, root)]

    return step


def _deep_step(rest: _Step) -> _Step:
    """``..name`` / ``..*``: apply ``rest`` to every node below (and including) the current ones."""
    return lambda nodes, root: rest([d for node in nodes for d in _descendants(node)], root)


_SEGMENT = re.compile(
    r"""\.\.(?P<deep>[A-Za-z_$][\w$-]*|\*)?
    |\.(?P<key>[A-Za-z_$][\w$-]*|\*)
    |\[\s*\?\((?P<filter>.*?)\)\s*\]
    |\[(?P<bracket>[^\]]*)\]""",
    re.VERBOSE,
)


def _bracket(body: str) -> tuple[_Step, bool]:
    """A ``[...]`` segment and whether it keeps the path definite."""
    body = body.strip()
    if body == "*":
        return (lambda nodes, root: [c for node in nodes for c in _children(node)]), False
    if ":" in body:
        parts = [part.strip() for part in body.split(":")]
        if len(parts) > 3 or not all(re.fullmatch(r"-?\d*", part) for part in parts):
            raise JsonPathError(f"invalid slice [{body}]")
        start, stop, stride = (int(p) if p else None for p in [*parts, ""][:3])
        if stride == 0:
            raise JsonPathError(f"slice step cannot be zero in [{body}]")
        return _slice_step(start, stop, stride), False
    names = [part.strip() for part in body.split(",")]
    if all(re.fullmatch(r"-?\d+", name) for name in names):
        return _index_step([int(name) for name in names], strict=len(names) == 1), len(names) == 1
    if all(len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"" for name in names):
        keys = [name[1:-1] for name in names]
        if len(keys) == 1:
            return _key_step(keys[0], strict=True), True
        return (lambda nodes, root: [n[k] for n in nodes for k in keys if isinstance(n, dict) and k in n]), False
    raise JsonPathError(f"invalid subscript [{body}]")


def _compile(path: str) -> tuple[list[_Step], bool]:
    text = path.strip()
    if not text.startswith("$"):
        raise JsonPathError("a path starts with '$'")
    steps: list[_Step] = []
    definite, pos = True, 1
    while pos < len(text):
        match = _SEGMENT.match(text, pos)
        if match is None:
            raise JsonPathError(f"unexpected {text[pos:]!r}")
        pos = match.end()
        if match.group("filter") is not None:
            steps.append(_filter_step(_compile_filter(match.group("filter"))))
            definite = False
        elif match.group("bracket") is not None:
            step, keeps = _bracket(match.group("bracket"))
            steps.append(step)
            definite = definite and keeps
        elif match.group("key") is not None:
            key = match.group("key")
            steps.append(_bracket("*")[0] if key == "*" else _key_step(key, strict=definite))
            definite = definite and key != "*"
        else:
            deep = match.group("deep")
            rest: _Step = _bracket("*")[0] if deep in (None, "*") else _key_step(deep, strict=False)
            steps.append(_deep_step(rest))
            definite = False
    return steps, definite


def query(path: str, document: Any) -> Any:
    """Evaluate ``path`` on an already-parsed document."""
    try:
        steps, definite = _compile(path)
        nodes = [document]
        for step in steps:
            nodes = step(nodes, document)
    except JsonPathError as exc:
        raise JsonPathError(f"jsonpath {path!r}: {exc}") from None
    if definite:
        return nodes[0] if nodes else None
    return nodes


def jsonpath(text: str, path: str) -> Any:
    """Argo's ``jsonpath(jsonString, path)``."""
    if not isinstance(text, str):
        raise JsonPathError(f"jsonpath() needs a JSON string, not {type(text).__name__}")
    try:
        document = json.loads(text, parse_int=float)
    except json.JSONDecodeError as exc:
        raise JsonPathError(f"jsonpath(): the input is not JSON ({exc})") from None
    return query(path, document)


# --- filter expressions -----------------------------------------------------------------------------------------

_FILTER_TOKEN = re.compile(
    r"""\s*(?:(?P<path>[@$](?:\.[A-Za-z_$][\w$-]*|\[[^\]]*\])*)
    |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    |(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    |(?P<regex>/(?:[^/\\]|\\.)*/[a-z]*)
    |(?P<word>true|false|null)
    |(?P<op>==|!=|<=|>=|=~|&&|\|\||[<>!()]))""",
    re.VERBOSE,
)


def _compile_filter(text: str) -> Callable[[Any, Any], bool]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text.rstrip()):
        match = _FILTER_TOKEN.match(text, pos)
        if match is None:
            raise JsonPathError(f"cannot parse filter ({text}) at {text[pos:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return _FilterParser(text, tokens).parse()


class _FilterParser:
    def __init__(self, text: str, tokens: list[tuple[str, str]]) -> None:
        self.text, self.tokens, self.pos = text, tokens, 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def parse(self) -> Callable[[Any, Any], bool]:
        condition = self._logic()
        if self.pos != len(self.tokens):
            raise JsonPathError(f"unexpected {self._peek()!r} in filter ({self.text})")
        return condition

    def _logic(self, op: str = "||") -> Callable[[Any, Any], bool]:
        """A chain of ``op``; the operands of ``||`` are ``&&`` chains."""
        operand = (lambda: self._logic("&&")) if op == "||" else self._not
        left = operand()
        while self._peek() == op:
            self.pos += 1
            left = _join(op, left, operand())
        return left

    def _not(self) -> Callable[[Any, Any], bool]:
        if self._peek() == "!":
            self.pos += 1
            inner = self._not()
            return lambda node, root: not inner(node, root)
        if self._peek() == "(":
            self.pos += 1
            inner = self._logic()
            if self._peek() != ")":
                raise JsonPathError(f"missing ')' in filter ({self.text})")
            self.pos += 1
            return inner
        left = self._operand()
        op = self._peek()
        if op not in ("==", "!=", "<", "<=", ">", ">=", "=~"):
            return lambda node, root: _exists(left(node, root))
        self.pos += 1
        right = self._operand()
        return lambda node, root: _compare(op, left(node, root), right(node, root))

    def _operand(self) -> Callable[[Any, Any], Any]:
        if self.pos >= len(self.tokens):
            raise JsonPathError(f"unexpected end of filter ({self.text})")
        kind, raw = self.tokens[self.pos]
        self.pos += 1
        if kind == "path":
            steps, definite = _compile("$" + raw[1:])
            use_root = raw.startswith("$")
            return lambda node, root: _walk(steps, definite, root if use_root else node)
        if kind == "number":
            value: Any = float(raw)
        elif kind == "string":
            value = json.loads('"' + raw[1:-1].replace('\\"', '"').replace('"', '\\"') + '"')
        elif kind == "regex":
            value = _regex(raw[1 : raw.rindex("/")])
        elif kind == "word":
            value = {"true": True, "false": False, "null": None}[raw]
        else:
            raise JsonPathError(f"unexpected {raw!r} in filter ({self.text})")
        return lambda node, root: value


def _join(op: str, left: Callable[[Any, Any], bool], right: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    if op == "||":
        return lambda node, root: left(node, root) or right(node, root)
    return lambda node, root: left(node, root) and right(node, root)


_MISSING = object()


def _walk(steps: list[_Step], definite: bool, start: Any) -> Any:
    nodes = [start]
    try:
        for step in steps:
            nodes = step(nodes, start)
    except JsonPathError:
        return _MISSING
    if definite:
        return nodes[0] if nodes else _MISSING
    return nodes


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise JsonPathError(f"invalid regular expression {pattern!r}: {exc}") from None


def _exists(value: Any) -> bool:
    return value is not _MISSING and value != []


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is _MISSING or right is _MISSING:
        return op == "!="
    if op == "=~":
        pattern = right if isinstance(right, re.Pattern) else _regex(str(right))
        return isinstance(left, str) and pattern.search(left) is not None
    if op == "==":
        return values_equal(left, right)
    if op == "!=":
        return not values_equal(left, right)
    if not ((is_number(left) and is_number(right)) or (isinstance(left, str) and isinstance(right, str))):
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
