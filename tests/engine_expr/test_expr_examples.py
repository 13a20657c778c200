"""Every ``when:``, ``expression:`` and ``{{=...}}`` of Argo's examples, evaluated against a plausible scope.

The tables below are keyed by the exact text found in the example files; a completeness test fails when an
example holds an expression the tables do not cover, so new upstream examples cannot slip through unnoticed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
import yaml

from driftloop.config import get_settings
from workflows.engine.expressions import evaluate, evaluate_when
from workflows.engine.templating import substitute

EXAMPLES = get_settings().shared_dir / "argo-workflows" / "examples"
pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"Argo examples not found at {EXAMPLES}")


def _collect(node: Any, found: set[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("when", "expression") and isinstance(value, str):
                found.add((key, value))
            _collect(value, found)
    elif isinstance(node, list):
        for item in node:
            _collect(item, found)
    elif isinstance(node, str) and "{{=" in node:
        found.add(("template", node))


def example_texts() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        try:
            documents = list(yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        except yaml.YAMLError:
            continue  # three files are malformed upstream (see shared/README.md)
        for document in documents:
            _collect(document, found)
    return found


FLIP = "steps.flip-coin.outputs.result"
AGAIN = "steps.flip-again.outputs.result"
COMPLEX = (
    "( {{steps.flip-coin.outputs.result}} == heads &&\n  {{steps.flip-again.outputs.result}} == tails\n) || "
    "( {{steps.flip-coin.outputs.result}} == tails &&\n  {{steps.flip-again.outputs.result}} == tails )"
)
CRON = "{{= cronworkflow.lastScheduledTime == nil || (now() - cronworkflow.lastScheduledTime).Seconds() > 360 }}"
LONG_AGO = "2020-01-01T00:00:00Z"
JUST_NOW = "<just now>"  # replaced by the current time when the test runs, not when it is collected


def _at_run_time(scope: dict[str, Any]) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    return {key: now if value == JUST_NOW else value for key, value in scope.items()}
ALL_PARAMS_JSON = json.dumps([{"name": "should-print", "value": "true"}])

# raw `when` -> [(scope, expected)]
WHENS: dict[str, list[tuple[dict[str, Any], bool]]] = {
    "false": [({}, False)],
    "{{steps.flip-coin.outputs.result}} == heads": [({FLIP: "heads"}, True), ({FLIP: "tails"}, False)],
    "{{steps.flip-coin.outputs.result}} == tails": [({FLIP: "tails"}, True), ({FLIP: "heads"}, False)],
    "{{tasks.flip-coin.outputs.result}} == heads": [({"tasks.flip-coin.outputs.result": "heads"}, True)],
    "{{tasks.flip-coin.outputs.result}} == tails": [({"tasks.flip-coin.outputs.result": "heads"}, False)],
    COMPLEX: [
        ({FLIP: "heads", AGAIN: "tails"}, True),
        ({FLIP: "tails", AGAIN: "tails"}, True),
        ({FLIP: "heads", AGAIN: "heads"}, False),
        ({FLIP: "tails", AGAIN: "heads"}, False),
    ],
    "{{steps.flip-again.outputs.result}} =~ hea": [({AGAIN: "heads"}, True), ({AGAIN: "tails"}, False)],
    "{{steps.flip-again.outputs.result}} =~ tai": [({AGAIN: "tails"}, True), ({AGAIN: "heads"}, False)],
    "{{inputs.parameters.should-print}} == true": [
        ({"inputs.parameters.should-print": "true"}, True),
        ({"inputs.parameters.should-print": "false"}, False),
    ],
    "{{= inputs.parameters[\"should-print\"] == 'true'}}": [
        ({"inputs.parameters.should-print": "true"}, True),
        ({"inputs.parameters.should-print": "false"}, False),
    ],
    "{{=jsonpath(workflow.parameters.json, '$[0].value') == 'true'}}": [
        ({"workflow.parameters.json": ALL_PARAMS_JSON}, True),
        ({"workflow.parameters.json": ALL_PARAMS_JSON.replace('"true"', '"false"')}, False),
    ],
    CRON: [
        ({"cronworkflow.lastScheduledTime": LONG_AGO}, True),
        ({"cronworkflow.lastScheduledTime": JUST_NOW}, False),
        ({"cronworkflow.lastScheduledTime": None}, True),
    ],
    "{{status}} == Succeeded": [({"status": "Succeeded"}, True), ({"status": "Failed"}, False)],
    "{{workflow.status}} == Succeeded": [
        ({"workflow.status": "Succeeded"}, True),
        ({"workflow.status": "Error"}, False),
    ],
    "{{workflow.status}} != Succeeded": [
        ({"workflow.status": "Failed"}, True),
        ({"workflow.status": "Succeeded"}, False),
    ],
    "{{inputs.parameters.num}} != 1 && {{inputs.parameters.num}} != 2": [
        ({"inputs.parameters.num": "5"}, True),
        ({"inputs.parameters.num": "2"}, False),
        ({"inputs.parameters.num": "1"}, False),
    ],
    "{{inputs.parameters.num-1}} != 1 && {{inputs.parameters.num-1}} != 2": [
        ({"inputs.parameters.num-1": "4"}, True),
        ({"inputs.parameters.num-1": "1"}, False),
    ],
    "{{steps.approval.outputs.parameters.approve}} == YES": [
        ({"steps.approval.outputs.parameters.approve": "YES"}, True),
        ({"steps.approval.outputs.parameters.approve": "NO"}, False),
    ],
    "{{item.evenness}} == even": [
        ({"item": {"num": 2, "evenness": "even"}, "item.evenness": "even"}, True),
        ({"item": {"num": 3, "evenness": "odd"}, "item.evenness": "odd"}, False),
    ],
    # numbers compare as numbers: "3" < "10" would be false as text
    "{{steps.iterate-counter.outputs.result}} < {{inputs.parameters.limit}}": [
        ({"steps.iterate-counter.outputs.result": "3", "inputs.parameters.limit": "10"}, True),
        ({"steps.iterate-counter.outputs.result": "10", "inputs.parameters.limit": "10"}, False),
    ],
    "{{steps.submit-resource.status}} == Failed": [
        ({"steps.submit-resource.status": "Failed"}, True),
        ({"steps.submit-resource.status": "Succeeded"}, False),
    ],
    "{{steps.flakey-container.status}} == Failed": [({"steps.flakey-container.status": "Failed"}, True)],
    "{{steps.flakey-container.status}} == Succeeded": [({"steps.flakey-container.status": "Failed"}, False)],
}

RETRY = (
    'asInt(lastRetry.exitCode) > 1 && lastRetry.status != "Error" && asInt(lastRetry.duration) < 120 && '
    "({{inputs.parameters.safe-to-retry}} == true || lastRetry.message matches 'imminent node shutdown|pod deleted')"
)


def _last_retry(exit_code: str, status: str = "Failed", duration: str = "10", message: str = "") -> dict[str, str]:
    return {
        "lastRetry.exitCode": exit_code,
        "lastRetry.status": status,
        "lastRetry.duration": duration,
        "lastRetry.message": message,
    }


STEP_STATUS = {"steps.step-1.status": "Running", "steps.step2.status": "Succeeded"}
FIB = "steps.fibonacci-helper.outputs.parameters.result"

# raw `expression:` -> [(scope, expected value)]; `{{...}}` inside is substituted first, as Argo does
EXPRESSIONS: dict[str, list[tuple[dict[str, Any], Any]]] = {
    "steps['flip-coin'].outputs.result == 'heads' ? steps.heads.outputs.result : steps.tails.outputs.result": [
        ({FLIP: "heads", "steps.heads.outputs.result": "it was heads"}, "it was heads"),
        (
            {FLIP: "tails", "steps.heads.outputs.result": "x", "steps.tails.outputs.result": "it was tails"},
            "it was tails",
        ),
    ],
    "tasks['flip-coin'].outputs.result == 'heads' ? tasks.heads.outputs.result : tasks.tails.outputs.result": [
        ({"tasks.flip-coin.outputs.result": "tails", "tasks.tails.outputs.result": "T"}, "T"),
    ],
    'filter(data, {# endsWith "main.log"})': [
        ({"data": ["a/main.log", "b/other.log", "c/main.log"]}, ["a/main.log", "c/main.log"]),
    ],
    "asInt(inputs.parameters.num) == 1? 1: asInt(inputs.parameters.num) == 2? 1: "
    "steps['fibonacci-helper'].outputs.parameters.result": [
        ({"inputs.parameters.num": "1"}, 1),
        ({"inputs.parameters.num": "2"}, 1),
        ({"inputs.parameters.num": "6", FIB: "8"}, "8"),
    ],
    "workflow.parameters.foo": [({"workflow.parameters.foo": "bar"}, "bar")],
    'steps.step2.status == "Running"': [(STEP_STATUS, False)],
    'steps.step2.status == "Succeeded"': [(STEP_STATUS, True)],
    'steps["step-1"].status == "Running"': [(STEP_STATUS, True)],
    'steps["step-1"].status == "Succeeded"': [(STEP_STATUS, False)],
    'workflow.status == "Running"': [({"workflow.status": "Running"}, True), ({"workflow.status": "Failed"}, False)],
    RETRY: [
        ({**_last_retry("2"), "inputs.parameters.safe-to-retry": "true"}, True),
        ({**_last_retry("1"), "inputs.parameters.safe-to-retry": "true"}, False),
        ({**_last_retry("2", status="Error"), "inputs.parameters.safe-to-retry": "true"}, False),
        ({**_last_retry("2", duration="300"), "inputs.parameters.safe-to-retry": "true"}, False),
        ({**_last_retry("2", message="pod deleted"), "inputs.parameters.safe-to-retry": "false"}, True),
        ({**_last_retry("2", message="OOMKilled"), "inputs.parameters.safe-to-retry": "false"}, False),
    ],
    "tasks.producer.outputs.parameters.msg ?? 'expr-fallback'": [
        ({"tasks.producer.status": "Skipped"}, "expr-fallback"),
        ({"tasks.producer.outputs.parameters.msg": None}, "expr-fallback"),
        ({"tasks.producer.outputs.parameters.msg": ""}, ""),  # a real empty output is not absent
        ({"tasks.producer.outputs.parameters.msg": "hello"}, "hello"),
    ],
}

CONFIG = '{"a": "1", "b": "2", "c": "3"}'
EMPLOYEES = '{"employees": [{"name": "Baris", "age":43},{"name": "Mo", "age": 42}, {"name": "Jai", "age" :44}]}'
WEATHER = '{"weekWeather": "eyJ0ZW1wcyI6IFszNCwgMjcsIDE1LCA1NywgNDZdfQo="}'
WEEK = json.dumps({"avg": 35.8, "max": 57, "min": 15})
VERBOSE = (
    "{{=\n  map([\n      jsonpath(sprig.b64dec(jsonpath(workflow.parameters.weather, '$.weekWeather')), '$.temps')\n"
    "    ], {\n      toJson({\n        avg: sprig.add(#[0], #[1], #[2], #[3], #[4]) / 5,\n"
    "        min: sprig.min(#[0], #[1], #[2], #[3], #[4]),\n        max: sprig.max(#[0], #[1], #[2], #[3], #[4])\n"
    "      })\n  })[0]\n}}"
)

# raw text holding `{{=` -> [(scope, expected text after substitution)]
TEMPLATES: dict[str, list[tuple[dict[str, Any], str]]] = {
    "{{=jsonpath(workflow.parameters.config, '$.a')}}": [({"workflow.parameters.config": CONFIG}, "1")],
    "{{=jsonpath(workflow.parameters.config, '$.b')}}": [({"workflow.parameters.config": CONFIG}, "2")],
    "{{=jsonpath(workflow.parameters.config, '$.c')}}": [({"workflow.parameters.config": CONFIG}, "3")],
    "{{=jsonpath(workflow.parameters.config, '$.employees[*].name')}}": [
        ({"workflow.parameters.config": EMPLOYEES}, "[Baris Mo Jai]")
    ],
    "{{=jsonpath(workflow.parameters.config, '$.employees[0:1]')}}": [
        ({"workflow.parameters.config": EMPLOYEES}, "[map[age:43 name:Baris]]")
    ],
    "{{=jsonpath(workflow.parameters.config, '$.employees[?(@.age>42 && @.age<44)].age')}}": [
        ({"workflow.parameters.config": EMPLOYEES}, "[43]")
    ],
    "{{=jsonpath(workflow.parameters.config, '$.employees[?(@.name==\"Baris\")].age')}}": [
        ({"workflow.parameters.config": EMPLOYEES}, "[43]")
    ],
    # temps 34, 27, 15, 57, 46: integer sum 179 / 5 = 35.8
    VERBOSE: [({"workflow.parameters.weather": WEATHER}, '{"avg":35.8,"max":57,"min":15}')],
    "{{=jsonpath(inputs.parameters['week-temps'], '$.avg')}}": [({"inputs.parameters.week-temps": WEEK}, "35.8")],
    "{{=jsonpath(inputs.parameters['week-temps'], '$.max')}}": [({"inputs.parameters.week-temps": WEEK}, "57")],
    "{{=jsonpath(inputs.parameters['week-temps'], '$.min')}}": [({"inputs.parameters.week-temps": WEEK}, "15")],
    "hello {{=asInt(inputs.parameters.foo) * 10}} @ {{=sprig.date('2006', workflow.creationTimestamp)}}\n": [
        ({"inputs.parameters.foo": "3", "workflow.creationTimestamp": "2024-05-01T10:00:00Z"}, "hello 30 @ 2024\n")
    ],
    "{{=item}}": [({"item": 3}, "3"), ({"item": "x"}, "x")],
    "{{=toJson(filter([1, 3], {# > 1}))}}": [({}, "[3]")],
    "{{= inputs.parameters[\"should-print\"] == 'true'}}": [({"inputs.parameters.should-print": "true"}, "true")],
    "{{=jsonpath(workflow.parameters.json, '$[0].value') == 'true'}}": [
        ({"workflow.parameters.json": ALL_PARAMS_JSON}, "true")
    ],
    CRON: [
        ({"cronworkflow.lastScheduledTime": LONG_AGO}, "true"),
        ({"cronworkflow.lastScheduledTime": JUST_NOW}, "false"),
    ],
}


def test_the_tables_cover_every_example() -> None:
    found = example_texts()
    tables = {"when": WHENS, "expression": EXPRESSIONS, "template": TEMPLATES}
    missing = sorted((kind, text) for kind, text in found if text not in tables[kind])
    unused = sorted((kind, text) for kind, table in tables.items() for text in table if (kind, text) not in found)
    assert missing == []
    assert unused == []  # every row comes from the corpus, so the corpus really was read


def test_the_weather_fixture_is_what_the_example_says() -> None:
    decoded = json.loads(base64.b64decode(json.loads(WEATHER)["weekWeather"]))
    assert decoded == {"temps": [34, 27, 15, 57, 46]}


@pytest.mark.parametrize(("raw", "scope", "expected"), [(r, s, e) for r, cases in WHENS.items() for s, e in cases])
def test_example_when(raw: str, scope: dict[str, Any], expected: bool) -> None:
    condition = substitute(raw, _at_run_time(scope), strict=True)
    assert evaluate_when(condition) is expected


@pytest.mark.parametrize(
    ("raw", "scope", "expected"), [(r, s, e) for r, cases in EXPRESSIONS.items() for s, e in cases]
)
def test_example_expression(raw: str, scope: dict[str, Any], expected: Any) -> None:
    text = substitute(raw, scope, strict=True)
    assert evaluate(text, scope) == expected


@pytest.mark.parametrize(("raw", "scope", "expected"), [(r, s, e) for r, cases in TEMPLATES.items() for s, e in cases])
def test_example_template(raw: str, scope: dict[str, Any], expected: str) -> None:
    assert substitute(raw, _at_run_time(scope), strict=True) == expected
