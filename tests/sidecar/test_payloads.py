"""Every MLflow scoring shape parses to the same records; anything else is a PayloadError, never a crash."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitors.payloads import PayloadError, encode_request, parse_predictions, parse_request

RECORDS = [{"age": 31, "income": 52000.5, "purpose": "car"}, {"age": 45, "income": None, "purpose": "home"}]
COLUMNS = ["age", "income", "purpose"]


def _body(document: object) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "body",
    [
        _body({"dataframe_split": {"columns": COLUMNS, "data": [[31, 52000.5, "car"], [45, None, "home"]]}}),
        _body(
            {
                "dataframe_split": {
                    "index": [7, 8],
                    "columns": COLUMNS,
                    "data": [[31, 52000.5, "car"], [45, None, "home"]],
                }
            }
        ),
        _body({"dataframe_records": RECORDS}),
        _body({"instances": RECORDS}),
        _body({"inputs": RECORDS, "params": {"threshold": 0.5}}),
        _body({"inputs": {"age": [31, 45], "income": [52000.5, None], "purpose": ["car", "home"]}}),
        _body({"instances": {"age": [31, 45], "income": [52000.5, None], "purpose": ["car", "home"]}}),
    ],
    ids=["split", "split-index", "records", "instances", "inputs-records", "inputs-columns", "instances-columns"],
)
def test_every_scoring_shape_gives_the_same_records(body: bytes) -> None:
    assert parse_request(body) == RECORDS


def test_csv_body_converts_numbers_and_blanks() -> None:
    body = b"age,income,purpose\n31,52000.5,car\n45,,home\n"
    assert parse_request(body, "text/csv; charset=utf-8") == RECORDS


def test_tensor_inputs_get_positional_column_names() -> None:
    assert parse_request(_body({"inputs": [[1, 2], [3, 4]]})) == [{"0": 1, "1": 2}, {"0": 3, "1": 4}]
    assert parse_request(_body({"instances": [5, 6]})) == [{"0": 5}, {"0": 6}]


def test_encode_request_round_trips() -> None:
    assert parse_request(encode_request(RECORDS, COLUMNS)) == RECORDS


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON list"),
        (_body({"data": [[1]]}), "exactly one of"),
        (_body({"inputs": [1], "instances": [1]}), "exactly one of"),
        (_body({"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}), "1 values for 2 columns"),
        (_body({"dataframe_split": [1, 2]}), "must be an object"),
        (_body({"dataframe_records": [1, 2]}), "item 0 is not an object"),
        (_body({"inputs": {"a": [1, 2], "b": [1]}}), "different lengths"),
        (_body({"inputs": 3}), "must be a list"),
    ],
)
def test_malformed_bodies_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_request(body)


def test_predictions_unwrap_single_field_rows() -> None:
    assert parse_predictions(_body({"predictions": [0.1, 0.9]})) == [0.1, 0.9]
    assert parse_predictions(_body({"predictions": [{"score": 0.1}, {"score": 0.9}]})) == [0.1, 0.9]
    assert parse_predictions(_body({"predictions": {"score": [0.1, 0.9]}})) == [0.1, 0.9]
    assert parse_predictions(_body([[0.2], [0.8]])) == [0.2, 0.8]
    with pytest.raises(PayloadError, match="no 'predictions'"):
        parse_predictions(_body({"error_code": "BAD_REQUEST"}))


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(body: bytes) -> None:
    try:
        records = parse_request(body)
    except PayloadError:
        return
    assert all(isinstance(record, dict) for record in records)


def test_pathologically_nested_json_is_a_malformed_capture_not_a_stuck_spool() -> None:
    from monitors.sidecar._spool import Capture
    from monitors.sidecar._writer import rows_from_capture

    nested = b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    (row,) = rows_from_capture(Capture("deep", 0.0, "1", 400, 1.0, "application/json", nested, b"{}"))
    assert row.error and row.inputs is None and row.raw is not None
