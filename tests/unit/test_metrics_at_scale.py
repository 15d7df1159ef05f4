"""The metrics a monitor computes over millions of labels: sklearn's figures from one sort, and
bootstrap intervals whose cost stops growing with the window while their width keeps shrinking."""

from __future__ import annotations

import numpy as np
import pytest
from mlops.model.evaluation import (
    METRIC_NAMES,
    average_precision,
    classification_metrics,
    expected_calibration_error,
    group_metrics,
    roc_auc,
)
from mlops.monitoring import significance
from mlops.monitoring.performance import bootstrap_interval
from mlops.monitoring.significance import (
    BOOTSTRAP_MAX_ROWS,
    bootstrap_standard_error,
    resample_size,
    structural_components,
)
from scipy import stats
from sklearn import metrics as skm


def _scores(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    if kind == 0:
        return rng.random(n)
    if kind == 1:  # many ties
        return np.round(rng.random(n), 1)
    # Certain answers and scores next to them, where log loss clips.
    return rng.choice([0.0, 1e-20, 0.5, 1 - 1e-17, 1.0], n)


def _sklearn_figures(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    pred = (p >= 0.5).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": skm.roc_auc_score(y, p) if both else None,
        "average_precision": skm.average_precision_score(y, p) if both else None,
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
        "brier": skm.brier_score_loss(y, p),
    }


def test_every_metric_equals_sklearns_on_ties_extremes_and_one_class() -> None:
    rng = np.random.default_rng(1)
    for trial in range(240):
        n = int(rng.integers(1, 2500))
        # Now and then all labels of one class, where the rank metrics are undefined.
        share = (0.0, 1.0, rng.random())[trial % 3] if trial % 8 == 0 else rng.random()
        y = (rng.random(n) < share).astype(int)
        p = _scores(rng, n, trial % 3)
        ours = classification_metrics(y, p)
        assert set(ours) == set(METRIC_NAMES)
        for name, expected in _sklearn_figures(y, p).items():
            if expected is None:
                assert ours[name] is None, (trial, name)
            else:
                assert ours[name] == pytest.approx(expected, rel=1e-12, abs=1e-14), (trial, name)
        if 0 < y.sum() < n:
            assert roc_auc(y, p) == ours["roc_auc"]
            assert average_precision(y, p) == ours["average_precision"]


def test_calibration_error_is_the_size_weighted_gap_per_bin() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(5000)
    y = (rng.random(5000) < p**2).astype(int)
    bins = np.clip(np.ceil(p * 10).astype(int) - 1, 0, 9)  # right-closed bins, as np.digitize(right=True)
    expected = sum(abs(y[bins == b].mean() - p[bins == b].mean()) * (bins == b).mean() for b in range(10))
    assert expected_calibration_error(y, p) == pytest.approx(expected, rel=1e-12)
    assert expected_calibration_error(np.zeros(0, dtype=int), np.zeros(0)) == 0.0


def test_group_metrics_name_missing_values_once_and_equal_a_mask_per_group() -> None:
    rng = np.random.default_rng(4)
    n = 4000
    values = rng.choice(np.array(["a", "b", "", None, float("nan"), 7, "7"], dtype=object), n)
    y = (rng.random(n) < 0.4).astype(int)
    p = rng.random(n)
    per = group_metrics({"g": values}, y, p)["g"]
    named = ["(missing)" if v is None or v == "" or v != v else str(v) for v in values]
    names = np.array(named, dtype=object)
    assert list(per) == sorted(set(names.tolist())) == ["(missing)", "7", "a", "b"]
    for group, figures in per.items():
        mask = names == group
        yg, pg = y[mask], p[mask] >= 0.5
        assert figures["n"] == mask.sum() and figures["positives"] == yg.sum()
        assert figures["selection_rate"] == pytest.approx(pg.mean(), rel=1e-12)
        assert figures["true_positive_rate"] == pytest.approx(pg[yg == 1].mean(), rel=1e-12)
        assert figures["accuracy"] == pytest.approx((pg == yg).mean(), rel=1e-12)
        assert figures["roc_auc"] == pytest.approx(skm.roc_auc_score(yg, p[mask]), rel=1e-12)
    assert group_metrics({"g": values}, y, p, min_group_size=1000).keys() == {"g"}


def test_structural_components_from_one_sort_equal_three_rankings() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(3000) < 0.3).astype(int)
    p = np.round(rng.random(3000) * 0.6 + 0.3 * y, 2)
    pos, neg = p[y == 1], p[y == 0]
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    v10 = (ranks[: pos.size] - stats.rankdata(pos)) / neg.size
    v01 = 1.0 - (ranks[pos.size :] - stats.rankdata(neg)) / pos.size
    auc, ours10, ours01 = structural_components(y, p)
    np.testing.assert_allclose(ours10, v10, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ours01, v01, rtol=0, atol=1e-15)
    assert auc == pytest.approx(skm.roc_auc_score(y, p), rel=1e-12)


