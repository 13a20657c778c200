"""Evaluating expr-lang trees with expr's runtime rules (strict types, ``/`` always float, nil-safe ``??``)."""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable
from typing import Any

from workflows.engine.expressions._builtins import BUILTINS, PREDICATES, call_method
from workflows.engine.expressions._errors import ExpressionError, UndefinedName
from workflows.engine.expressions._expr_parse import Node, parse
from workflows.engine.expressions._gofmt import go_string
from workflows.engine.expressions._values import bounded, is_number, parse_time, type_name, values_equal

__all__ = ["run"]


class _Fault(Exception):
    """Internal: a runtime failure, reported as ExpressionError naming the whole expression."""


def _compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, dt.datetime) and isinstance(right, str):
        right = parse_time(right)
    if isinstance(right, dt.datetime) and isinstance(left, str):
        left = parse_time(left)
    comparable = (
        (is_number(left) and is_number(right))
        or (isinstance(left, str) and isinstance(right, str))
        or (isinstance(left, dt.datetime) and isinstance(right, dt.datetime))
        or (isinstance(left, dt.timedelta) and isinstance(right, dt.timedelta))
    )
    if not comparable:
        raise _Fault(f"invalid operation: {type_name(left)} {op} {type_name(right)}")
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    if is_number(left) and is_number(right):
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if op == "/":
            if right == 0:
                return math.nan if left == 0 else math.copysign(math.inf, left)
            return float(left) / float(right)
        if op == "%":
            if not (isinstance(left, int) and isinstance(right, int)):
                raise _Fault(f"invalid operation: {type_name(left)} % {type_name(right)} (needs integers)")
            if right == 0:
                raise _Fault("integer divide by zero")
            return int(math.fmod(left, right))
        return math.pow(left, right)  # ** and ^
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    if op == "+" and isinstance(left, list) and isinstance(right, list):
        return left + right
    return _time_arithmetic(op, left, right)


def _time_arithmetic(op: str, left: Any, right: Any) -> Any:
    if op == "-" and isinstance(left, dt.datetime) and isinstance(right, str | dt.datetime):
        return left - (parse_time(right) if isinstance(right, str) else right)
    if op == "-" and isinstance(right, dt.datetime) and isinstance(left, str):
        return parse_time(left) - right
    if op in ("+", "-") and isinstance(left, dt.datetime | dt.timedelta) and isinstance(right, dt.timedelta):
        return left + right if op == "+" else left - right
    raise _Fault(f"invalid operation: {type_name(left)} {op} {type_name(right)}")


def _membership(left: Any, right: Any) -> bool:
    if right is None:
        return False
    if isinstance(right, list):
        return any(values_equal(left, item) for item in right)
    if isinstance(right, dict):
        return left in right
    raise _Fault(f"invalid operation: {type_name(left)} in {type_name(right)}")


