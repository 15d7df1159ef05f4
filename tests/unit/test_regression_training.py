"""Regression training: the same pipeline, metrics that agree with sklearn, a profile of what was
true and predicted, and an export proven within the spec's tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from mlops.datagen.pricing import TARGET, generate_prices
from mlops.model.registration import prove_export
from mlops.model.spec import EstimatorKind, load_spec
from mlops.model.training import train_model
from mlops.regression.metrics import metric_interval, regression_metrics
from mlops.regression.profile import RegressionProfile, read_regression_profile
from mlops.shared.errors import DataError, ExportError
from sklearn import metrics as skm

from tests.unit.test_regression_spec import PRICING_SPEC


@pytest.fixture(scope="module")
def pricing_spec():
    return load_spec(PRICING_SPEC)


@pytest.fixture(scope="module")
def prices():
    return generate_prices(2000, seed=3)


def with_estimator(spec, kind, **regression):
    return spec.model_copy(
        update={
            "estimator": spec.estimator.model_copy(update={"kind": EstimatorKind(kind), "params": {}}),
            "regression": spec.regression_settings.model_copy(update=regression),
        }
    )


@pytest.mark.parametrize("kind", ["linear_regression", "ridge", "gradient_boosting", "random_forest"])
def test_every_regressor_trains_and_exports_within_the_stated_tolerance(pricing_spec, prices, kind):
    # Given the pricing data and each estimator; when trained and exported
    result = train_model(prices, with_estimator(pricing_spec, kind))
    onnx_bytes, parity = prove_export(result)
    # then the test metrics are sklearn's on the held-out rows and the export agrees in price units
    y, p = result.test_labels, result.test_scores
    assert result.test_metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert result.test_metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert result.test_metrics["r2"] == pytest.approx(skm.r2_score(y, p))
    assert result.test_metrics["r2"] > 0.8
    assert parity.passed and parity.tolerance == pricing_spec.regression_settings.parity_tolerance
    assert onnx_bytes and parity.edge_rows > 0


def test_an_export_outside_the_tolerance_is_refused_with_the_worst_rows(pricing_spec, prices):
    # A tree ensemble runs in float32: a tolerance far below that precision cannot be met.
    result = train_model(prices, with_estimator(pricing_spec, "random_forest", parity_tolerance=1e-9))
    with pytest.raises(ExportError, match=r"tolerance 1e-09\); worst rows: row \d+: sklearn"):
        prove_export(result)


def test_the_profile_holds_target_prediction_and_residual_distributions(pricing_spec, prices):
    result = train_model(prices, pricing_spec)
    profile = result.profile
    assert isinstance(profile, RegressionProfile)
    y, p = result.test_labels, result.test_scores
    assert profile.targets.count == y.size and profile.targets.mean == pytest.approx(y.mean())
    assert profile.predictions.mean == pytest.approx(p.mean())
    assert profile.residuals.mean == pytest.approx((y - p).mean(), abs=1e-9)
    assert profile.residuals.std == pytest.approx(np.std(y - p, ddof=1))
    assert profile.training_targets.count == result.train_rows
    assert profile.reference_metric.metric == "rmse" and profile.reference_metric.rows == y.size
    stored = read_regression_profile(profile.model_dump_json())
    assert stored == profile


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.assign(**{TARGET: d[TARGET].astype(object).where(d.index != 5, "cheap")}),
            "non-numeric",
        ),
        (lambda d: d.assign(**{TARGET: d[TARGET].where(d.index != 7, None)}), "1 missing value"),
        (lambda d: d.assign(**{TARGET: d[TARGET].where(d.index != 9, -3.0)}), "outside the spec's range"),
        (lambda d: d.assign(**{TARGET: 5.0}), "holds one value only"),
    ],
)
def test_an_unusable_target_is_refused_by_name(pricing_spec, prices, change, message):
    with pytest.raises(DataError, match=message):
        train_model(change(prices.copy()), pricing_spec)


@pytest.mark.parametrize("metric", ["rmse", "mae", "r2"])
def test_metric_intervals_cover_the_population_value_at_their_level(metric):
    # Given many samples of 400 rows from a model whose population errors are known
    rng = np.random.default_rng(0)
    sigma, n, trials = 3.0, 400, 200
    x_pop = rng.normal(0, 2, 200_000)
    y_pop = 2 * x_pop + rng.normal(0, sigma, x_pop.size)
    truth = regression_metrics(y_pop, 2 * x_pop)[metric]
    covered = 0
    for t in range(trials):
        idx = rng.integers(0, x_pop.size, n)
        interval = metric_interval(y_pop[idx], 2 * x_pop[idx], metric, seed=t)
        covered += interval.ci_low <= truth <= interval.ci_high
    # then a 95% interval covers it in about 95% of samples (binomial sd at 200 trials: 1.5%)
    assert 0.90 <= covered / trials <= 0.99
