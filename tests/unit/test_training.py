"""Training: deterministic, metrics equal to sklearn's, clear errors for unusable data."""

from __future__ import annotations

import numpy as np
import pytest
from mlops.datagen.churn import generate_churn
from mlops.model.evaluation import classification_metrics, expected_calibration_error, group_metrics
from mlops.model.training import feature_frame, train_model
from mlops.shared.errors import DataError, SpecError
from sklearn import metrics as skm


def test_training_is_deterministic_for_a_seed(churn_spec, churn_data, trained):
    again = train_model(churn_data, churn_spec)
    np.testing.assert_array_equal(again.test_scores, trained.test_scores)
    assert again.test_metrics == trained.test_metrics


def test_model_learns_something(trained):
    assert trained.test_metrics["roc_auc"] > 0.75
    assert trained.test_rows == pytest.approx(1000, abs=1)


def test_metrics_agree_with_sklearn(trained):
    y, p = trained.test_labels, trained.test_scores
    pred = (p >= 0.5).astype(int)
    m = trained.test_metrics
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p), abs=1e-12)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)


def test_calibration_error_against_a_direct_computation():
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    y = (rng.random(2000) < p**2).astype(int)  # miscalibrated on purpose
    bins = np.minimum((p * 10).astype(int), 9)
    expected = sum(abs(y[bins == b].mean() - p[bins == b].mean()) * (bins == b).mean() for b in range(10))
    assert expected_calibration_error(y, p) == pytest.approx(expected, abs=1e-3)
    assert expected_calibration_error(y, p) > 0.1


def test_rank_metrics_are_none_with_one_class():
    m = classification_metrics([1, 1, 1], [0.2, 0.6, 0.9])
    assert m["roc_auc"] is None and m["accuracy"] == pytest.approx(2 / 3)


def test_group_metrics_per_sensitive_attribute(trained):
    groups = trained.group_metrics["age_band"]
    assert set(groups) == {"18-29", "30-44", "45-59", "60+"}
    assert sum(g["n"] for g in groups.values()) == trained.test_rows
    mask = trained.test_features["age_band"].to_numpy() == "60+"
    y, p = trained.test_labels[mask], trained.test_scores[mask]
    assert groups["60+"]["true_positive_rate"] == pytest.approx(skm.recall_score(y, p >= 0.5))
    direct = group_metrics(
        {"g": ["a", "a", "b", None]}, np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.1, 0.7])
    )
    assert direct["g"]["(missing)"]["selection_rate"] == 1.0


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.drop(columns=["contract"]), "missing feature column(s): 'contract'"),
        (lambda d: d.drop(columns=["churned"]), "no target column 'churned'"),
        (lambda d: d.head(50), "at least 200 are needed"),
        (lambda d: d.assign(churned=0), "no examples of class 1"),
        (lambda d: d.assign(churned=[0] * (len(d) - 3) + [1] * 3), "only 3 example(s) of class 1"),
        (lambda d: d.assign(churned=2), "must be 0/1"),
        (lambda d: d.assign(tenure_months="x"), "non-numeric values"),
    ],
)
def test_unusable_data_is_refused_with_a_clear_message(churn_spec, mutate, message):
    with pytest.raises(DataError) as err:
        train_model(mutate(generate_churn(400, seed=2)), churn_spec)
    assert message in str(err.value)


def test_unknown_estimator_parameter_is_a_spec_error(churn_spec):
    spec = churn_spec.model_copy(
        update={"estimator": churn_spec.estimator.model_copy(update={"params": {"Q": 1}})}
    )
    with pytest.raises(SpecError, match="has no parameter"):
        train_model(generate_churn(400, seed=2), spec)


def test_profile_describes_the_training_split(trained, churn_spec):
    profile = trained.profile
    assert profile.features.rows == trained.train_rows
    assert set(profile.features.numeric) == set(churn_spec.numeric_features)
    hist = profile.features.numeric["tenure_months"]
    assert hist.count + hist.missing == trained.train_rows
    assert len(hist.counts) == len(hist.edges) + 1
    assert profile.scores.count == trained.test_rows
    assert "never-seen" not in profile.seen_categories["contract"]
    assert feature_frame(generate_churn(10, seed=1), churn_spec).shape[1] == len(churn_spec.features)