def _strings(op: str, fn: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def apply(left: Any, right: Any) -> bool:
        if not (isinstance(left, str) and isinstance(right, str)):
            raise _Fault(f"invalid operation: {type_name(left)} {op} {type_name(right)}")
        return fn(left, right)

    return apply


def _matches(text: str, pattern: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error as exc:
        raise _Fault(f"invalid regular expression {pattern!r}: {exc}") from None


def _range(left: Any, right: Any) -> list[int]:
    if not (isinstance(left, int) and isinstance(right, int)) or isinstance(left, bool) or isinstance(right, bool):
        raise _Fault(f"invalid operation: {type_name(left)} .. {type_name(right)}")
    bounded(right + 1 - left, "the range")
    return list(range(left, right + 1))


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": values_equal,
    "!=": lambda a, b: not values_equal(a, b),
    "in": _membership,
    "matches": _strings("matches", _matches),
    "contains": _strings("contains", lambda a, b: b in a),
    "startsWith": _strings("startsWith", lambda a, b: a.startswith(b)),
    "endsWith": _strings("endsWith", lambda a, b: a.endswith(b)),
    "..": _range,
    **{op: functools.partial(_compare, op) for op in ("<", ">", "<=", ">=")},
    **{op: functools.partial(_arithmetic, op) for op in ("+", "-", "*", "/", "%", "**", "^")},
}


class _Evaluator:
    def __init__(self, env: dict) -> None:
        self.env = env
        # references that were absent, nil, or still held an unsubstituted {{...}}: maybe known in a later pass
        self.missing: list[str] = []
        self.pointers: list[dict[str, Any]] = []  # one frame per predicate being evaluated: #, #index, #acc

    def eval(self, node: Node, nil_safe: bool = False) -> Any:
        handler = getattr(self, "_" + node.kind)
        return handler(*node.args, nil_safe) if node.kind in ("member", "name") else handler(*node.args)

    def _literal(self, value: Any) -> Any:
        return value

    def _name(self, name: str, nil_safe: bool) -> Any:
        if name in self.env:
            return self._note(name, self.env[name])
        if name in BUILTINS:
            return BUILTINS[name]
        if name == "$env":
            return self.env
        self.missing.append(name)
        if nil_safe:
            return None
        raise UndefinedName("", name)

    def _note(self, path: str | None, value: Any) -> Any:
        if path is not None and (value is None or (isinstance(value, str) and "{{" in value)):
            self.missing.append(path)
        return value

    def _pointer(self, name: str) -> Any:
        if not self.pointers:
            raise _Fault("'#' is only defined inside a predicate such as filter(list, {# > 1})")
        frame = self.pointers[-1]
        if name not in frame:
            raise _Fault(f"'#{name}' is not defined here (use #, #index, or #acc inside reduce)")
        return frame[name]

    def _member(self, target: Node, key: Node, optional: bool, nil_safe: bool) -> Any:
        obj = self.eval(target, nil_safe=nil_safe)
        index = self.eval(key)
        if obj is None:
            if optional or nil_safe or _in_optional_chain(target):
                return None
            raise _Fault(f"cannot fetch {go_string(index)} from <nil>")
        if isinstance(obj, dict):
            return self._note(_path(target, index), obj.get(index) if isinstance(index, str | int | float) else None)
        if isinstance(obj, list | str):
            if not isinstance(index, int) or isinstance(index, bool):
                raise _Fault(f"cannot fetch {go_string(index)} from {type_name(obj)}")
            position = index + len(obj) if index < 0 else index
            if not 0 <= position < len(obj):
                raise _Fault(f"index out of range: {index} (array length is {len(obj)})")
            return obj[position]
        if isinstance(index, str):
            return call_method(obj, index)
        raise _Fault(f"cannot fetch {go_string(index)} from {type_name(obj)}")

    def _slice(self, target: Node, lower: Node | None, upper: Node | None) -> Any:
        obj = self.eval(target)
        if not isinstance(obj, list | str):
            raise _Fault(f"cannot slice {type_name(obj)}")
        start = 0 if lower is None else self.eval(lower)
        stop = len(obj) if upper is None else self.eval(upper)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop)):
            raise _Fault("slice bounds must be integers")
        return obj[start:stop]

    def _call(self, callee: Node, args: tuple[Node, ...]) -> Any:
        if (
            callee.kind == "name"
            and callee.args[0] in PREDICATES
            and callee.args[0] not in self.env
            and (len(args) >= 2 or callee.args[0] not in BUILTINS)
        ):
            return self._predicate(callee.args[0], args)
        function = self.eval(callee)
        if not callable(function):
            raise _Fault(f"{go_string(function)!s} is not a function")
        values = [self.eval(arg) for arg in args]
        try:
            return function(*values)
        except ExpressionError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, ArithmeticError, re.error) as exc:
            raise _Fault(f"{_describe(callee)}: {exc}") from None

    def _predicate(self, name: str, args: tuple[Node, ...]) -> Any:
        if len(args) < 2:
            raise _Fault(f"{name}() needs a collection and a predicate, e.g. {name}(list, {{# > 1}})")
        collection = self.eval(args[0])
        if isinstance(collection, dict):
            collection = list(collection.values())
        if not isinstance(collection, list):
            raise _Fault(f"{name}() needs an array, not {type_name(collection)}")
        body = args[1].args[0] if args[1].kind == "closure" else args[1]
        extra = [self.eval(arg) for arg in args[2:]]

        def predicate(index: int, item: Any, *acc: Any) -> Any:
            self.pointers.append({"": item, "index": index, **({"acc": acc[0]} if acc else {})})
            try:
                return self.eval(body)
            finally:
                self.pointers.pop()

        return PREDICATES[name](collection, predicate, *extra)

    def _closure(self, body: Node) -> Any:
        raise _Fault("a predicate {...} is only allowed as an argument of filter, map, all, any…")

    def _unary(self, op: str, operand: Node) -> Any:
        value = self.eval(operand)
        if op in ("!", "not"):
            if not isinstance(value, bool):
                raise _Fault(f"invalid operation: {op} {type_name(value)}")
            return not value
        if not is_number(value):
            raise _Fault(f"invalid operation: {op} {type_name(value)}")
        return -value if op == "-" else value

    def _binary(self, op: str, left: Node, right: Node) -> Any:
        if op == "??":
            value = self.eval(left, nil_safe=True)
            return self.eval(right) if value is None else value
        if op == "?:":
            value = self.eval(left)
            return self.eval(right) if value is None or value is False else value
        lhs = self.eval(left)
        if op in ("and", "&&", "or", "||"):
            if not isinstance(lhs, bool):
                raise _Fault(f"invalid operation: {type_name(lhs)} {op} … (needs booleans)")
            if (op in ("and", "&&")) != lhs:
                return lhs
            rhs = self.eval(right)
            if not isinstance(rhs, bool):
                raise _Fault(f"invalid operation: … {op} {type_name(rhs)} (needs booleans)")
            return rhs
        return _OPERATORS[op](lhs, self.eval(right))

    def _ternary(self, condition: Node, then: Node, otherwise: Node) -> Any:
        value = self.eval(condition)
        if not isinstance(value, bool):
            raise _Fault(f"non-bool {go_string(value)!r} ({type_name(value)}) used as condition")
        return self.eval(then if value else otherwise)

    def _array(self, *items: Node) -> list:
        return [self.eval(item) for item in items]

    def _map(self, *pairs: Node) -> dict:
        result: dict[Any, Any] = {}
        for pair in pairs:
            key, value = self._array(*pair.args)
            result[key] = value
        return result


