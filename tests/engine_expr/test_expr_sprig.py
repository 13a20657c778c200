"""sprig helpers (operand last, cast conversions) and Go's text forms of results."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from workflows.engine.expressions import ExpressionError, evaluate
from workflows.engine.expressions._gofmt import go_json, go_string
from workflows.engine.templating import substitute

ENV: dict[str, Any] = {"text": "  Hello World  ", "csv": "a,b,c", "items": ["b", "a"], "num": "42", "none": None}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sprig.trim(text)", "Hello World"),
        ("sprig.upper('abc')", "ABC"),
        ("sprig.lower('ABC')", "abc"),
        ("sprig.title('hello world')", "Hello World"),
        ("sprig.replace('o', '0', 'foo')", "f00"),
        ("sprig.trimAll('$', '$5.00$')", "5.00"),
        ("sprig.trimPrefix('v', 'v1.2')", "1.2"),
        ("sprig.trimSuffix('.tar', 'x.tar')", "x"),
        ("sprig.contains('ell', 'hello')", True),
        ("sprig.hasPrefix('he', 'hello')", True),
        ("sprig.hasSuffix('lo', 'hello')", True),
        ("sprig.repeat(3, 'ab')", "ababab"),
        ("sprig.substr(1, 3, 'hello')", "el"),
        ("sprig.trunc(3, 'hello')", "hel"),
        ("sprig.abbrev(5, 'hello world')", "he..."),
        ("sprig.quote('a', 'b')", '"a" "b"'),
        ("sprig.squote('a')", "'a'"),
        ("sprig.cat('a', 1, 'b')", "a 1 b"),
        ("sprig.indent(2, 'a\nb')", "  a\n  b"),
        ("sprig.nindent(2, 'a')", "\n  a"),
        ("sprig.nospace('a b c')", "abc"),
        ("sprig.split(',', csv)._1", "b"),
        ("sprig.splitList(',', csv)", ["a", "b", "c"]),
        ("sprig.join('-', items)", "b-a"),
        ("sprig.sortAlpha(items)", ["a", "b"]),
        ("sprig.regexMatch('^[a-z]+$', 'abc')", True),
        ("sprig.regexFind('[0-9]+', 'ab12cd34')", "12"),
        ("sprig.regexFindAll('[0-9]+', 'ab12cd34', -1)", ["12", "34"]),
        ("sprig.regexReplaceAll('a(x*)b', '-ab-axxb-', '${1}W')", "-W-xxW-"),
        ("sprig.regexReplaceAllLiteral('a(x*)b', '-ab-', '${1}')", "-${1}-"),
        ("sprig.b64enc('hello')", "aGVsbG8="),
        ("sprig.b64dec('aGVsbG8=')", "hello"),
        ("sprig.b64dec('ab%%')", "illegal base64 data at input byte 2"),  # sprig returns Go's error text
        ("sprig.b32enc('hi')", "NBUQ===="),
        ("sprig.sha256sum('')", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("sprig.toString(12)", "12"),
        ("sprig.toStrings([1, 'a'])", ["1", "a"]),
        # integer helpers go through cast.ToInt64
        ("sprig.int(num)", 42),
        ("sprig.int('3.0')", 3),
        ("sprig.int('junk')", 0),
        ("sprig.int('0x10')", 16),
        ("sprig.int('010')", 8),
        ("sprig.int(7.9)", 7),
        ("sprig.int64(true)", 1),
        ("sprig.atoi('12')", 12),
        ("sprig.add(1, '2', 3.7)", 6),
        ("sprig.add1(num)", 43),
        ("sprig.sub(10, 3)", 7),
        ("sprig.mul(2, 3, 4)", 24),
        ("sprig.div(7, 2)", 3),
        ("sprig.div(-7, 2)", -3),
        ("sprig.mod(-7, 3)", -1),
        ("sprig.max(3, 9, 4)", 9),
        ("sprig.min(3, 9, 4)", 3),
        ("sprig.addf(1.5, 2)", 3.5),
        ("sprig.subf(5, 1.5)", 3.5),
        ("sprig.mulf(1.5, 2)", 3.0),
        ("sprig.divf(1, 4)", 0.25),
        ("sprig.maxf(1.5, 2.5)", 2.5),
        ("sprig.floor(1.7)", 1.0),
        ("sprig.ceil(1.2)", 2.0),
        ("sprig.round(3.14159, 2)", 3.14),
        ("sprig.float64('2.5')", 2.5),
        ("sprig.seq(3)", "1 2 3"),
        ("sprig.seq(2, 4)", "2 3 4"),
        ("sprig.until(3)", [0, 1, 2]),
        ("sprig.untilStep(0, 10, 4)", [0, 4, 8]),
        # defaults and emptiness
        ("sprig.default('dflt', '')", "dflt"),
        ("sprig.default('dflt', none)", "dflt"),
        ("sprig.default('dflt', 'given')", "given"),
        ("sprig.default('dflt', 0)", "dflt"),
        ("sprig.empty('')", True),
        ("sprig.empty([])", True),
        ("sprig.empty(0)", True),
        ("sprig.empty('x')", False),
        ("sprig.coalesce('', none, 'x')", "x"),
        ("sprig.ternary('yes', 'no', true)", "yes"),
        ("sprig.ternary('yes', 'no', false)", "no"),
        # data
        ("sprig.toJson({b: 1, a: [true]})", '{"a":[true],"b":1}'),
        ("sprig.fromJson('{\"a\": 1}').a", 1.0),
        ("sprig.list(1, 2)", [1, 2]),
        ("sprig.first([1, 2])", 1),
        ("sprig.last([1, 2])", 2),
        ("sprig.rest([1, 2, 3])", [2, 3]),
        ("sprig.initial([1, 2, 3])", [1, 2]),
        ("sprig.append([1], 2)", [1, 2]),
        ("sprig.prepend([1], 0)", [0, 1]),
        ("sprig.concat([1], [2])", [1, 2]),
        ("sprig.reverse([1, 2])", [2, 1]),
        ("sprig.uniq([1, 1, 2])", [1, 2]),
        ("sprig.without([1, 2, 3], 2)", [1, 3]),
        ("sprig.has(2, [1, 2])", True),
        ("sprig.compact([1, '', 0, 'a'])", [1, "a"]),
        ("sprig.slice([1, 2, 3], 1)", [2, 3]),
        ("sprig.dict('a', 1, 'b', 2)", {"a": 1, "b": 2}),
        ("sprig.get({a: 1}, 'a')", 1),
        ("sprig.get({a: 1}, 'z')", ""),
        ("sprig.hasKey({a: 1}, 'a')", True),
        ("sprig.keys({a: 1, b: 2})", ["a", "b"]),
        ("sprig.pick({a: 1, b: 2}, 'a')", {"a": 1}),
        ("sprig.omit({a: 1, b: 2}, 'a')", {"b": 2}),
        ("sprig.merge({a: 1}, {a: 2, b: 3})", {"a": 1, "b": 3}),
        ("sprig.pluck('a', {a: 1}, {a: 2}, {b: 3})", [1, 2]),
        ("sprig.kindOf([])", "slice"),
        ("sprig.kindIs('string', 'x')", True),
        # dates: Go reference-time layouts
        ("sprig.date('2006', '2024-05-01T10:00:00Z')", "2024"),
        ("sprig.date('2006-01-02T15:04:05Z07:00', '2024-05-01T10:03:09Z')", "2024-05-01T10:03:09Z"),
        ("sprig.date('Mon Jan _2 3:04PM', '2024-05-06T15:04:00Z')", "Mon May  6 3:04PM"),
        ("sprig.date('02/01/06 .000', '2024-05-01T10:00:00.123Z')", "01/05/24 .123"),
        ("sprig.htmlDate('2024-05-01T10:00:00Z')", "2024-05-01"),
        ("sprig.unixEpoch('1970-01-02T00:00:00Z')", "86400"),
        ("sprig.date('2006', 0)", "1970"),
    ],
)
def test_sprig(expr: str, expected: Any) -> None:
    result = evaluate(expr, ENV)
    assert result == expected
    assert type(result) is type(expected)


def test_random_helpers_have_the_asked_shape() -> None:
    assert re.fullmatch(r"[A-Za-z0-9]{12}", evaluate("sprig.randAlphaNum(12)", {}))
    assert re.fullmatch(r"[0-9]{5}", evaluate("sprig.randNumeric(5)", {}))
    assert re.fullmatch(r"[0-9a-f-]{36}", evaluate("sprig.uuidv4()", {}))


def test_sprig_now_is_current() -> None:
    assert evaluate("sprig.now().Year()", {}) == dt.datetime.now(dt.UTC).year


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("sprig.div(1, 0)", "divide by zero"),
        ("sprig.nope('x')", "is not a function"),
        ("sprig.upper()", "sprig.upper()"),
    ],
)
def test_sprig_errors_name_the_helper(expr: str, why: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(why)):
        evaluate(expr, {})


@pytest.mark.parametrize(
    ("value", "text", "json_text"),
    [
        (None, "<nil>", "null"),
        (True, "true", "true"),
        (3, "3", "3"),
        (3.0, "3", "3"),
        (22.4, "22.4", "22.4"),
        (1e6, "1e+06", "1000000"),
        (123456.0, "123456", "123456"),
        (1234567.5, "1.2345675e+06", "1234567.5"),
        (1e-05, "1e-05", "0.00001"),
        (1e-7, "1e-07", "1e-7"),
        (1e21, "1e+21", "1e+21"),
        (-2.5, "-2.5", "-2.5"),
        ("a<b&c", "a<b&c", '"a\\u003cb\\u0026c"'),
        ([1, "a", [2.0]], "[1 a [2]]", '[1,"a",[2]]'),
        ({"b": 1, "a": {"c": None}}, "map[a:map[c:<nil>] b:1]", '{"a":{"c":null},"b":1}'),
        ("é", "é", '"é"'),
    ],
)
def test_go_text_forms(value: Any, text: str, json_text: str) -> None:
    assert go_string(value) == text
    assert go_json(value) == json_text


def test_results_are_printed_like_go_in_templates() -> None:
    scope = {"inputs.parameters.n": "4"}
    assert substitute("{{=asInt(inputs.parameters.n) / 2}}", scope) == "2"
    assert substitute("{{=asInt(inputs.parameters.n) / 3}}", scope) == "1.3333333333333333"
    assert substitute("{{=[1, 'a']}}", scope) == "[1 a]"
    assert substitute("{{={x: 1}}}", scope) == "map[x:1]"
    assert substitute("{{=1000000.0}}", scope) == "1e+06"
