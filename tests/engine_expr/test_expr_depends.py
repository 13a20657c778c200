"""depends / dependencies: parsing, references and evaluation against a truth-table oracle."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.spec.depends import (
    TASK_RESULTS,
    DependsSyntaxError,
    TaskOutcome,
    dependencies_to_depends,
    depends_task_names,
    evaluate_depends,
    parse_depends,
)

PHASES = ("Succeeded", "Failed", "Error", "Skipped", "Omitted", "Daemoned")


def done(phase: str, *children: str, **kwargs: bool) -> TaskOutcome:
    return TaskOutcome(phase, tuple(children), **kwargs)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("A", {"A"}),
        ("B && C", {"B", "C"}),
        ("A && (C.Succeeded || C.Failed)", {"A", "C"}),
        ("should-execute-2.Succeeded || should-not-execute", {"should-execute-2", "should-not-execute"}),
        ("!flip-coin.Failed", {"flip-coin"}),
        ("B.Failed && C", {"B", "C"}),
        ("  a  &&b||c ", {"a", "b", "c"}),
        ("", set()),
    ],
)
def test_task_names(expr: str, names: set[str]) -> None:
    assert depends_task_names(expr) == names


@pytest.mark.parametrize(
    "expr",
    ["A &&", "&& A", "(A || B", "A || B)", "A.succeeded", "A.Finished", "A & B", "A | B", "A B", "A - B", "()", "!"],
)
def test_malformed_expressions_name_themselves(expr: str) -> None:
    with pytest.raises(DependsSyntaxError) as info:
        parse_depends(expr)
    assert repr(expr) in str(info.value)


def test_unknown_result_lists_the_valid_ones() -> None:
    with pytest.raises(DependsSyntaxError, match="AnySucceeded"):
        parse_depends("A.Finished")


def test_dependencies_list_becomes_conjunction() -> None:
    assert dependencies_to_depends(["a", "b", "c"]) == "a && b && c"
    assert dependencies_to_depends([]) == ""
    assert evaluate_depends(dependencies_to_depends([]), {}) is True


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Succeeded", True),
        ("Skipped", True),
        ("Daemoned", True),
        ("Failed", False),
        ("Error", False),
        ("Omitted", False),
    ],
)
def test_bare_name_means_succeeded_skipped_or_daemoned(phase: str, expected: bool) -> None:
    assert evaluate_depends("A", {"A": done(phase)}) is expected


def test_continue_on_widens_the_bare_name_only() -> None:
    failed = done("Failed", continue_on_failed=True)
    errored = done("Error", continue_on_error=True)
    assert evaluate_depends("A", {"A": failed}) is True
    assert evaluate_depends("A", {"A": errored}) is True
    assert evaluate_depends("A.Succeeded", {"A": failed}) is False
    assert evaluate_depends("A", {"A": done("Failed", continue_on_error=True)}) is False


@pytest.mark.parametrize(
    ("result", "phase"),
    [("Succeeded", "Succeeded"), ("Failed", "Failed"), ("Errored", "Error"), ("Skipped", "Skipped"),
     ("Omitted", "Omitted"), ("Daemoned", "Daemoned")],
)  # fmt: skip
def test_each_result_matches_exactly_its_phase(result: str, phase: str) -> None:
    for other in PHASES:
        assert evaluate_depends(f"A.{result}", {"A": done(other)}) is (other == phase)


def test_fan_out_results() -> None:
    assert evaluate_depends("A.AnySucceeded", {"A": done("Failed", "Failed", "Succeeded")}) is True
    assert evaluate_depends("A.AnySucceeded", {"A": done("Failed", "Failed", "Error")}) is False
    assert evaluate_depends("A.AllFailed", {"A": done("Failed", "Failed", "Failed")}) is True
    assert evaluate_depends("A.AllFailed", {"A": done("Failed", "Failed", "Error")}) is False
    assert evaluate_depends("A.AllFailed", {"A": done("Failed")}) is False  # no children: not "all failed"


def test_waits_for_every_referenced_task_like_argo() -> None:
    assert evaluate_depends("A || B", {"A": done("Succeeded")}) is None
    assert evaluate_depends("A || B", {"A": done("Succeeded"), "B": done("Running")}) is None
    assert evaluate_depends("A || B", {"A": done("Succeeded"), "B": done("Pending")}) is None
    assert evaluate_depends("A || B", {"A": done("Succeeded"), "B": done("Failed")}) is True


def test_dag_enhanced_depends_example() -> None:
    """examples/dag-enhanced-depends.yaml: A passes, B passes, C fails."""
    outcomes = {"A": done("Succeeded"), "B": done("Succeeded"), "C": done("Failed")}
    assert evaluate_depends("A && (C.Succeeded || C.Failed)", outcomes) is True  # should-execute-1
    assert evaluate_depends("B || C", outcomes) is True  # should-execute-2
    assert evaluate_depends("B && C", outcomes) is False  # should-not-execute -> Omitted
    outcomes |= {"should-execute-2": done("Succeeded"), "should-not-execute": done("Omitted")}
    assert evaluate_depends("should-execute-2.Succeeded || should-not-execute", outcomes) is True


def test_canonical_text_round_trips() -> None:
    tree = parse_depends("!(a||b.Failed)&&c")
    assert str(tree) == "!(a || b.Failed) && c"
    assert parse_depends(str(tree)) == tree


# --- property test: our evaluator against a truth-table oracle built from the tree we generated ----------------

NAMES = ("a", "b-1", "c")
ref = st.tuples(st.sampled_from(NAMES), st.sampled_from((None, *TASK_RESULTS)))


def _exprs(leaf: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(
        leaf,
        lambda inner: st.one_of(st.tuples(st.just("!"), inner), st.tuples(st.sampled_from(("&&", "||")), inner, inner)),
        max_leaves=8,
    )


def _render(node: tuple) -> str:
    if node[0] == "!":
        return f"!({_render(node[1])})"
    if node[0] in ("&&", "||"):
        return f"({_render(node[1])}) {node[0]} ({_render(node[2])})"
    name, result = node
    return name if result is None else f"{name}.{result}"


def _oracle(node: tuple, world: dict[str, tuple[str, tuple[str, ...]]]) -> bool:
    if node[0] == "!":
        return not _oracle(node[1], world)
    if node[0] == "&&":
        return _oracle(node[1], world) and _oracle(node[2], world)
    if node[0] == "||":
        return _oracle(node[1], world) or _oracle(node[2], world)
    name, result = node
    phase, children = world[name]
    table = {
        None: phase in ("Succeeded", "Skipped", "Daemoned"),
        "Succeeded": phase == "Succeeded",
        "Failed": phase == "Failed",
        "Errored": phase == "Error",
        "Skipped": phase == "Skipped",
        "Omitted": phase == "Omitted",
        "Daemoned": phase == "Daemoned",
        "AnySucceeded": "Succeeded" in children,
        "AllFailed": len(children) > 0 and set(children) == {"Failed"},
    }
    return table[result]


@settings(max_examples=300, deadline=None)
@given(
    tree=_exprs(ref),
    phases=st.tuples(*[st.sampled_from(PHASES) for _ in NAMES]),
    children=st.tuples(*[st.lists(st.sampled_from(PHASES), max_size=3).map(tuple) for _ in NAMES]),
)
def test_matches_truth_table_oracle(tree: tuple, phases: tuple, children: tuple) -> None:
    world = {name: (phase, kids) for name, phase, kids in zip(NAMES, phases, children, strict=True)}
    outcomes = {name: TaskOutcome(phase, kids) for name, (phase, kids) in world.items()}
    text = _render(tree)
    assert evaluate_depends(text, outcomes) is _oracle(tree, world)


def test_all_combinations_of_two_bare_names() -> None:
    for first, second in itertools.product(PHASES, repeat=2):
        outcomes = {"x": done(first), "y": done(second)}
        ok = {"Succeeded", "Skipped", "Daemoned"}
        assert evaluate_depends("x && !y", outcomes) is (first in ok and second not in ok)
