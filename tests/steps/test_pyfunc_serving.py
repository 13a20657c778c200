"""The serving pyfunc scores exactly as the pandas preprocessing it replaced: same inputs, same tensors, same
probabilities, on rows with nulls, unseen categories, numbers sent as strings and pandas' nullable dtypes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.pyfunc import PythonModelContext

from features.columns import ENTITY_KEY, LABEL, TIMESTAMP
from features.generator import generate
from features.store import code_schema
from workflows.steps._evaluation import score
from workflows.steps._pyfunc import (
    OUTPUT_COLUMN,
    PREPROCESSING,
    WEIGHTS,
    CreditRiskModel,
    accepts_records,
    feature_records,
    served_model,
    signature_for,
)
from workflows.steps._tabular import UNKNOWN, Preprocessing, TabularNet


def pandas_transform(prep: Preprocessing, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The preprocessing as it was before the numpy rewrite (commit c86618f), kept as the reference."""
    numeric = np.empty((len(frame), len(prep.numeric)), dtype=np.float32)
    for i, name in enumerate(prep.numeric):
        column = pd.to_numeric(frame[name], errors="coerce").astype("float64").fillna(prep.medians[name])
        numeric[:, i] = ((column - prep.means[name]) / prep.scales[name]).to_numpy(np.float32)
    codes = np.zeros((len(frame), len(prep.categorical)), dtype=np.int64)
    for i, name in enumerate(prep.categorical):
        categorical = pd.Categorical(frame[name].astype(object), categories=prep.vocabularies[name])
        codes[:, i] = categorical.codes.astype(np.int64) + 1 + UNKNOWN
    return numeric, codes


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Preprocessing, TabularNet, dict[str, str]]:
    schema = code_schema("credit-risk")
    prep = Preprocessing.fit(generate("baseline", rows=400, seed=3), schema)
    cardinalities = [len(prep.vocabularies[name]) for name in prep.categorical]
    torch.manual_seed(7)
    net = TabularNet(len(prep.numeric), cardinalities, (64, 32)).eval()
    directory = tmp_path_factory.mktemp("pyfunc")
    weights, config = directory / "weights.pt", directory / "preprocessing.json"
    torch.save(net.state_dict(), weights)
    config.write_text(json.dumps({"preprocessing": prep.to_json(), "cardinalities": cardinalities, "hidden": [64, 32]}))
    return prep, net, {WEIGHTS: str(weights), PREPROCESSING: str(config)}


def awkward_rows() -> pd.DataFrame:
    rows = generate("baseline", rows=40, seed=9).drop(columns=[ENTITY_KEY, TIMESTAMP, LABEL])
    rows = rows.astype({"age": "Int64"})  # nullable integer, as pyarrow-backed readers produce
    rows.loc[rows.index[0], "purpose"] = "buy_now_pay_later"  # unseen category
    rows.loc[rows.index[1], "employment_length"] = None
    rows.loc[rows.index[2], "annual_income"] = np.nan
    rows.loc[rows.index[3], "age"] = pd.NA
    rows["debt_to_income"] = rows["debt_to_income"].astype(object)
    rows.loc[rows.index[4], "debt_to_income"] = "0.25"  # a number sent as a string
    rows.loc[rows.index[5], "debt_to_income"] = "n/a"  # not a number: the median
    rows["term"] = rows["term"].astype("category")
    return rows


def test_numpy_preprocessing_is_bit_for_bit_the_pandas_one(fitted) -> None:  # type: ignore[no-untyped-def]
    prep, _, _ = fitted
    rows = awkward_rows()
    numeric, codes = prep.transform(rows)
    expected_numeric, expected_codes = pandas_transform(prep, rows)
    assert numeric.dtype == np.float32 and codes.dtype == np.int64
    assert np.array_equal(numeric, expected_numeric) and np.array_equal(codes, expected_codes)
    assert codes[0, prep.categorical.index("purpose")] == UNKNOWN
    assert codes[1, prep.categorical.index("employment_length")] == UNKNOWN
    assert (codes[2:, prep.categorical.index("term")] != UNKNOWN).all()
    for row in range(len(rows)):  # one-row requests, as a scoring server sends them
        one_numeric, one_codes = prep.transform(rows.iloc[row : row + 1])
        assert np.array_equal(one_numeric, expected_numeric[row : row + 1])
        assert np.array_equal(one_codes, expected_codes[row : row + 1])