def test_resamples_stop_growing_at_the_cap() -> None:
    assert resample_size(BOOTSTRAP_MAX_ROWS) == (BOOTSTRAP_MAX_ROWS, 1.0)
    size, scale = resample_size(BOOTSTRAP_MAX_ROWS * 4)
    assert size == BOOTSTRAP_MAX_ROWS and scale == pytest.approx(0.5)


# The interval tests run the same code with a smaller cap, so that windows of several caps stay quick.
SMALL_CAP = 5_000


@pytest.fixture
def small_cap(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(significance, "BOOTSTRAP_MAX_ROWS", SMALL_CAP)
    return SMALL_CAP


def _window(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.3).astype(int)
    p = np.clip(0.3 + 0.35 * (y - 0.3) + rng.normal(0, 0.2, n), 0, 1)
    return y, p


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    predicted = p >= 0.5
    return float(2 * np.count_nonzero(predicted & (y == 1)) / (np.count_nonzero(predicted) + y.sum()))


def test_a_capped_bootstrap_gives_the_spread_of_the_whole_window(small_cap: int) -> None:
    """Beyond the cap the standard error is the whole-window bootstrap's, and the interval as wide."""
    rng = np.random.default_rng(6)
    n = small_cap * 4
    y, p = _window(rng, n)
    full = float(np.std([_f1(y[i], p[i]) for i in (rng.integers(0, n, n) for _ in range(400))], ddof=1))
    # Each estimate from 200 resamples varies by several per cent: the mean of four seeds.
    capped = [bootstrap_standard_error(y, p, "f1", resamples=200, seed=seed) for seed in range(4)]
    assert None not in capped
    assert float(np.mean(capped)) == pytest.approx(full, rel=0.12)  # type: ignore[arg-type]
    # Half what resamples of the cap alone would say, as 4x the rows should be.
    alone = bootstrap_standard_error(y[:small_cap], p[:small_cap], "f1", resamples=200)
    assert alone is not None and float(np.mean(capped)) < 0.7 * alone  # type: ignore[arg-type]
    lo, hi = bootstrap_interval(y, p, "f1") or (None, None)
    assert lo is not None and hi is not None and lo < _f1(y, p) < hi
    assert hi - lo == pytest.approx(2 * 1.96 * full, rel=0.25)


def test_capped_percentile_intervals_cover_at_their_level(small_cap: int) -> None:
    """Many windows of four times the cap drawn from one population: the average-precision interval
    (bootstrap, capped) holds the population's value about 95% of the time."""
    rng = np.random.default_rng(7)
    y_all, p_all = _window(rng, 2_000_000)
    truth = skm.average_precision_score(y_all, p_all)
    windows = 40
    n = small_cap * 4
    covered = 0
    for _ in range(windows):
        idx = rng.integers(0, y_all.size, n)
        interval = bootstrap_interval(y_all[idx], p_all[idx], "average_precision", resamples=200)
        assert interval is not None
        covered += interval[0] <= truth <= interval[1]
    # 95% nominal: 40 windows cover 34 or more with probability ~0.99; an interval half as wide
    # (the cap's own spread unscaled would be wider, a wrong scale of 1/4 narrower) covers ~68%.
    assert covered >= 34
