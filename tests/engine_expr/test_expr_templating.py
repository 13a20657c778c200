"""``substitute``: whitespace-tolerant tags, expressions with braces and quotes, strict and lenient passes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows.engine.expressions import ExpressionError, ExpressionSyntaxError
from workflows.engine.templating import UnresolvedReference, find_tags, substitute, substitute_obj, to_text

SCOPE: dict[str, Any] = {
    "inputs.parameters.x": "hello",
    "inputs.parameters.n": "3",
    "workflow.name": "wf-abc",
    "item": {"key": "k1", "n": 2},
    "item.key": "k1",
    "retries": 0,
    "steps.s.outputs.result": "done",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{inputs.parameters.x}}", "hello"),
        ("{{ inputs.parameters.x }}", "hello"),
        ("{{\tinputs.parameters.x\n}}", "hello"),
        ("say {{inputs.parameters.x}} to {{workflow.name}}!", "say hello to wf-abc!"),
        ("{{item}}", '{"key":"k1","n":2}'),
        ("{{item.key}}", "k1"),
        ("{{retries}}", "0"),
        ("no tags at all", "no tags at all"),
        ("{{=asInt(inputs.parameters.n) + 1}}", "4"),
        ("{{= asInt(inputs.parameters.n) + 1 }}", "4"),
        ("{{ =asInt(inputs.parameters.n) + 1}}", "4"),
        ("{{=toJson({a: {b: 1}})}}", '{"a":{"b":1}}'),
        ("{{='}}' + \"{{\"}}", "}}{{"),
        ("{{=item.key + '-' + string(item.n)}}", "k1-2"),
        ("{{=steps.s.outputs.result == 'done' ? 'yes' : 'no'}}", "yes"),
        ("a{{=1}}b{{=2}}c", "a1b2c"),
        ("{{inputs.parameters.x}}{{=1+1}}", "hello2"),
        ("unclosed {{ tag", "unclosed {{ tag"),
    ],
)
def test_substitute(text: str, expected: str) -> None:
    assert substitute(text, SCOPE) == expected
    assert substitute(text, SCOPE, strict=True) == expected


@pytest.mark.parametrize(
    "text",
    [
        "{{tasks.a.outputs.result}}",
        "before {{ workflow.unknown }} after",
        "{{=tasks.a.outputs.result}}",
        "{{=asInt(tasks.a.outputs.result) + 1}}",
        "{{=inputs.parameters.missing}}",  # nil result: maybe known later
        "{{=workflow.status == 'Succeeded'}}",  # exit-handler variables wait for their pass
        "{{=asInt(steps.s.outputs.missing) + 1}}",  # fails *because* an input is unknown yet
        "{{=steps.later.outputs.result}}",  # a step that has not run: its map is absent
        "{{=asInt(inputs.parameters.pending) * 2}}",  # a value that still holds an unsubstituted tag
    ],
)
def test_lenient_pass_leaves_unknown_tags_untouched(text: str) -> None:
    scope = {**SCOPE, "inputs.parameters.pending": "{{workflow.parameters.p}}"}
    assert substitute(text, scope) == text


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("{{tasks.a.outputs.result}}", "tasks.a.outputs.result"),
        ("x {{ workflow.unknown }} y", "workflow.unknown"),
        ("{{=tasks.a.outputs.result}}", "tasks"),
        ("{{=inputs.parameters.missing}}", "inputs.parameters.missing"),
        ("{{=asInt(steps.s.outputs.missing) + 1}}", "steps.s.outputs.missing"),
        ("{{=steps.later.outputs.result}}", "steps.later"),
    ],
)
def test_strict_pass_names_the_unresolved_reference(text: str, name: str) -> None:
    with pytest.raises(UnresolvedReference) as info:
        substitute(text, SCOPE, strict=True)
    assert info.value.name == name
    assert name in str(info.value)
    assert info.value.hint


@pytest.mark.parametrize("strict", [False, True])
def test_real_errors_are_raised_in_every_pass(strict: bool) -> None:
    with pytest.raises(ExpressionError, match="cannot convert 'x' to int"):
        substitute("{{=asInt('x')}}", SCOPE, strict=strict)
    with pytest.raises(ExpressionError, match="string \\+ int"):
        substitute("{{=inputs.parameters.x + 1}}", SCOPE, strict=strict)


def test_strict_pass_fails_on_a_nil_literal() -> None:
    with pytest.raises(ExpressionError, match="evaluated to nil"):
        substitute("{{=nil}}", SCOPE, strict=True)


@pytest.mark.parametrize("text", ["{{=1 +}}", "{{= 'unbalanced }} quote", "x {{=(1}} y"])
def test_malformed_expressions_always_raise(text: str) -> None:
    with pytest.raises(ExpressionSyntaxError):
        substitute(text, SCOPE)


def test_substitute_obj_is_deep_and_leaves_the_input_alone() -> None:
    template = {
        "args": ["{{inputs.parameters.x}}", 3, None, True],
        "env": [{"name": "N", "value": "{{=asInt(inputs.parameters.n) * 2}}"}],
        "label-{{inputs.parameters.x}}": "keys are templated too, as Argo templates the whole JSON text",
    }
    result = substitute_obj(template, SCOPE)
    assert result == {
        "args": ["hello", 3, None, True],
        "env": [{"name": "N", "value": "6"}],
        "label-hello": "keys are templated too, as Argo templates the whole JSON text",
    }
    assert template["args"][0] == "{{inputs.parameters.x}}"


def test_find_tags_reports_positions() -> None:
    text = "a {{ x }} b {{={k: 1}.k}} c"
    assert find_tags(text) == [(2, 9, "x"), (12, 25, "={k: 1}.k")]


@pytest.mark.parametrize(
    ("value", "text"), [("s", "s"), (2, "2"), (2.0, "2"), (True, "true"), (None, ""), ([1], "[1]")]
)
def test_to_text(value: Any, text: str) -> None:
    assert to_text(value) == text


NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,8}(\.[a-z][a-z0-9-]{0,8}){0,3}", fullmatch=True)
VALUES = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)


@given(scope=st.dictionaries(NAMES, VALUES, min_size=1, max_size=5), filler=VALUES)
def test_every_known_name_is_replaced_and_nothing_else_changes(scope: dict[str, str], filler: str) -> None:
    names = sorted(scope)
    text = filler.join("{{ " + name + " }}" for name in names)
    assert substitute(text, scope, strict=True) == filler.join(scope[name] for name in names)
    assert substitute(filler, scope) == filler