def test_pyfunc_predictions_are_pinned_to_the_reference(fitted) -> None:  # type: ignore[no-untyped-def]
    prep, net, artifacts = fitted
    rows = awkward_rows()
    with torch.no_grad():
        reference = torch.sigmoid(net(*map(torch.from_numpy, pandas_transform(prep, rows)))).numpy()
    threads = torch.get_num_threads()
    try:
        model = CreditRiskModel()
        model.load_context(PythonModelContext(artifacts=artifacts, model_config={}))
        assert torch.get_num_threads() == 1  # one-row requests: no thread fan-out on a small MLP
        scored = model.predict(None, rows)
        one_by_one = [float(model.predict(None, rows.iloc[i : i + 1])[OUTPUT_COLUMN].iloc[0]) for i in range(len(rows))]
    finally:
        torch.set_num_threads(threads)
    assert list(scored.columns) == [OUTPUT_COLUMN] and scored[OUTPUT_COLUMN].dtype == np.float64
    np.testing.assert_allclose(scored[OUTPUT_COLUMN].to_numpy(), reference, rtol=0, atol=1e-7)
    np.testing.assert_allclose(one_by_one, reference, rtol=0, atol=1e-7)
    assert len(set(np.round(reference, 6))) > 30  # the rows really differ: the pin is not a constant


# --- the typed model train logs (served_model): MLflow validates rows against the feature schema itself ---------


