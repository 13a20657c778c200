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
from workflows.steps._pyfunc import OUTPUT_COLUMN, PREPROCESSING, WEIGHTS, CreditRiskModel
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
