"""The ONNX export reproduces the sklearn pipeline, edge rows included, or registration refuses it."""

from __future__ import annotations

import numpy as np
import pytest
from mlops.datagen.churn import generate_churn
from mlops.model.inference import load_session, predict_proba_onnx, session_numeric_dtype
from mlops.model.onnx_export import PARITY_TOLERANCE, edge_rows, export_onnx
from mlops.model.registration import prove_export
from mlops.model.schema import encode_rows
from mlops.model.spec import Estimator, EstimatorKind
from mlops.model.training import rows_frame, train_model
from mlops.shared.errors import ExportError


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
