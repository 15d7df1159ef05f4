"""The demo data generator: seeded, and its drift knobs move what they claim to move."""

from __future__ import annotations

import numpy as np
import pytest
from mlops.datagen.churn import CATEGORICAL_FEATURES, NUMERIC_FEATURES, TARGET, generate_churn
from mlops.model.training import feature_frame
from scipy import stats
from sklearn.metrics import roc_auc_score


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = generate_churn(500, seed=3), generate_churn(500, seed=3), generate_churn(500, seed=4)
    assert a.equals(b)
    assert not a.equals(c)


def test_shape_missing_values_and_label_balance():
    data = generate_churn(5000, seed=1)
    assert set(NUMERIC_FEATURES + CATEGORICAL_FEATURES + [TARGET]) <= set(data.columns)
    assert 10 <= len(NUMERIC_FEATURES + CATEGORICAL_FEATURES) <= 20
    assert data["satisfaction_score"].isna().mean() == pytest.approx(0.10, abs=0.02)
    assert data["device"].isna().mean() == pytest.approx(0.04, abs=0.015)
    assert 0.15 < data[TARGET].mean() < 0.45


@pytest.mark.parametrize("size", [0.5, 1.0])
def test_covariate_shift_moves_only_the_chosen_features(size):
    base = generate_churn(6000, seed=1)
    shifted = generate_churn(
        6000, seed=2, covariate_shift=size, shift_features=("monthly_charges", "contract")
    )
    moved = shifted["monthly_charges"].mean() - base["monthly_charges"].mean()
    assert moved == pytest.approx(25.0 * size, rel=0.25)
    base_share = (base["contract"] == "month-to-month").mean()
    assert (shifted["contract"] == "month-to-month").mean() < base_share - 0.1 * size
    # An unshifted feature keeps its distribution.
    p_untouched = stats.ks_2samp(base["days_since_last_login"], shifted["days_since_last_login"]).pvalue
    assert p_untouched > 0.001


def test_concept_shift_changes_the_label_relationship_not_the_inputs():
    base = generate_churn(8000, seed=1)
    drifted = generate_churn(8000, seed=1, concept_shift=1.0)
    for name in NUMERIC_FEATURES:
        np.testing.assert_array_equal(base[name].to_numpy(), drifted[name].to_numpy())
    # A score that ranks well before the shift ranks much worse after it.
    score = -base["tenure_months"].to_numpy()
    assert roc_auc_score(base[TARGET], score) - roc_auc_score(drifted[TARGET], score) > 0.2


def test_new_categories_appear_at_the_requested_rate():
    data = generate_churn(5000, seed=5, new_category_rate=0.2)
    assert (data["payment_method"] == "crypto").mean() == pytest.approx(0.2, abs=0.03)
    assert (data["region"] == "offshore").mean() == pytest.approx(0.2, abs=0.03)


def test_bad_knobs_are_refused():
    with pytest.raises(ValueError, match="concept_shift"):
        generate_churn(10, concept_shift=2.0)
    with pytest.raises(ValueError, match="unknown shift_features"):
        generate_churn(10, covariate_shift=1.0, shift_features=("nope",))


def test_generated_frames_encode_for_training(churn_spec):
    frame = feature_frame(generate_churn(200, seed=9), churn_spec)
    assert frame["device"].isin([""]).any()
    assert frame["satisfaction_score"].isna().any()
