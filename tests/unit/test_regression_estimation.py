"""Label-free estimation for regression: the stored loss model runs as sklearn's forest does, and
its estimate follows the realized error where covariate shift moves it."""

from __future__ import annotations

import numpy as np
import pytest
from mlops.datagen.pricing import generate_prices
from mlops.model.spec import load_spec
from mlops.model.training import feature_frame, train_model
from mlops.regression.estimation import LOSS_MAX_DEPTH, LOSS_MIN_LEAF, LOSS_TREES, encode, expected_losses
from mlops.regression.metrics import regression_metrics
from mlops.regression.monitoring import metric_gap
from mlops.regression.training import numeric_target
from sklearn.ensemble import RandomForestRegressor

from tests.unit.test_regression_spec import PRICING_SPEC


@pytest.fixture(scope="module")
def trained():
    spec = load_spec(PRICING_SPEC)
    return train_model(generate_prices(2500, seed=4), spec)


def columns_of(result, data):
    x = feature_frame(data, result.spec)
    return {c: x[c].to_numpy() for c in result.spec.feature_names}, result.pipeline.predict(x)


def test_the_stored_trees_predict_what_the_fitted_forest_predicts(trained):
    # Given the loss model's encoding of the held-out rows, refit as sklearn would fit it
    loss = trained.profile.loss_model
    columns = {c: trained.test_features[c].to_numpy() for c in trained.spec.feature_names}
    x = encode(loss.numeric, loss.medians, loss.categories, columns, trained.test_scores)
    forest = RandomForestRegressor(
        n_estimators=LOSS_TREES, max_depth=LOSS_MAX_DEPTH, min_samples_leaf=LOSS_MIN_LEAF, random_state=42
    ).fit(x.astype(np.float32), np.abs(trained.test_labels - trained.test_scores))
    # when the stored trees are applied with numpy; then they agree with sklearn's forest
    absolute, _ = expected_losses(loss, columns, trained.test_scores)
    np.testing.assert_allclose(absolute, forest.predict(x.astype(np.float32)), rtol=1e-9)


def test_the_estimate_follows_covariate_shift_and_stays_put_without_it(trained):
    estimates, realized = [], []
    for shift in (0.0, 2.5):
        data = generate_prices(4000, seed=31, covariate_shift=shift)
        columns, predicted = columns_of(trained, data)
        absolute, _ = expected_losses(trained.profile.loss_model, columns, predicted)
        estimates.append(absolute.mean())
        realized.append(regression_metrics(numeric_target(data, trained.spec), predicted)["mae"])
    # Without shift the estimate is the realized error within sampling noise (~2%) ...
    assert estimates[0] == pytest.approx(realized[0], rel=0.05)
    # ... and with it, the estimate rises and is closer to the new error than the reference is.
    assert estimates[1] > estimates[0]
    assert abs(estimates[1] - realized[1]) < abs(trained.test_metrics["mae"] - realized[1])


@pytest.mark.parametrize(
    ("metric", "production", "reference", "gap"),
    [("rmse", 12.0, 10.0, 0.2), ("mae", 9.0, 10.0, -0.1), ("r2", 0.8, 0.9, 0.1)],
)
def test_the_gap_is_positive_when_production_is_worse(metric, production, reference, gap):
    assert metric_gap(metric, production, reference) == pytest.approx(gap)