def well_formed_rows() -> pd.DataFrame:
    """Rows a typed model must score: nulls only where the schema allows them, an unseen category."""
    rows = generate("baseline", rows=40, seed=9).drop(columns=[ENTITY_KEY, TIMESTAMP, LABEL])
    rows.loc[rows.index[0], "purpose"] = "buy_now_pay_later"  # unseen category: scored as UNKNOWN
    rows.loc[rows.index[1], "employment_length"] = None
    rows.loc[rows.index[2], "annual_income"] = np.nan
    rows.loc[rows.index[3], ["annual_income", "employment_length"]] = [np.nan, None]
    return rows


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The typed model and a column-signature model of the same weights, saved and loaded by MLflow."""
    import mlflow

    _, _, artifacts = fitted
    schema = code_schema("credit-risk")
    directory = tmp_path_factory.mktemp("saved")
    threads = torch.get_num_threads()
    try:
        mlflow.pyfunc.save_model(str(directory / "typed"), python_model=served_model(schema), artifacts=artifacts,
                                 pip_requirements=[])  # fmt: skip
        mlflow.pyfunc.save_model(str(directory / "columns"), python_model=CreditRiskModel(), artifacts=artifacts,
                                 signature=signature_for(schema), pip_requirements=[])  # fmt: skip
        yield mlflow.pyfunc.load_model(str(directory / "typed")), mlflow.pyfunc.load_model(str(directory / "columns"))
    finally:
        torch.set_num_threads(threads)


def _reference(fitted, rows: pd.DataFrame) -> np.ndarray:  # type: ignore[no-untyped-def]
    prep, net, _ = fitted
    with torch.no_grad():
        return torch.sigmoid(net(*map(torch.from_numpy, pandas_transform(prep, rows)))).numpy()


def _client(model):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    return TestClient(scoring_server.init(model))


def test_records_preprocessing_is_bit_for_bit_the_frame_one(fitted) -> None:  # type: ignore[no-untyped-def]
    prep, _, _ = fitted
    rows = well_formed_rows()
    records = feature_records(rows)
    assert records[2]["annual_income"] is None and records[1]["employment_length"] is None  # NaN/None -> None
    numeric, codes = prep.transform_records(records)
    expected_numeric, expected_codes = prep.transform(rows)
    assert np.array_equal(numeric, expected_numeric) and np.array_equal(codes, expected_codes)
    assert np.array_equal(numeric, pandas_transform(prep, rows)[0])
    missing = [{k: v for k, v in record.items() if k != "annual_income"} for record in records[:3]]
    assert np.array_equal(prep.transform_records(missing)[0], prep.transform(rows.iloc[:3].assign(annual_income=None))[0])
    # a value only an untyped caller can pass (a number as a string): the frame path's coercion, same result
    odd = [{**records[4], "debt_to_income": "0.25"}]
    assert np.array_equal(prep.transform_records(odd)[0], prep.transform(pd.DataFrame(odd))[0])


def test_typed_model_carries_the_feature_schema_as_its_signature(saved) -> None:  # type: ignore[no-untyped-def]
    from mlflow.types.schema import Object

    typed, _ = saved
    assert accepts_records(typed) and not accepts_records(saved[1])
    assert typed.metadata.signature._is_signature_from_type_hint
    (spec,) = typed.metadata.get_input_schema().inputs
    assert isinstance(spec.type, Object)
    properties = {p.name: (p.dtype.name, p.required) for p in spec.type.properties}
    expected = {s.name: ({"int64": "long", "float64": "double", "string": "string"}[s.dtype], not s.nullable)
                for s in code_schema("credit-risk").features}  # fmt: skip
    assert properties == expected


def test_typed_model_scores_requests_as_the_reference(fitted, saved) -> None:  # type: ignore[no-untyped-def]
    typed, columns = saved
    rows = well_formed_rows()
    reference = _reference(fitted, rows)
    records = feature_records(rows)
    typed_client, columns_client = _client(typed), _client(columns)
    batched = typed_client.post("/invocations", json={"inputs": records})
    assert batched.status_code == 200, batched.text
    scored = [answer[OUTPUT_COLUMN] for answer in batched.json()["predictions"]]
    one_by_one = []
    for record in records:
        answer = typed_client.post("/invocations", json={"inputs": [record]})
        assert answer.status_code == 200, answer.text
        one_by_one.append(answer.json()["predictions"][0][OUTPUT_COLUMN])
    np.testing.assert_allclose(scored, reference, rtol=0, atol=1e-7)
    np.testing.assert_allclose(one_by_one, reference, rtol=0, atol=1e-7)
    # the same body to the column-signature model (models logged before): the same answers
    old = columns_client.post("/invocations", json={"inputs": records})
    assert old.status_code == 200, old.text
    assert [answer[OUTPUT_COLUMN] for answer in old.json()["predictions"]] == scored
    # in process, as evaluate scores: a frame becomes records
    assert np.array_equal(score(typed, rows, list(rows.columns)), score(columns, rows, list(rows.columns)))
    assert np.array_equal(score(typed, rows, list(rows.columns)), np.asarray(scored))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda r: {("customer_age_years" if k == "age" else k): v for k, v in r.items()}, "age"),  # renamed
        (lambda r: {k: v for k, v in r.items() if k != "term"}, "term"),  # a required column missing
        (lambda r: {**r, "zip_code": "94110"}, "zip_code"),  # a column the model was not trained on
        (lambda r: {**r, "age": "31"}, "age"),  # a number sent as a string
        (lambda r: {**r, "open_accounts": 2.5}, "open_accounts"),  # a fraction for a count
        (lambda r: {**r, "debt_to_income": None}, "debt_to_income"),  # null where the schema says never
    ],
    ids=["renamed", "missing", "extra", "string-number", "fraction-for-int", "null-required"],
)
def test_typed_model_refuses_rows_off_the_schema_with_a_400_naming_the_column(saved, change, named) -> None:  # type: ignore[no-untyped-def]
    typed, _ = saved
    record = feature_records(well_formed_rows())[5]
    answer = _client(typed).post("/invocations", json={"inputs": [change(record)]})
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["message"]


def test_typed_model_refuses_dataframe_split_with_a_400_naming_inputs(saved) -> None:  # type: ignore[no-untyped-def]
    typed, _ = saved
    rows = well_formed_rows().iloc[:1]
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.astype(object).values.tolist()}}
    answer = _client(typed).post("/invocations", json=body)
    assert answer.status_code == 400 and "'inputs'" in answer.json()["message"]
