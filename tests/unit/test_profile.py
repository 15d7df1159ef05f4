"""Profiles are mergeable: the profile of A+B equals the merge of the profiles of A and B."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlops.datagen.churn import generate_churn
from mlops.model.training import feature_frame
from mlops.monitoring.profile import (
    ProfileMismatch,
    build_dataset_profile,
    categorical_counts,
    numeric_histogram,
    profile_columns,
    quantile_edges,
)


def _columns(frame):
    return {c: frame[c].to_numpy() for c in frame.columns}


def test_profile_of_union_equals_merge_of_profiles(churn_spec):
    ref = feature_frame(generate_churn(3000, seed=1), churn_spec)
    edges = build_dataset_profile(
        _columns(ref), churn_spec.numeric_features, churn_spec.categorical_features
    ).edges()
    raw_a = generate_churn(1200, seed=2)
    raw_b = generate_churn(800, seed=3, covariate_shift=1.0, new_category_rate=0.1)
    a, b = feature_frame(raw_a, churn_spec), feature_frame(raw_b, churn_spec)
    both = feature_frame(pd.concat([raw_a, raw_b], ignore_index=True), churn_spec)
    cats = churn_spec.categorical_features
    merged = profile_columns(_columns(a), edges, cats).merge(profile_columns(_columns(b), edges, cats))
    whole = profile_columns(_columns(both), edges, cats)
    assert merged.rows == whole.rows == 2000
    for name, hist in whole.numeric.items():
        m = merged.numeric[name]
        assert m.counts == hist.counts and m.missing == hist.missing
        assert m.min == hist.min and m.max == hist.max
        assert m.sum == pytest.approx(hist.sum) and m.sum_sq == pytest.approx(hist.sum_sq)
    assert merged.categorical == whole.categorical


def test_histogram_counts_match_numpy_and_track_missing():
    values = np.array([0.5, 1.0, 1.5, 2.0, np.nan, 9.0, -3.0])
    hist = numeric_histogram(values, [1.0, 2.0])
    # Bins: (-inf, 1], (1, 2], (2, inf)
    assert hist.counts == [3, 2, 1]
    assert hist.missing == 1 and hist.min == -3.0 and hist.max == 9.0
    finite = values[np.isfinite(values)]
    assert hist.mean == pytest.approx(finite.mean())
    assert hist.std == pytest.approx(finite.std(ddof=1))


def test_quantile_edges_are_distinct_for_discrete_data():
    edges = quantile_edges(np.array([1.0] * 50 + [2.0] * 50 + [3.0]), bins=100)
    assert edges == sorted(set(edges))
    assert len(edges) <= 3


def test_categorical_counts_treat_none_nan_and_empty_as_missing():
    counts = categorical_counts(["a", None, float("nan"), "", "b", "a"])
    assert counts.counts == {"a": 2, "b": 1} and counts.missing == 3


def test_merging_profiles_on_different_edges_is_refused():
    with pytest.raises(ProfileMismatch):
        numeric_histogram([1.0], [0.0]).merge(numeric_histogram([1.0], [0.5]))
