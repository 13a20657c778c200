"""Whatever text users write, the parsers answer with a value or with *their* error, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.engine.expressions import ExpressionError, evaluate, evaluate_when
from workflows.engine.templating import substitute
from workflows.spec.depends import DependsSyntaxError, parse_depends

# Mostly expression-like characters, so the fuzzer reaches deep into the grammars.
ALPHABET = st.sampled_from([*"abcxyz019 _.-+*/%!=<>&|?:()[]{}#'\"`,$@~^\\\n", "in", "and", "not", "nil", "&&", "0x"])
TEXT = st.lists(ALPHABET, max_size=30).map("".join)
ENV = {"a": 1, "b": "two", "c": [1, 2], "x": {"y": None}}


@settings(max_examples=200, deadline=None)
@given(text=TEXT)
def test_expr_lang_fails_only_with_expression_errors(text: str) -> None:
    try:
        evaluate(text, ENV)
    except ExpressionError as exc:
        assert repr(text) in str(exc)


@settings(max_examples=200, deadline=None)
@given(text=TEXT)
def test_when_fails_only_with_expression_errors(text: str) -> None:
    try:
        assert isinstance(evaluate_when(text), bool)
    except ExpressionError as exc:
        assert repr(text) in str(exc)


@settings(max_examples=150, deadline=None)
@given(text=TEXT)
def test_depends_fails_only_with_syntax_errors(text: str) -> None:
    try:
        parse_depends(text)
    except DependsSyntaxError as exc:
        assert repr(text) in str(exc)


@settings(max_examples=150, deadline=None)
@given(text=TEXT)
def test_substitute_never_crashes(text: str) -> None:
    try:
        result = substitute("{{" + text + "}} and {{=" + text + "}}", {"a": "1"})
    except ExpressionError:
        return
    assert isinstance(result, str)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    deep = "(" * 5000 + "a" + ")" * 5000
    with pytest.raises(ExpressionError, match="deeply"):
        evaluate(deep, ENV)
    with pytest.raises(ExpressionError, match="deeply"):
        evaluate_when(deep)
    with pytest.raises(DependsSyntaxError, match="deeply"):
        parse_depends(deep)
