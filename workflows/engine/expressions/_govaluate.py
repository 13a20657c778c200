"""``when:`` conditions, evaluated as Argo does: govaluate, with every bare identifier turned into a string.

Argo substitutes ``{{...}}`` first, then hands the text to govaluate after re-typing each VARIABLE token as a
STRING, so ``heads == heads`` compares two strings. Numbers are float64, ``==`` is strict (``3 == "3"`` is
false), ``+`` concatenates when either side is a string, logical operators demand booleans, and the result
must be a boolean. Operator precedence follows govaluate's planner.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workflows.engine.expressions._errors import ExpressionError

__all__ = ["evaluate_when"]

_OPERATORS = {
    "==", "!=", ">", ">=", "<", "<=", "=~", "!~",
    "&&", "||", "!", "+", "-", "*", "/", "%", "**", "&", "|", "^", "<<", ">>", "~",
    "?", ":", "??",
}  # fmt: skip
_SYMBOLS = set("!%&*+-/<=>^|~?:")
_NUMBER = re.compile(r"0x[0-9a-fA-F]+|[0-9.]+")


@dataclass(frozen=True)
class _Token:
    kind: str  # "value", "op", "(", ")", ","
    value: Any


class _Failure(Exception):
    """Internal: the reason, wrapped into an ExpressionError naming the whole text."""


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == quote:
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise _Failure(f"unclosed quote at offset {start}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "(),":
            tokens.append(_Token(char, char))
            i += 1
        elif char in "'\"":
            value, i = _read_quoted(text, i)
            tokens.append(_Token("value", value))
        elif char == "[":
            end = text.find("]", i)
            if end < 0:
                raise _Failure(f"unclosed '[' at offset {i}")
            tokens.append(_Token("value", text[i + 1 : end]))  # an escaped variable name, hence a string in Argo
            i = end + 1
        elif char.isdigit() or char == ".":
            match = _NUMBER.match(text, i)
            assert match is not None
            word = match.group()
            try:
                number = float(int(word, 16)) if word.startswith("0x") else float(word)
            except ValueError:
                raise _Failure(f"cannot parse numeric value {word!r}") from None
            tokens.append(_Token("value", number))
            i = match.end()
        elif char.isalpha():
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] in "_."):
                j += 1
            word = text[i:j]
            i = j
            if word in ("true", "false"):
                tokens.append(_Token("value", word == "true"))
            elif word in ("in", "IN"):
                tokens.append(_Token("op", "in"))
            elif "." in word:
                raise _Failure(f"{word!r} is an accessor, which a condition cannot use; quote it to compare text")
            else:
                tokens.append(_Token("value", word))  # Argo turns bare variables into strings
        elif char in _SYMBOLS:
            j = i
            while j < len(text) and text[j] in _SYMBOLS:
                j += 1
            symbol = text[i:j]
            if symbol not in _OPERATORS:
                raise _Failure(f"invalid operator {symbol!r} at offset {i}")
            tokens.append(_Token("op", symbol))
            i = j
        else:
            raise _Failure(f"invalid character {char!r} at offset {i}")
    return tokens


def _go(value: Any) -> str:
    """Go's %v for the values a condition holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, list):
        return "[" + " ".join(_go(item) for item in value) + "]"
    return str(value)


def _need(kind: type, value: Any, op: str, what: str) -> None:
    if not isinstance(value, kind) or (kind is float and isinstance(value, bool)):
        raise _Failure(f"value '{_go(value)}' cannot be used with the operator '{op}', it is not {what}")


