"""The ONNX export reproduces the sklearn pipeline, edge rows included, or registration refuses it."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from mlops.datagen.churn import generate_churn
from mlops.model.inference import load_session, predict_proba_onnx, session_numeric_dtype
from mlops.model.onnx_export import PARITY_TOLERANCE, check_parity, edge_rows, export_onnx
from mlops.model.registration import prove_export
from mlops.model.schema import encode_rows
from mlops.model.spec import Estimator, EstimatorKind
from mlops.model.training import frame_rows, rows_frame, train_model
from mlops.shared.errors import ExportError
from sklearn.impute import SimpleImputer


def test_logistic_regression_export_runs_in_float64_and_matches(trained):
    onnx_bytes, report = prove_export(trained)
    assert report.passed and report.max_abs_diff <= PARITY_TOLERANCE
    assert report.rows_checked == trained.test_rows + report.edge_rows
    assert session_numeric_dtype(load_session(onnx_bytes)) is np.float64


@pytest.mark.parametrize(
    "estimator",
    [
        Estimator(kind=EstimatorKind.GRADIENT_BOOSTING, params={"n_estimators": 40, "max_depth": 3}),
        Estimator(kind=EstimatorKind.RANDOM_FOREST, params={"n_estimators": 30, "max_depth": 6}),
    ],
)
def test_tree_ensembles_export_within_tolerance(churn_spec, estimator):
    spec = churn_spec.model_copy(update={"estimator": estimator})
    result = train_model(generate_churn(2000, seed=4), spec)
    _, report = prove_export(result)
    assert report.passed, report.worst_rows


def test_edge_rows_are_served_like_sklearn(trained):
    rows = edge_rows(trained.schema)
    assert any(all(v is None for v in r.values()) for r in rows)
    assert any("never-seen-before" in r.values() for r in rows)
    assert any(1e9 in r.values() for r in rows)
    session = load_session(export_onnx(trained.pipeline, trained.schema, trained.spec.estimator.kind))
    onnx_p = predict_proba_onnx(session, encode_rows(rows, trained.schema, session_numeric_dtype(session)))
    sk_p = trained.pipeline.predict_proba(rows_frame(rows, trained.spec))[:, 1]
    np.testing.assert_allclose(onnx_p, sk_p, atol=PARITY_TOLERANCE, rtol=0)


def test_a_mismatching_export_is_refused_with_the_worst_rows(trained, churn_spec, monkeypatch):
    other = train_model(generate_churn(1000, seed=11, concept_shift=1.0), churn_spec)
    foreign = export_onnx(other.pipeline, other.schema, other.spec.estimator.kind)
    monkeypatch.setattr("mlops.model.registration.export_onnx", lambda *a, **k: foreign)
    with pytest.raises(ExportError) as err:
        prove_export(trained)
    assert "differs from sklearn" in str(err.value)
    assert "worst rows: row " in str(err.value)


def _exported_and_compared(pipeline, spec, schema, rows):
    """The export of `pipeline`, and registration's comparison of it with sklearn on `rows` (and the
    edge rows)."""
    onnx_bytes = export_onnx(pipeline, schema, spec.estimator.kind)
    return onnx_bytes, check_parity(pipeline, onnx_bytes, schema, rows, lambda r: rows_frame(r, spec))


def test_each_categorical_column_is_encoded_in_one_step_as_the_pipeline_does(churn_spec):
    # Given training data where one category column is often missing and another never is
    data = generate_churn(1500, seed=6)
    data.loc[data.index[::5], "contract"] = None
    result = train_model(data, churn_spec)
    categorical = result.spec.categorical_features
    encoder = result.pipeline.named_steps["preprocess"].named_transformers_["categorical"]["onehot"]
    kept = dict(zip(categorical, encoder.categories_, strict=True))
    assert "__missing__" in kept["contract"] and "__missing__" not in kept["region"]
    # and rows holding each kind of value: known, missing (None and ""), the fill text, unseen
    base = frame_rows(rows_frame([{}], result.spec))[0] | {"contract": "one-year", "region": "north"}
    values = ["one-year", None, "", "__missing__", "never-seen", "North", "21"]
    rows = [base | {name: value} for name in ("contract", "region") for value in values]
    # When the pipeline is exported and both answer them
    onnx_bytes, report = _exported_and_compared(result.pipeline, result.spec, result.schema, rows)
    # Then the answers agree, and each category input is read by one LabelEncoder and nothing else
    assert report.max_abs_diff <= PARITY_TOLERANCE, report.worst_rows
    nodes = onnx.load_from_string(onnx_bytes).graph.node
    readers = {name: [n.op_type for n in nodes if name in n.input] for name in categorical}
    assert readers == {name: ["LabelEncoder"] for name in categorical}
    assert not any(n.op_type == "Where" and n.output[0].startswith("nomiss") for n in nodes)


def test_a_categorical_branch_of_another_form_is_exported_by_skl2onnx_as_it_is(trained):
    # Given the demo pipeline with its categorical imputer changed to the most frequent category
    pipeline = copy.deepcopy(trained.pipeline)
    branch = pipeline.named_steps["preprocess"].named_transformers_["categorical"]
    branch.steps[0] = ("impute", SimpleImputer(missing_values="", strategy="most_frequent"))
    frame = rows_frame(edge_rows(trained.schema), trained.spec)
    branch.steps[0][1].fit(frame[trained.spec.categorical_features])
    # When it is exported, then it still answers as sklearn, through skl2onnx's own imputer
    onnx_bytes, report = _exported_and_compared(pipeline, trained.spec, trained.schema, [])
    assert report.max_abs_diff <= PARITY_TOLERANCE, report.worst_rows
    readers = [n.op_type for n in onnx.load_from_string(onnx_bytes).graph.node if "contract" in n.input]
    assert readers == ["Concat"]
