"""Lexer and Pratt parser for the expr-lang subset Argo templates use.

Precedences follow expr-lang's operator table (``or`` 10, ``and`` 15, comparisons 20, ``..`` 25, ``+`` 30,
``*`` 60, ``**`` 100 right-associative, ``??`` 500; unary ``not``/``!`` 50, ``-``/``+`` 90), with the
ternary ``? :`` loosest. Closures are ``{...}`` (or a bare expression) as a predicate builtin's argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from workflows.engine.expressions._errors import ExpressionSyntaxError

__all__ = ["PREDICATE_BUILTINS", "Node", "parse"]

PREDICATE_BUILTINS = frozenset(
    {"all", "none", "any", "one", "filter", "map", "count", "sum", "find", "findIndex", "findLast",
     "findLastIndex", "groupBy", "sortBy", "reduce"}
)  # fmt: skip

# operator -> (precedence, right associative); the pipe "|" is handled on its own, at precedence 0
_BINARY: dict[str, tuple[int, bool]] = {
    "or": (10, False),
    "||": (10, False),
    "and": (15, False),
    "&&": (15, False),
    "==": (20, False),
    "!=": (20, False),
    "<": (20, False),
    ">": (20, False),
    "<=": (20, False),
    ">=": (20, False),
    "in": (20, False),
    "matches": (20, False),
    "contains": (20, False),
    "startsWith": (20, False),
    "endsWith": (20, False),
    "..": (25, False),
    "+": (30, False),
    "-": (30, False),
    "*": (60, False),
    "/": (60, False),
    "%": (60, False),
    "**": (100, True),
    "^": (100, True),
    "??": (500, False),
}
_UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
_NEGATABLE = {"in", "matches", "contains", "startsWith", "endsWith"}
_WORD_OPERATORS = {"and", "or", "not", "in", "matches", "contains", "startsWith", "endsWith"}

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<number>0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.\d[\d_]*|\d[\d_]*)(?:[eE][+-]?\d+)?)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
    |(?P<pointer>\#[A-Za-z_]*)
    |(?P<op>\?\?|\?\.|\.\.\.|\.\.|==|!=|<=|>=|&&|\|\||\*\*|[-+*/%^!<>?:.,()\[\]{}|;=])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f", "v": "\v", "a": "\a"}


@dataclass(frozen=True)
class Node:
    """One syntax-tree node: ``kind`` names it, ``args`` holds children or literal values."""

    kind: str  # literal, name, pointer, member, slice, call, unary, binary, ternary, array, map, closure
    args: tuple[Any, ...]


@dataclass(frozen=True)
class _Token:
    kind: str
    value: Any
    offset: int


def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 == len(body):
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        i += 2
    return "".join(out)


def _number(text: str, raw: str) -> int | float:
    """Integers stay ints (hex too); a dot or exponent makes a float64, as in expr."""
    clean = raw.replace("_", "")
    try:
        if clean[:2].lower() == "0x":
            return int(clean, 16)
        return float(clean) if re.search(r"[.eE]", clean) else int(clean)
    except ValueError:
        raise ExpressionSyntaxError(text, f"invalid number literal {raw!r}") from None


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionSyntaxError(text, f"unexpected character {text[pos]!r} at offset {pos}")
        kind, raw = match.lastgroup or "", match.group()
        if kind == "number":
            tokens.append(_Token("literal", _number(text, raw), pos))
        elif kind == "string":
            tokens.append(_Token("literal", raw[1:-1] if raw[0] == "`" else _unescape(raw[1:-1]), pos))
        elif kind == "name":
            if raw in ("true", "false"):
                tokens.append(_Token("literal", raw == "true", pos))
            elif raw == "nil":
                tokens.append(_Token("literal", None, pos))
            else:
                tokens.append(_Token("op" if raw in _WORD_OPERATORS else "name", raw, pos))
        elif kind != "space":
            tokens.append(_Token(kind, raw, pos))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    # --- helpers -----------------------------------------------------------------------------------------------
    def _error(self, why: str) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(self.text, why)

    def _peek(self, ahead: int = 0) -> _Token | None:
        index = self.pos + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def _is(self, value: str, ahead: int = 0) -> bool:
        token = self._peek(ahead)
        return token is not None and token.kind == "op" and token.value == value

    def _expect(self, value: str) -> None:
        if not self._is(value):
            token = self._peek()
            found = "the end" if token is None else repr(token.value)
            raise self._error(f"expected {value!r} but found {found}")
        self.pos += 1

    # --- grammar -----------------------------------------------------------------------------------------------
    def parse(self) -> Node:
        if not self.tokens:
            raise self._error("the expression is empty")
        node = self._expression(0)
        if (token := self._peek()) is not None:
            raise self._error(f"unexpected {token.value!r} at offset {token.offset}")
        return node

    def _expression(self, min_precedence: int) -> Node:
        token = self._peek()
        following = self._peek(1)
        if token is not None and token.value == "let" and following is not None and following.kind == "name":
            raise self._error("'let' declarations are not supported")
        if token is not None and token.kind == "op" and token.value in _UNARY:
            self.pos += 1
            left = Node("unary", (token.value, self._expression(_UNARY[token.value])))
        else:
            left = self._postfix(self._primary())
        previous = ""
        while (token := self._peek()) is not None and token.kind == "op":
            op, negate = token.value, False
            if op == "not" and (following := self._peek(1)) is not None and following.value in _NEGATABLE:
                op, negate = following.value, True
            if op == "|" and min_precedence == 0:
                left = self._pipe(left)
                continue
            if op not in _BINARY or _BINARY[op][0] < min_precedence:
                break
            if previous == "??" and op != "??":
                raise self._error(f"operator {op!r} and '??' cannot be mixed; wrap either in parentheses")
            precedence, right_assoc = _BINARY[op]
            self.pos += 2 if negate else 1
            right = self._expression(precedence if right_assoc else precedence + 1)
            left = Node("binary", (op, left, right))
            if negate:
                left = Node("unary", ("not", left))
            previous = op
        while min_precedence == 0 and self._is("?"):
            self.pos += 1
            if self._is(":"):  # `a ?: b` is `a ? a : b`
                self.pos += 1
                left = Node("binary", ("?:", left, self._expression(0)))
                continue
            then = self._expression(0)
            self._expect(":")
            left = Node("ternary", (left, then, self._expression(0)))
        return left

    def _pipe(self, left: Node) -> Node:
        """``value | upper()`` calls ``upper(value)``."""
        self.pos += 1
        name = self._peek()
        if name is None or name.kind != "name" or not self._is("(", 1):
            raise self._error("'|' must be followed by a function call, e.g. s | upper()")
        self.pos += 1
        call = self._call(name.value, implicit=1)
        return Node("call", (call.args[0], (left, *call.args[1])))

    def _primary(self) -> Node:
        token = self._peek()
        if token is None:
            raise self._error("unexpected end of the expression")
        self.pos += 1
        if token.kind == "literal":
            return Node("literal", (token.value,))
        if token.kind == "pointer":
            return Node("pointer", (token.value[1:],))
        if token.kind == "name":
            if self._is("("):
                return self._call(token.value)
            return Node("name", (token.value,))
        if token.value == "(":
            node = self._expression(0)
            self._expect(")")
            return node
        if token.value == "[":
            return Node("array", tuple(self._items("]", self._element)))
        if token.value == "{":
            return Node("map", tuple(self._items("}", self._pair)))
        if token.value == ".":  # `.field` inside a closure is `#.field`
            name = self._peek()
            if name is None or name.kind not in ("name", "op"):
                raise self._error("expected a field name after '.'")
            self.pos += 1
            return Node("member", (Node("pointer", ("",)), Node("literal", (name.value,)), False))
        raise self._error(f"unexpected {token.value!r} at offset {token.offset}")

    def _element(self) -> Node:
        return self._expression(0)

    def _pair(self) -> Node:
        token = self._peek()
        if token is not None and token.kind in ("name", "literal") and self._is(":", 1):
            self.pos += 2
            key = Node("literal", (token.value,))
        elif self._is("("):
            self.pos += 1
            key = self._expression(0)
            self._expect(")")
            self._expect(":")
        else:
            raise self._error("a map key must be a name, a literal or a parenthesised expression, followed by ':'")
        return Node("array", (key, self._expression(0)))

    def _items(self, closer: str, item: Any) -> list[Node]:
        items: list[Node] = []
        while not self._is(closer):
            items.append(item())
            if not self._is(closer):
                self._expect(",")
        self.pos += 1
        return items

    def _call(self, name: str, implicit: int = 0) -> Node:
        """``name(args)``; ``implicit`` counts arguments given outside the parentheses (by a pipe)."""
        self._expect("(")
        args: list[Node] = []
        while not self._is(")"):
            if name in PREDICATE_BUILTINS and len(args) + implicit == 1:  # (collection, predicate, extra...)
                args.append(self._closure())
            else:
                args.append(self._expression(0))
            if not self._is(")"):
                self._expect(",")
        self.pos += 1
        return Node("call", (Node("name", (name,)), tuple(args)))

    def _closure(self) -> Node:
        if self._is("{") and not self._looks_like_map():
            self.pos += 1
            body = self._expression(0)
            self._expect("}")
            return Node("closure", (body,))
        return Node("closure", (self._expression(0),))

    def _looks_like_map(self) -> bool:
        """``{a: 1}`` is a map, ``{# > 1}`` a closure (reduce's initial value may be a map)."""
        first, second = self._peek(1), self._peek(2)
        return first is not None and first.kind in ("name", "literal") and second is not None and second.value == ":"

    def _postfix(self, node: Node) -> Node:
        while True:
            if self._is(".") or self._is("?."):
                optional = self._peek().value == "?."  # type: ignore[union-attr]
                self.pos += 1
                if optional and self._is("["):
                    node = self._index(node, optional=True)
                    continue
                name = self._peek()
                if name is None or name.kind not in ("name", "op"):
                    raise self._error("expected a field name after '.'")
                self.pos += 1
                if self._is("("):
                    self.pos += 1
                    args = self._items(")", self._element)
                    node = Node("call", (Node("member", (node, Node("literal", (name.value,)), optional)), tuple(args)))
                else:
                    node = Node("member", (node, Node("literal", (name.value,)), optional))
            elif self._is("["):
                node = self._index(node, optional=False)
            elif self._is("(") and node.kind in ("member", "index", "call"):
                self.pos += 1
                node = Node("call", (node, tuple(self._items(")", self._element))))
            else:
                return node

    def _index(self, node: Node, optional: bool) -> Node:
        self._expect("[")
        if self._is(":"):
            self.pos += 1
            upper = None if self._is("]") else self._expression(0)
            self._expect("]")
            return Node("slice", (node, None, upper))
        index = self._expression(0)
        if self._is(":"):
            self.pos += 1
            upper = None if self._is("]") else self._expression(0)
            self._expect("]")
            return Node("slice", (node, index, upper))
        self._expect("]")
        return Node("member", (node, index, optional))


@lru_cache(maxsize=2048)
def parse(text: str) -> Node:
    """Parse once; the tree is immutable, so repeated evaluations share it."""
    try:
        return _Parser(text).parse()
    except RecursionError:
        raise ExpressionSyntaxError(text, "the expression nests too deeply") from None
