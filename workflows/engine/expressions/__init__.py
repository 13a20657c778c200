"""The expression languages of Argo templates.

* ``evaluate_when``: ``when:`` conditions after ``{{...}}`` substitution (govaluate, as Argo uses it).
* ``evaluate``: ``{{=...}}`` tags, ``depends``-free ``expression:`` fields (expr-lang subset with Argo's
  ``asInt``/``asFloat``/``jsonpath``/``toJson`` and the ``sprig`` helpers).
* ``nest``: the engine's flat dotted scope as the nested environment expressions see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflows.engine.expressions._errors import ExpressionError, ExpressionSyntaxError, UndefinedName
from workflows.engine.expressions._govaluate import evaluate_when
from workflows.engine.expressions._scope import nest

__all__ = [
    "ExpressionError",
    "ExpressionSyntaxError",
    "UndefinedName",
    "evaluate",
    "evaluate_traced",
    "evaluate_when",
    "nest",
]


def evaluate(expr: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate an expr-lang expression; ``variables`` is nested (``nest(scope)``) or flat with dotted keys."""
    return evaluate_traced(expr, variables)[0]


def evaluate_traced(expr: str, variables: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """:func:`evaluate`, also returning the references that were absent or nil (maybe known in a later pass).

    On failure the ExpressionError's ``missing`` lists them, so a caller can tell "not known yet" from a bug.
    """
    # start-up speed: the expr-lang evaluator (builtins, sprig) loads on the first ``{{= …}}``, not with ``when``
    from workflows.engine.expressions._expr_eval import run_traced

    env = nest(variables) if any("." in key for key in variables) else dict(variables)
    return run_traced(expr, env)
