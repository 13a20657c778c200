"""``jsonpath(json, path)``: definite paths give a value, others an array; filters, slices, deep scans."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workflows.engine.expressions import ExpressionError, evaluate
from workflows.engine.expressions._jsonpath import JsonPathError, jsonpath

STORE = json.dumps(
    {
        "store": {
            "book": [
                {"category": "reference", "author": "Rees", "price": 8.95},
                {"category": "fiction", "author": "Waugh", "price": 12.99},
                {"category": "fiction", "author": "Melville", "isbn": "0-553", "price": 8.99},
                {"category": "fiction", "author": "Tolkien", "isbn": "0-395", "price": 22.99},
            ],
            "bicycle": {"color": "red", "price": 19.95},
        },
        "expensive": 10,
        "odd key": [1, 2],
    }
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.expensive", 10.0),  # numbers are float64, as Go's json.Unmarshal makes them
        ("$.store.book[0].author", "Rees"),
        ("$.store.book[-1].author", "Tolkien"),
        ("$['store']['bicycle']['color']", "red"),
        ("$['odd key'][1]", 2.0),
        ("$.store.book[0,1].price", [8.95, 12.99]),
        ("$.store.book[0:2].price", [8.95, 12.99]),
        ("$.store.book[:1].author", ["Rees"]),
        ("$.store.book[-1:].author", ["Tolkien"]),
        ("$.store.book[::2].author", ["Rees", "Melville"]),
        ("$.store.book[*].author", ["Rees", "Waugh", "Melville", "Tolkien"]),
        ("$.store.book.*.author", ["Rees", "Waugh", "Melville", "Tolkien"]),
        ("$.store.book[?(@.isbn)].author", ["Melville", "Tolkien"]),
        ("$.store.book[?(!@.isbn)].author", ["Rees", "Waugh"]),
        ("$.store.book[?(@.price > 10)].author", ["Waugh", "Tolkien"]),
        ("$.store.book[?(@.price < $.expensive)].author", ["Rees", "Melville"]),
        ("$.store.book[?(@.category == 'fiction' && @.price < 20)].author", ["Waugh", "Melville"]),
        ("$.store.book[?(@.author == 'Rees' || @.author == \"Tolkien\")].price", [8.95, 22.99]),
        ("$.store.book[?((@.price > 20) || (@.price < 9))].author", ["Rees", "Melville", "Tolkien"]),
        ("$.store.book[?(@.author =~ /^[MT]/)].author", ["Melville", "Tolkien"]),
        ("$.store.book[?(@.price != 8.95)].author", ["Waugh", "Melville", "Tolkien"]),
        ("$..author", ["Rees", "Waugh", "Melville", "Tolkien"]),
        ("$.store..price", [19.95, 8.95, 12.99, 8.99, 22.99]),
        ("$.store.book[?(@.missing > 1)]", []),
    ],
)
def test_paths(path: str, expected: Any) -> None:
    assert jsonpath(STORE, path) == expected


def test_root_array_and_scalars() -> None:
    assert jsonpath('[{"value": "true"}]', "$[0].value") == "true"
    assert jsonpath("[1, 2, 3]", "$") == [1.0, 2.0, 3.0]
    assert jsonpath('"text"', "$") == "text"


@pytest.mark.parametrize(
    ("text", "path", "why"),
    [
        (STORE, "store.book", r"starts with '\$'"),
        (STORE, "$.nope", "'nope' not found"),
        (STORE, "$.store.book[9]", "out of range"),
        (STORE, "$.store.book[a-b]", "invalid subscript"),
        (STORE, "$.store.book[1:2:3:4]", "invalid slice"),
        (STORE, "$.store book", "unexpected"),
        (STORE, "$.store.book[?(@.price >)]", "unexpected end of filter"),
        ("{not json", "$", "not JSON"),
        (STORE, "$.store.book[?(@.author =~ /(/)]", "invalid regular expression"),
        (STORE, "$.store.book[?(@.author =~ '(')]", "invalid regular expression"),
        (STORE, "$.store.book[::0]", "step cannot be zero"),
    ],
)
def test_errors_name_the_path(text: str, path: str, why: str) -> None:
    with pytest.raises(JsonPathError, match=why):
        jsonpath(text, path)


def test_errors_surface_as_expression_errors() -> None:
    with pytest.raises(ExpressionError, match=r"jsonpath\(\)"):
        evaluate("jsonpath(doc, '$.nope')", {"doc": "{}"})
    with pytest.raises(ExpressionError, match="needs a JSON string"):
        evaluate("jsonpath(doc, '$')", {"doc": 3})
