"""Regression specs: task-fitting metrics and estimators, defaults, a target range, clear errors."""

from __future__ import annotations

import json

import pytest
from mlops.model.spec import EstimatorKind, PrimaryMetric, Task, load_spec, parse_spec, spec_from_json
from mlops.shared.errors import SpecError

from tests.conftest import ROOT

PRICING_SPEC = ROOT / "functions" / "mlops" / "examples" / "pricing" / "spec.toml"
MINIMAL = {
    "name": "price",
    "task": "regression",
    "target": "y",
    "features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}],
}


def test_a_regression_spec_without_metric_or_estimator_gets_rmse_and_ridge():
    # Given a regression spec naming neither metric nor estimator; when parsed
    spec = parse_spec(MINIMAL)
    # then it gets regression defaults, not the classification ones
    assert spec.task is Task.REGRESSION
    assert spec.primary_metric is PrimaryMetric.RMSE
    assert spec.estimator.kind is EstimatorKind.RIDGE
    assert spec.regression_settings.target_min is None and spec.regression_settings.parity_tolerance > 0


@pytest.mark.parametrize("kind", ["linear_regression", "ridge", "random_forest", "gradient_boosting"])
@pytest.mark.parametrize("metric", ["rmse", "mae", "r2"])
def test_every_regression_estimator_and_metric_is_accepted(kind, metric):
    spec = parse_spec(MINIMAL | {"estimator": {"kind": kind}, "primary_metric": metric})
    assert spec.estimator.kind.value == kind and spec.primary_metric.value == metric


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"primary_metric": "roc_auc"},
            "primary_metric 'roc_auc' is not a regression metric; use one of mae, r2",
        ),
        ({"estimator": {"kind": "logistic_regression"}}, "'logistic_regression' does not fit regression"),
        ({"positive_label": "yes"}, "positive_label is for classification"),
        ({"regression": {"target_min": 10, "target_max": 5}}, "target_min (10.0) must be below target_max"),
        ({"regression": {"parity_tolerance": 0}}, "regression.parity_tolerance"),
        ({"regression": {"tolerance": 1.0}}, "regression.tolerance: unknown key"),
    ],
)
def test_invalid_regression_specs_name_the_problem(change, expected):
    with pytest.raises(SpecError) as err:
        parse_spec(MINIMAL | change)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"primary_metric": "rmse"}, "'rmse' is not a binary_classification metric"),
        ({"estimator": {"kind": "ridge"}}, "'ridge' does not fit binary_classification"),
        ({"regression": {"target_min": 0}}, 'the [regression] table needs task = "regression"'),
    ],
)
def test_classification_specs_refuse_regression_settings(change, expected):
    base = {k: v for k, v in MINIMAL.items() if k != "task"}
    with pytest.raises(SpecError) as err:
        parse_spec(base | change)
    assert expected in str(err.value)


def test_a_classification_spec_is_stored_exactly_as_before(churn_spec):
    # The stored spec of a classification model carries no regression key.
    assert "regression" not in json.loads(churn_spec.to_json())
    assert spec_from_json(churn_spec.to_json()) == churn_spec


def test_the_pricing_example_round_trips_through_its_stored_form():
    spec = load_spec(PRICING_SPEC)
    assert spec.task is Task.REGRESSION and spec.regression_settings.target_min == 0.0
    assert spec_from_json(spec.to_json()) == spec
