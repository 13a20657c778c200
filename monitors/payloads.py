"""Turn MLflow scoring-server request and response bodies into one record per inference.

The sidecar stores raw bodies; this module is where they become rows a drift monitor can use. MLflow's
``/invocations`` accepts four JSON shapes (``dataframe_split``, ``dataframe_records``, ``inputs``,
``instances``) plus CSV; all of them end up as ``list[dict[column, value]]`` here. Anything that does
not parse raises :class:`PayloadError` with a short reason, which the lake stores next to the raw body so
malformed traffic is counted, never lost and never fatal.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["BODY_FORMATS", "PayloadError", "encode_request", "parse_predictions", "parse_request"]

Record = dict[str, Any]


class PayloadError(ValueError):
    """A body that is not a scoring payload; the message says why in a few words."""


def parse_request(body: bytes, content_type: str = "application/json") -> list[Record]:
    """The inference records of one ``/invocations`` request body, in request order."""
    if "csv" in content_type.lower():
        return _parse_csv(body)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise PayloadError(f"body is a JSON {type(document).__name__}, expected an object")
    keys = [key for key in ("dataframe_split", "dataframe_records", "inputs", "instances") if key in document]
    if len(keys) != 1:
        found = ", ".join(sorted(document)) or "none"
        raise PayloadError(
            f"expected exactly one of dataframe_split, dataframe_records, inputs, instances (found keys: {found})"
        )
    value = document[keys[0]]
    if keys[0] == "dataframe_split":
        return _from_split(value)
    return _from_any(value, keys[0])


def parse_predictions(body: bytes) -> list[Any]:
    """The predictions of a scoring response, one per record; single-field dicts are unwrapped to scalars."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"response is not valid JSON ({exc})") from None
    if isinstance(document, dict):
        if "predictions" not in document:
            raise PayloadError("response has no 'predictions' key")
        document = document["predictions"]
    if isinstance(document, Mapping):  # columnar output: {"score": [..], ...}
        rows = _from_columns(document, "predictions")
        return [_unwrap(row) for row in rows]
    if not isinstance(document, list):
        return [document]
    return [_unwrap(item) for item in document]


BODY_FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")


def encode_request(records: Sequence[Mapping[str, Any]], columns: Sequence[str], body_format: str = "inputs") -> bytes:
    """A scoring request body for ``records`` in one of MLflow's JSON shapes (the inverse of parse_request).

    ``inputs`` (the default) is a list of records: the one body every model this project logs takes (a typed
    model, ``workflows/steps/_pyfunc.py``, takes nothing else; a model with a column signature takes it too)."""
    rows = [[record.get(column) for column in columns] for record in records]
    document: dict[str, Any]
    if body_format == "dataframe_split":
        document = {"dataframe_split": {"columns": list(columns), "data": rows}}
    elif body_format in ("inputs", "dataframe_records", "instances"):
        document = {body_format: [dict(zip(columns, row, strict=True)) for row in rows]}
    else:
        raise ValueError(f"unknown body format {body_format!r}; use one of {', '.join(BODY_FORMATS)}")
    return json.dumps(document, default=str).encode()


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value.values()))
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _from_split(value: Any) -> list[Record]:
    if not isinstance(value, dict):
        raise PayloadError("dataframe_split must be an object with 'columns' and 'data'")
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(data, list):
        raise PayloadError("dataframe_split.data must be a list of rows")
    if columns is None:
        columns = [str(i) for i in range(len(data[0]) if data and isinstance(data[0], list) else 1)]
    if not isinstance(columns, list):
        raise PayloadError("dataframe_split.columns must be a list")
    names = [str(column) for column in columns]
    records = []
    for number, row in enumerate(data):
        row_values = row if isinstance(row, list) else [row]
        if len(row_values) != len(names):
            raise PayloadError(f"dataframe_split row {number} has {len(row_values)} values for {len(names)} columns")
        records.append(dict(zip(names, row_values, strict=True)))
    return records


def _from_any(value: Any, key: str) -> list[Record]:
    """``dataframe_records``/``inputs``/``instances``: a list of records, a list of tensors, or columns."""
    if isinstance(value, dict):
        return _from_columns(value, key)
    if not isinstance(value, list):
        raise PayloadError(f"{key} must be a list or an object of columns")
    records: list[Record] = []
    for number, item in enumerate(value):
        if isinstance(item, dict):
            records.append({str(name): cell for name, cell in item.items()})
        elif key == "dataframe_records":
            raise PayloadError(f"dataframe_records item {number} is not an object")
        elif isinstance(item, list):
            records.append({str(i): cell for i, cell in enumerate(item)})
        else:
            records.append({"0": item})
    return records


def _from_columns(value: Mapping[str, Any], key: str) -> list[Record]:
    """Columnar form ``{"a": [1, 2], "b": [3, 4]}``; a scalar column is one row."""
    columns = {str(name): (cells if isinstance(cells, list) else [cells]) for name, cells in value.items()}
    lengths = {len(cells) for cells in columns.values()}
    if len(lengths) > 1:
        raise PayloadError(f"{key} columns have different lengths: {sorted(lengths)}")
    size = lengths.pop() if lengths else 0
    return [{name: cells[i] for name, cells in columns.items()} for i in range(size)]


def _parse_csv(body: bytes) -> list[Record]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"CSV body is not UTF-8 ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise PayloadError("CSV body has no header row")
    return [{name: _csv_cell(cell) for name, cell in row.items() if name is not None} for row in reader]


def _csv_cell(cell: str | None) -> Any:
    if cell is None or cell == "":
        return None
    for convert in (int, float):
        try:
            return convert(cell)
        except ValueError:
            continue
    return cell
