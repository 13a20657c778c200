"""``when:`` conditions: govaluate semantics with bare words as strings, as Argo evaluates them."""

from __future__ import annotations

import pytest

from workflows.engine.expressions import ExpressionError, evaluate_when


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # bare words become strings
        ("heads == heads", True),
        ("tails == heads", False),
        ("Succeeded != Failed", True),
        ("YES == yes", False),
        # numbers are float64 and compare numerically
        ("5 > 3", True),
        ("3 < 10", True),
        ("10 <= 10", True),
        ("2.5 >= 2.50", True),
        ("3 == 3.0", True),
        ("0x10 == 16", True),
        # a number never equals a string
        ("3 == '3'", False),
        ('3 != "3"', True),
        # strings order lexically
        ("'abc' < 'abd'", True),
        ("b > a", True),
        # booleans
        ("true", True),
        ("false", False),
        ("true == true", True),
        ("false == true", False),
        ("true == 'true'", False),
        ("!false", True),
        ("!(1 > 2)", True),
        # regular expressions search anywhere in the text
        ("'foo' =~ 'f.*'", True),
        ("heads =~ hea", True),
        ("tails =~ '^hea'", False),
        ("tails !~ hea", True),
        # logic, precedence and parentheses
        ("1 == 1 && 2 == 2", True),
        ("1 == 2 || 2 == 2", True),
        ("1 == 2 || 2 == 3 && 3 == 3", False),
        ("(1 == 2 || 2 == 2) && 3 == 3", True),
        ("true || false && false", True),
        # arithmetic and concatenation
        ("1 + 2 == 3", True),
        ("2 * 3 + 1 == 7", True),
        ("2 ** 3 == 8", True),
        ("7 % 4 == 3", True),
        ("-1 < 0", True),
        ("'a' + 'b' == ab", True),
        ("a + 1 == a1", True),
        # membership, ternary, coalescing
        ("2 in (1, 2, 3)", True),
        ("x in (a, b)", False),
        ("(1 > 0 ? yes : no) == yes", True),
        ("(1 < 0 ? yes : no) == no", True),
        # quoted text may hold spaces and escaped quotes
        ("'a b' == \"a b\"", True),
        ("'it\\'s' == \"it's\"", True),
        ("[escaped var] == 'escaped var'", True),
    ],
)
def test_conditions(condition: str, expected: bool) -> None:
    assert evaluate_when(condition) is expected


@pytest.mark.parametrize(
    ("condition", "why"),
    [
        ("", "empty"),
        ("heads", "expected a boolean"),
        ("1 + 1", "expected a boolean"),
        ("hello world == x", "unexpected"),
        ("a-b == a-b", "not a number"),  # dashes are minus signs: quote such values
        ("heads && tails", "not a bool"),
        ("1 < heads", "cannot be compared"),
        ("(1 == 1", "missing ')'"),
        ("1 == 1)", "unexpected"),
        ("'open == x", "unclosed quote"),
        ("a.b == c", "accessor"),
        ("1 === 1", "invalid operator"),
        ("x in y", "not an array"),
        ("{{steps.a.outputs.result}} == x", "{{steps.a.outputs.result}} was not substituted"),
        ("{ x == x", "invalid character"),
        ("'x' =~ '('", "invalid regular expression"),
        ("1.2.3 == 1", "numeric"),
        ("!heads", "not a bool"),
        ("-heads == 1", "not a number"),
    ],
)
def test_errors_name_the_condition(condition: str, why: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate_when(condition)
    assert repr(condition) in str(info.value)
    assert why in str(info.value)
    assert info.value.hint


def test_division_by_zero_follows_go_floats() -> None:
    assert evaluate_when("1 / 0 > 1000000") is True
    assert evaluate_when("-1 / 0 < 0") is True