def _path(target: Node, key: Any) -> str | None:
    """The dotted name a member access reads (``tasks.a.outputs``), when it is a plain chain of names."""
    parts = [go_string(key)]
    while target.kind == "member" and target.args[1].kind == "literal":
        parts.append(go_string(target.args[1].args[0]))
        target = target.args[0]
    if target.kind != "name":
        return None
    parts.append(target.args[0])
    return ".".join(reversed(parts))


def _in_optional_chain(node: Node) -> bool:
    """``a?.b.c`` is nil as a whole when ``a`` is nil, as expr's chains are."""
    while node.kind in ("member", "call", "slice"):
        if node.kind == "member" and node.args[2]:
            return True
        node = node.args[0]
    return False


def _describe(callee: Node) -> str:
    if callee.kind == "name":
        return f"{callee.args[0]}()"
    if callee.kind == "member" and callee.args[1].kind == "literal":
        return f"{_describe(callee.args[0]).rstrip('()')}.{callee.args[1].args[0]}()"
    return "call"


def run_traced(text: str, env: dict) -> tuple[Any, list[str]]:
    """Like :func:`run`, also returning the references found absent or nil (errors carry them as ``missing``)."""
    tree = parse(text)
    evaluator = _Evaluator(env)
    try:
        return evaluator.eval(tree), evaluator.missing
    except UndefinedName as exc:
        error: ExpressionError = UndefinedName(text, exc.name)
    except ExpressionError as exc:
        error = ExpressionError(text, exc.why, exc.hint)
    except (_Fault, ValueError, TypeError, ArithmeticError, re.error) as exc:
        error = ExpressionError(text, str(exc))
    except RecursionError:
        error = ExpressionError(text, "the expression nests too deeply")
    error.missing = tuple(evaluator.missing)
    raise error


def run(text: str, env: dict) -> Any:
    """Parse (cached) and evaluate ``text`` in ``env``; every failure is an ExpressionError naming ``text``."""
    return run_traced(text, env)[0]
