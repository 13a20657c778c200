"""The expr-lang subset: operators, literals, member access, closures, builtins and their errors."""

from __future__ import annotations

import math
from typing import Any

import pytest

from workflows.engine.expressions import ExpressionError, ExpressionSyntaxError, UndefinedName, evaluate, nest

ENV: dict[str, Any] = {
    "n": 7,
    "f": 2.5,
    "s": "hello",
    "t": True,
    "items": [3, 1, 2],
    "people": [{"name": "ann", "age": 31}, {"name": "bob", "age": 17}],
    "m": {"a": 1, "b-c": "dash"},
    "nothing": None,
    "inputs": {"parameters": {"x": "41", "week-temps": "[1,2]"}},
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # literals
        ("42", 42),
        ("1_000", 1000),
        ("0x1F", 31),
        ("2.5e2", 250.0),
        ("'single'", "single"),
        ('"dou\\"ble\\n"', 'dou"ble\n'),
        ("`raw\\n`", "raw\\n"),
        ("true", True),
        ("nil", None),
        ("[1, 'a', [2]]", [1, "a", [2]]),
        ("{a: 1, 'b': 2, (s): 3}", {"a": 1, "b": 2, "hello": 3}),
        ("[1, 2,]", [1, 2]),
        # arithmetic: ints stay ints, / is always float, ** is float
        ("n + 1", 8),
        ("n - 10", -3),
        ("n * 2", 14),
        ("n / 2", 3.5),
        ("6 / 3", 2.0),
        ("n % 4", 3),
        ("-7 % 4", -3),
        ("2 ** 10", 1024.0),
        ("2 ^ 3", 8.0),
        ("f * 2", 5.0),
        ("-n", -7),
        ("+n", 7),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("2 ** 3 ** 2", 512.0),
        ("10 - 2 - 3", 5),
        # strings
        ("s + ' world'", "hello world"),
        ("s contains 'ell'", True),
        ("s startsWith 'he'", True),
        ("s endsWith 'lo'", True),
        ("s matches '^h.*o$'", True),
        ("s not matches 'z'", True),
        ("s not contains 'z'", True),
        ("s[0]", "h"),
        ("s[-1]", "o"),
        ("s[1:3]", "el"),
        # comparisons: ints and floats compare by value; other kinds must match
        ("n == 7.0", True),
        ("n != 7", False),
        ("'7' == 7", False),
        ("n > f", True),
        ("'a' < 'b'", True),
        ("nil == nil", True),
        ("nothing == nil", True),
        ("[1, 2] == [1, 2]", True),
        # logic with both spellings, short-circuit on the left
        ("t and not false", True),
        ("t && !t", False),
        ("false or t", True),
        ("false || false", False),
        ("false && undefined_name", False),
        ("true || undefined_name", True),
        ("not (1 > 2)", True),
        ("!t == false", True),
        # membership and ranges
        ("2 in items", True),
        ("5 not in items", True),
        ("'a' in m", True),
        ("'z' in m", False),
        ("1..3", [1, 2, 3]),
        # member access: dots, brackets, optional chaining, missing keys are nil
        ("m.a", 1),
        ("m['b-c']", "dash"),
        ('m["b-c"]', "dash"),
        ("m.missing", None),
        ("nothing?.field", None),
        ("nothing?.field.deeper", None),
        ("m?.a", 1),
        ("nothing?.['k']", None),
        ("people[1].name", "bob"),
        ("people[-1]['age']", 17),
        ("items[1:]", [1, 2]),
        ("items[:2]", [3, 1]),
        ("inputs.parameters['week-temps']", "[1,2]"),
        # ternary and nil coalescing
        ("n > 5 ? 'big' : 'small'", "big"),
        ("n > 50 ? 'big' : n > 5 ? 'mid' : 'small'", "mid"),
        ("nothing ?? 'fallback'", "fallback"),
        ("nothing.deeper.still ?? 'fallback'", "fallback"),
        ("undefined_name ?? 'fallback'", "fallback"),
        ("s ?? 'fallback'", "hello"),
        ("1 + (nothing ?? 2)", 3),
        ("nothing ?: 'elvis'", "elvis"),
        ("s ?: 'elvis'", "hello"),
        # the pipe passes its left side as the first argument
        ("s | upper()", "HELLO"),
        ("items | filter(# > 1) | map(# * 10)", [30, 20]),
        ("'a,b' | split(',') | join('+')", "a+b"),
        # predicates with # and .field
        ("filter(items, {# > 1})", [3, 2]),
        ("filter(items, # > 1)", [3, 2]),
        ("map(items, {# * 2})", [6, 2, 4]),
        ("map(people, {.name})", ["ann", "bob"]),
        ("map(people, #.age)", [31, 17]),
        ("all(items, {# > 0})", True),
        ("any(items, {# > 2})", True),
        ("none(items, {# > 3})", True),
        ("one(items, {# == 1})", True),
        ("count(people, {.age >= 18})", 1),
        ("find(people, {.age < 18}).name", "bob"),
        ("findIndex(items, {# == 2})", 2),
        ("findLast(items, {# > 1})", 2),
        ("sum(items)", 6),
        ("sum(people, {.age})", 48),
        ("sortBy(people, {.age})[0].name", "bob"),
        ("groupBy(people, {.age >= 18})[true][0].name", "ann"),
        ("map(filter(people, {.age > 18}), {.name})", ["ann"]),
        ("map(items, {#index})", [0, 1, 2]),
        ("filter(items, {#index > 0})", [1, 2]),
        ("reduce(items, #acc + #)", 6),
        ("reduce(items, #acc + #, 10)", 16),
        ("reduce(items, #acc + string(#), '')", "312"),
        ("findLastIndex(items, {# > 1})", 2),
        ("sortBy(people, {.age}, 'desc')[0].name", "ann"),
        ("map(items, {map([1, 2], {# * 10})})", [[10, 20], [10, 20], [10, 20]]),
    ],
)
def test_expressions(expr: str, expected: Any) -> None:
    result = evaluate(expr, ENV)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("asInt('42')", 42),
        ("asInt(inputs.parameters.x) + 1", 42),
        ("asInt(3.9)", 3),
        ("asFloat('2.5')", 2.5),
        ("int('7')", 7),
        ("float(2)", 2.0),
        ("string(12)", "12"),
        ("string(2.50)", "2.5"),
        ("len('héllo')", 5),
        ("len(items)", 3),
        ("len(m)", 2),
        ("toJson({b: [1, 2.0, 'x<y'], a: nil})", '{"a":null,"b":[1,2,"x\\u003cy"]}'),
        ("fromJson('{\"a\": [1, 2]}').a[1]", 2.0),
        ("fromJSON('3')", 3.0),
        ("upper(s)", "HELLO"),
        ("lower('ABC')", "abc"),
        ("trim('  x  ')", "x"),
        ("trim('xxhixx', 'x')", "hi"),
        ("trimPrefix('v1.2', 'v')", "1.2"),
        ("trimSuffix('a.log', '.log')", "a"),
        ("split('a,b,c', ',')", ["a", "b", "c"]),
        ("split('a,b,c', ',', 2)", ["a", "b,c"]),
        ("replace('aaa', 'a', 'b')", "bbb"),
        ("repeat('ab', 3)", "ababab"),
        ("join(['a', 'b'], '-')", "a-b"),
        ("indexOf('hello', 'l')", 2),
        ("lastIndexOf('hello', 'l')", 3),
        ("hasPrefix('hello', 'he')", True),
        ("hasSuffix('hello', 'lo')", True),
        ("abs(-3)", 3),
        ("ceil(1.2)", 2.0),
        ("floor(1.8)", 1.0),
        ("round(2.5)", 3.0),
        ("max(items)", 3),
        ("min(4, 2, 8)", 2),
        ("mean(items)", 2.0),
        ("median([5, 1, 3])", 3.0),
        ("first(items)", 3),
        ("last(items)", 2),
        ("first([])", None),
        ("keys({a: 1})", ["a"]),
        ("values({a: 1})", [1]),
        ("reverse(items)", [2, 1, 3]),
        ("sort(items)", [1, 2, 3]),
        ("sort(items, 'desc')", [3, 2, 1]),
        ("uniq([1, 1.0, 2, 'a', 'a'])", [1, 2, "a"]),
        ("concat([1], [2, 3])", [1, 2, 3]),
        ("flatten([1, [2, [3]]])", [1, 2, 3]),
        ("type(s)", "string"),
        ("toBase64('hi')", "aGk="),
        ("fromBase64('aGk=')", "hi"),
        ("duration('1h30m').Minutes()", 90.0),
        ("duration('1.5s').Seconds()", 1.5),
        ("date('2024-05-01T10:00:00Z').Year()", 2024),
        ("date('2024-05-01T10:00:00Z').Format('2006-01-02 15:04')", "2024-05-01 10:00"),
        ("(date('2024-05-01T10:00:00Z') - date('2024-05-01T09:00:00Z')).Hours()", 1.0),
        ("now() > date('2020-01-01T00:00:00Z')", True),
        ("get(m, 'a')", 1),
        ("get(items, 5)", None),
        ("toPairs({a: 1})", [["a", 1]]),
        ("fromPairs([['a', 1]])", {"a": 1}),
    ],
)
def test_builtins(expr: str, expected: Any) -> None:
    result = evaluate(expr, ENV)
    assert result == expected
    assert type(result) is type(expected)