def _numbers(op: str, fn: Callable[[float, float], Any]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        _need(float, left, op, "a number")
        _need(float, right, op, "a number")
        return fn(left, right)

    return apply


def _ordered(op: str, fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def apply(left: Any, right: Any) -> bool:
        both_numbers = all(isinstance(v, float) and not isinstance(v, bool) for v in (left, right))
        if not both_numbers and not (isinstance(left, str) and isinstance(right, str)):
            raise _Failure(f"values '{_go(left)}' and '{_go(right)}' cannot be compared with '{op}'")
        return fn(left, right)

    return apply


def _equal(left: Any, right: Any) -> bool:
    return type(left) is type(right) and left == right


def _regex(left: Any, right: Any) -> bool:
    _need(str, left, "=~", "a string")
    _need(str, right, "=~", "a string")
    try:
        return re.search(right, left) is not None
    except re.error as exc:
        raise _Failure(f"invalid regular expression {right!r}: {exc}") from None


def _plus(left: Any, right: Any) -> Any:
    if isinstance(left, str) or isinstance(right, str):
        return _go(left) + _go(right)
    return _numbers("+", lambda a, b: a + b)(left, right)


def _divide(left: float, right: float) -> float:
    if right == 0:
        return math.nan if left == 0 or math.isnan(left) else math.copysign(math.inf, left)
    return left / right


def _int_op(op: str, fn: Callable[[int, int], int]) -> Callable[[Any, Any], float]:
    return _numbers(op, lambda a, b: float(fn(int(a), int(b))))


def _member(left: Any, right: Any) -> bool:
    if not isinstance(right, list):
        raise _Failure(f"value '{_go(right)}' cannot be used with 'in', it is not an array")
    return any(_equal(left, item) for item in right)


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    ">": _ordered(">", lambda a, b: a > b),
    ">=": _ordered(">=", lambda a, b: a >= b),
    "<": _ordered("<", lambda a, b: a < b),
    "<=": _ordered("<=", lambda a, b: a <= b),
    "=~": _regex,
    "!~": lambda a, b: not _regex(a, b),
    "in": _member,
    "+": _plus,
    "-": _numbers("-", lambda a, b: a - b),
    "*": _numbers("*", lambda a, b: a * b),
    "/": _numbers("/", _divide),
    "%": _numbers("%", lambda a, b: math.fmod(a, b) if b else math.nan),
    "**": _numbers("**", lambda a, b: math.pow(a, b)),
    "&": _int_op("&", lambda a, b: a & b),
    "|": _int_op("|", lambda a, b: a | b),
    "^": _int_op("^", lambda a, b: a ^ b),
    "<<": _int_op("<<", lambda a, b: a << b),
    ">>": _int_op(">>", lambda a, b: a >> b),
}

# Loosest first, as govaluate's planner: ternary/coalesce, ||, &&, comparators, bitwise, shift, additive,
# multiplicative, exponent.
_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"?", ":", "??"}),
    frozenset({"||"}),
    frozenset({"&&"}),
    frozenset({"==", "!=", ">", ">=", "<", "<=", "=~", "!~", "in"}),
    frozenset({"&", "|", "^"}),
    frozenset({"<<", ">>"}),
    frozenset({"+", "-"}),
    frozenset({"*", "/", "%"}),
    frozenset({"**"}),
)


class _Evaluator:
    """Parses and evaluates in one pass; short-circuits && / || as govaluate does."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def _peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def run(self) -> Any:
        if not self.tokens:
            raise _Failure("the condition is empty")
        value = self._level(0)
        if (extra := self._peek()) is not None:
            raise _Failure(f"unexpected {_go(extra.value)!r} after a complete expression (quote text with spaces)")
        return value

    def _level(self, depth: int) -> Any:
        if depth == len(_LEVELS):
            return self._prefix()
        left = self._level(depth + 1)
        while (token := self._peek()) is not None and token.kind == "op" and token.value in _LEVELS[depth]:
            self.pos += 1
            right = self._level(depth + 1)
            left = self._combine(token.value, left, right)
        return left

    @staticmethod
    def _combine(op: str, left: Any, right: Any) -> Any:
        if op in ("&&", "||"):
            _need(bool, left, op, "a bool")
            if (op == "&&" and not left) or (op == "||" and left):
                return left
            _need(bool, right, op, "a bool")
            return right
        if op == "?":
            _need(bool, left, op, "a bool")
            return right if left else None
        if op in (":", "??"):
            return right if left is None else left
        return _BINARY[op](left, right)

    def _prefix(self) -> Any:
        token = self._peek()
        if token is not None and token.kind == "op" and token.value in ("!", "-", "~"):
            self.pos += 1
            operand = self._prefix()
            if token.value == "!":
                _need(bool, operand, "!", "a bool")
                return not operand
            _need(float, operand, token.value, "a number")
            return -operand if token.value == "-" else float(~int(operand))
        return self._value()

    def _value(self) -> Any:
        token = self._peek()
        if token is None:
            raise _Failure("unexpected end of the condition")
        self.pos += 1
        if token.kind == "value":
            return token.value
        if token.kind == "(":
            items = [self._level(0)]
            while (sep := self._peek()) is not None and sep.kind == ",":
                self.pos += 1
                items.append(self._level(0))
            if (close := self._peek()) is None or close.kind != ")":
                raise _Failure("missing ')'")
            self.pos += 1
            return items[0] if len(items) == 1 else items
        raise _Failure(f"unexpected {token.value!r}")


def evaluate_when(text: str) -> bool:
    """Evaluate an already-substituted ``when`` condition; raise ExpressionError unless it yields a boolean."""
    if (start := text.find("{{")) >= 0:
        end = text.find("}}", start)
        tag = text[start : end + 2] if end >= 0 else text[start:]
        raise ExpressionError(
            text,
            f"{tag} was not substituted",
            hint="the condition refers to a variable that is unknown here; check its spelling and that the "
            "step or task it names ran before this one",
        )
    try:
        result = _Evaluator(_tokenize(text)).run()
    except _Failure as exc:
        raise ExpressionError(text, str(exc), hint=_WHEN_HINT) from None
    except RecursionError:
        raise ExpressionError(text, "the condition nests too deeply", hint=_WHEN_HINT) from None
    if not isinstance(result, bool):
        raise ExpressionError(text, f"expected a boolean, got {_go(result)!r}", hint=_WHEN_HINT)
    return result


_WHEN_HINT = (
    "a 'when' condition compares words, quoted strings and numbers with ==, !=, <, >, =~, &&, ||, e.g. "
    '"{{steps.flip.outputs.result}} == heads"; quote values containing spaces or dashes: \'"{{...}}" == "a-b"\''
)
