"""Significance of performance figures: DeLong against bootstraps of sklearn's AUC, the MetricDrop
alarm's false-alarm rate and power over 200 windows, the per-feature drift rule, retry backoff."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from mlops.model.spec import Monitoring, Retraining
from mlops.monitoring.drift import FeatureDrift, largest_feature_drift
from mlops.monitoring.significance import (
    auc_standard_error,
    gap_significance,
    paired_comparison,
    reference_metric,
)
from mlops.retraining.persistence import backoff, retry_base
from mlops.shared.alarm_specs import alarm_specs
from sklearn.metrics import roc_auc_score

INTERCEPT, SLOPE = -0.8, 1.6


def draw(rng: np.random.Generator, n: int, true_slope: float = SLOPE) -> tuple[np.ndarray, np.ndarray]:
    """Labels from a logistic world with `true_slope`, scored by a model that learnt SLOPE."""
    x = rng.normal(size=n)
    model = 1 / (1 + np.exp(-(INTERCEPT + SLOPE * x)))
    truth = 1 / (1 + np.exp(-(INTERCEPT + true_slope * x)))
    return (rng.random(n) < truth).astype(int), model


def bootstrap_sd(rng: np.random.Generator, y: np.ndarray, *scores: np.ndarray, resamples: int = 300) -> float:
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, y.size, y.size)
        aucs = [roc_auc_score(y[idx], s[idx]) for s in scores]
        values.append(aucs[0] - aucs[1] if len(aucs) == 2 else aucs[0])
    return float(np.std(values, ddof=1))


def test_delong_standard_error_agrees_with_a_bootstrap_of_sklearn_auc():
    rng = np.random.default_rng(3)
    y, p = draw(rng, 3000)
    reference = bootstrap_sd(rng, y, p)
    se = auc_standard_error(y, p)
    assert se is not None and se == pytest.approx(reference, rel=0.12)
    ref = reference_metric(y, p, "roc_auc", "test")
    assert ref.value == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert ref.rows == 3000 and ref.positives == int(y.sum())
    assert ref.ci_low < ref.value < ref.ci_high


def test_paired_delong_agrees_with_a_paired_bootstrap_and_sees_a_better_model_on_few_rows():
    rng = np.random.default_rng(4)
    x = rng.normal(size=400)
    y = (rng.random(400) < 1 / (1 + np.exp(-(INTERCEPT + SLOPE * x)))).astype(int)
    good = x + rng.normal(scale=0.3, size=400)
    poor = x + rng.normal(scale=1.5, size=400)
    result = paired_comparison(y, good, poor, "roc_auc")
    assert result is not None
    assert result.delta == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, poor), abs=1e-12)
    assert result.standard_error == pytest.approx(bootstrap_sd(rng, y, good, poor), rel=0.15)
    assert result.significantly_better and result.p_value < 0.01
    same = paired_comparison(y, good, good + rng.normal(scale=1e-3, size=400), "roc_auc")
    assert same is not None and not same.significantly_better


def test_metric_drop_alarm_stays_quiet_in_distribution_and_catches_a_small_loss():
    # Given the MetricDrop alarm of a spec, 5,000 labels per window
    monitoring = Monitoring()
    spec_threshold = next(a.threshold for a in alarm_specs(_spec(monitoring)) if a.name == "MetricDrop")
    rng = np.random.default_rng(20261129)
    n = monitoring.significance_min_labels
    # When 200 in-distribution windows are compared with a 5,000-row reference (a fresh one each time)
    false_alarms = 0
    for _ in range(200):
        reference = reference_metric(*draw(rng, 5000), "roc_auc", "test")
        sig = gap_significance(*draw(rng, n), "roc_auc", reference, n)
        false_alarms += bool(sig.published and sig.z is not None and sig.z > spec_threshold)
    # Then at most 5% of them breach
    assert false_alarms / 200 <= 0.05
    # And a loss of 0.01-0.02 AUC (measured by sklearn on 300,000 rows) is caught in most windows
    # against a 20,000-row reference, while the point-gap rule (0.05) sees none of it
    weaker = 1.45
    y_big, p_big = draw(rng, 300_000)
    y_low, p_low = draw(rng, 300_000, weaker)
    loss = roc_auc_score(y_big, p_big) - roc_auc_score(y_low, p_low)
    assert 0.01 <= loss <= 0.02
    reference = reference_metric(*draw(rng, 20000), "roc_auc", "test")
    caught = point_gap = 0
    for _ in range(200):
        sig = gap_significance(*draw(rng, n, weaker), "roc_auc", reference, n)
        caught += bool(sig.z is not None and sig.z > spec_threshold)
        point_gap += bool(sig.value is not None and reference.value - sig.value > monitoring.max_metric_gap)
    assert caught / 200 >= 0.8
    assert point_gap == 0


def test_too_few_labels_or_a_reference_without_error_publish_no_z():
    rng = np.random.default_rng(5)
    reference = reference_metric(*draw(rng, 2000), "roc_auc", "test")
    assert not gap_significance(*draw(rng, 1000), "roc_auc", reference, 5000).published
    bare = reference.model_copy(update={"standard_error": None})
    assert gap_significance(*draw(rng, 6000), "roc_auc", bare, 5000).z is None


def _feature(name: str, psi: float, drifted: bool, tested: bool = True) -> FeatureDrift:
    return FeatureDrift(
        feature=name,
        kind="numeric",
        count=1000,
        reference_count=1000,
        missing_rate_reference=0.0,
        missing_rate_current=0.0,
        missing_rate_change=0.0,
        psi=psi,
        tested=tested,
        drifted=drifted,
    )


def test_largest_feature_drift_counts_only_drifted_features_weighted():
    features = [_feature("a", 0.9, True), _feature("b", 2.0, False), _feature("c", 0.4, True)]
    assert largest_feature_drift(features) == (0.9, "a")
    assert largest_feature_drift(features, {"a": 0.1}) == (0.4, "c")
    assert largest_feature_drift([_feature("a", 0.05, False)]) == (0.0, None)
    assert largest_feature_drift([_feature("a", 0.9, False, tested=False)]) == (None, None)


def test_retry_backoff_starts_at_the_cooldown_doubles_and_is_bounded():
    spec = _spec(
        Monitoring(schedule="rate(1 hour)"), Retraining(cooldown_minutes=120, max_backoff_minutes=600)
    )
    assert retry_base(spec) == timedelta(hours=2)
    assert [backoff(spec, k) for k in (1, 2, 3, 4)] == [
        timedelta(hours=2),
        timedelta(hours=4),
        timedelta(hours=8),
        timedelta(hours=10),
    ]


def _spec(monitoring: Monitoring, retraining: Retraining | None = None):
    from mlops.model.spec import ModelSpec

    return ModelSpec(
        name="m",
        target="y",
        features=[{"name": "x", "kind": "numeric"}],
        monitoring=monitoring,
        retraining=retraining or Retraining(),
    )