def test_division_by_zero_is_infinite_like_go() -> None:
    assert evaluate("1 / 0", {}) == math.inf
    assert math.isnan(evaluate("0 / 0", {}))


def test_flat_scopes_are_nested_automatically() -> None:
    scope = {"inputs.parameters.x": "5", "workflow.name": "wf-1"}
    assert evaluate("asInt(inputs.parameters.x) * 2", scope) == 10
    assert evaluate("workflow.name + '-done'", scope) == "wf-1-done"


def test_nest_prefers_the_nested_form_and_merges_items() -> None:
    scope = {
        "workflow.parameters": '[{"name":"x"}]',
        "workflow.parameters.x": "1",
        "item": {"a": 1},
        "item.b": 2,
    }
    nested = nest(scope)
    assert nested["workflow"]["parameters"] == {"x": "1"}
    assert nested["item"] == {"a": 1, "b": 2}
    assert scope["item"] == {"a": 1}  # the caller's scope is never mutated


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("", "empty"),
        ("1 +", "unexpected end"),
        ("(1 + 2", "expected ')'"),
        ("[1, 2", "expected ','"),
        ("{a 1}", "map key"),
        ("1 2", "unexpected 2"),
        ("a = 1", "unexpected '='"),
        ("let x = 1; x", "'let' declarations are not supported"),
        ("'unterminated", "unexpected character"),
        ("1 @ 2", "unexpected character '@'"),
        ("0x_", "invalid number literal '0x_'"),
        ("nothing ?? 1 + 2", "cannot be mixed"),
        ("s | 3", "'|' must be followed by a function call"),
    ],
)
def test_syntax_errors_name_the_expression(expr: str, why: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        evaluate(expr, ENV)
    assert repr(expr) in str(info.value)
    assert why in str(info.value)


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("s + 1", "string + int"),
        ("n and true", "needs booleans"),
        ("true and n", "needs booleans"),
        ("!n", "invalid operation"),
        ("-s", "invalid operation"),
        ("n < 'x'", "int < string"),
        ("f % 2", "needs integers"),
        ("n % 0", "divide by zero"),
        ("nothing.field", "cannot fetch field from <nil>"),
        ("items[10]", "index out of range"),
        ("items['x']", "cannot fetch x"),
        ("n ? 1 : 2", "used as condition"),
        ("asInt('4.5')", "cannot convert"),
        ("asInt(nothing)", "int(nil)"),
        ("len(n)", "invalid argument for len"),
        ("s matches '('", "invalid regular expression"),
        ("filter(n, {# > 1})", "needs an array"),
        ("filter(items, {# + 1})", "must return a bool"),
        ("#", "only defined inside a predicate"),
        ("map(items, {#acc})", "'#acc' is not defined here"),
        ("reduce([], #acc + #)", "empty array"),
        ("n(1)", "is not a function"),
        ("duration('5 minutes')", "invalid duration"),
        ("s.Seconds()", "cannot fetch Seconds from string"),
        ("duration('1s').Bogus()", "no field or method"),
        ("1 in s", "int in string"),
        ("'a'..'b'", "string .. string"),
        ("1..100000000", "more than the limit"),
        ("repeat('ab', 100000000)", "more than the limit"),
        ("sprig.repeat(100000000, 'ab')", "more than the limit"),
        ("sprig.until(100000000)", "more than the limit"),
        ("sprig.regexMatch('(', 'x')", "sprig.regexMatch()"),
    ],
)
def test_runtime_errors_name_the_expression(expr: str, why: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(expr, ENV)
    assert not isinstance(info.value, UndefinedName)
    assert repr(expr) in str(info.value)
    assert why in str(info.value)


def test_undefined_names_are_reported_by_name() -> None:
    with pytest.raises(UndefinedName) as info:
        evaluate("asInt(steps.nope.outputs.result)", ENV)
    assert info.value.name == "steps"
    assert "steps.nope" in str(info.value)


def test_environment_shadows_builtins() -> None:
    assert evaluate("len", {"len": 3}) == 3
    assert evaluate("let + 1", {"let": 1}) == 2
    assert evaluate("map", {"map": {"k": "v"}}) == {"k": "v"}
