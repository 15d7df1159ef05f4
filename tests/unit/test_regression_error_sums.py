"""Error sums of labelled regression predictions merge hour by hour into the window's exact metrics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from mlops.regression.partials import ErrorSums, group_sums, merge_group_sums
from sklearn import metrics as skm


def test_merged_hour_sums_give_the_window_metrics_of_sklearn() -> None:
    # Given prices around 100,000 with a spread of a few units (a raw sum of squares would lose R²),
    # cut into uneven hours, one of them empty
    rng = np.random.default_rng(4)
    y = 100_000 + rng.normal(0, 3, 5000)
    p = y + rng.normal(0.5, 1.5, 5000)
    cuts = [0, 7, 7, 900, 2600, 5000]
    # when each hour's sums are merged in order
    merged = ErrorSums()
    for a, b in itertools.pairwise(cuts):
        merged = merged.merge(ErrorSums.of(y[a:b], p[a:b]))
    m = merged.metrics()
    # then they are the metrics of the whole window
    assert merged.n == 5000
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)), rel=1e-9)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-9)
    assert m["r2"] == pytest.approx(skm.r2_score(y, p), rel=1e-9)
    assert m["mean_error"] == pytest.approx(float(np.mean(y - p)), rel=1e-9)


def test_group_sums_merge_across_hours_and_name_missing_groups() -> None:
    # Given two hours of labelled rows in regions, some region unknown
    rng = np.random.default_rng(5)
    regions = np.array(rng.choice(["eu", "us", None], 400), dtype=object)
    y = rng.normal(50, 10, 400)
    p = y + rng.normal(0, 2, 400) + (regions == "us") * 3
    held: dict[str, dict[str, ErrorSums]] = {}
    # when each hour's group sums are merged
    for part in (slice(0, 150), slice(150, 400)):
        merge_group_sums(held, group_sums({"region": regions[part].tolist()}, y[part], p[part]))
    # then each group's errors are sklearn's on its rows, unknown regions in "(missing)"
    assert set(held["region"]) == {"eu", "us", "(missing)"}
    for group, value in (("eu", "eu"), ("us", "us"), ("(missing)", None)):
        mask = np.array([r == value for r in regions])
        figures = held["region"][group].metrics()
        assert held["region"][group].n == mask.sum()
        assert figures["mae"] == pytest.approx(skm.mean_absolute_error(y[mask], p[mask]), rel=1e-9)
        assert figures["r2"] == pytest.approx(skm.r2_score(y[mask], p[mask]), rel=1e-9)


def test_an_empty_or_constant_target_has_no_r2() -> None:
    assert ErrorSums().metrics() == {"rmse": None, "mae": None, "mean_error": None, "r2": None}
    assert ErrorSums.of(np.full(5, 3.0), np.arange(5.0)).metrics()["r2"] is None
