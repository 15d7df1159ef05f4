"""Drift, performance and estimate statistics against independent references (scipy, sklearn)."""

from __future__ import annotations

import numpy as np
import pytest
from mlops.monitoring import drift
from mlops.monitoring.performance import (
    fairness,
    metric_interval,
    production_performance,
)
from mlops.monitoring.profile import (
    FINE_BINS,
    build_dataset_profile,
    categorical_counts,
    numeric_histogram,
    quantile_edges,
)
from scipy import integrate, stats
from scipy.spatial.distance import jensenshannon
from sklearn import metrics as skm


def _pair(ref: np.ndarray, cur: np.ndarray) -> tuple[object, object]:
    edges = quantile_edges(ref)
    return numeric_histogram(ref, edges), numeric_histogram(cur, edges)


SAMPLES = [
    ("normal, no shift", lambda r: (r.normal(0, 1, 5000), r.normal(0, 1, 4000))),
    ("normal, 0.3 sd shift", lambda r: (r.normal(0, 1, 5000), r.normal(0.3, 1, 4000))),
    ("lognormal, scale change", lambda r: (r.lognormal(1, 0.5, 6000), r.lognormal(1, 0.7, 3000))),
    ("normal, 1 sd shift", lambda r: (r.normal(10, 2, 3000), r.normal(12, 2, 3000))),
]


@pytest.mark.parametrize("n", [12_000, 60_000])
def test_ks_p_values_of_large_windows_stay_within_4_percent_of_smirnovs(n: int) -> None:
    # Given counts whose effective sample size is above the exact computation's bound,
    reference = np.full(100, 2 * n // 100)
    for shift in (0.0, 0.3, 0.8, 1.5, 2.5):
        d_wanted = shift / np.sqrt(n)
        current = reference.astype(float).copy()
        moved = round(d_wanted * current.sum())
        current[0] += moved
        current[-1] -= moved
        # When KS is computed from the counts
        d, p = drift.ks_from_counts(reference, current)
        # Then its p-value is Smirnov's for the statistic and the effective size, to 4%.
        en = round(reference.sum() * current.sum() / (reference.sum() + current.sum()))
        assert p == pytest.approx(stats.kstwo.sf(d, en), rel=0.04, abs=1e-12)


@pytest.mark.parametrize(("label", "make"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_ks_from_counts_matches_ks_2samp(label: str, make: object) -> None:
    # Given samples binned on the reference's 100 quantile bins
    ref, cur = make(np.random.default_rng(7))  # type: ignore[operator]
    h_ref, h_cur = _pair(ref, cur)
    # When KS is computed from the counts
    d, p = drift.ks_from_counts(np.asarray(h_ref.counts), np.asarray(h_cur.counts))
    exact = stats.ks_2samp(ref, cur, method="asymp")
    # Then the statistic is within one fine bin's mass of the exact one (tolerance 0.02),
    # never above it, and the p-value is Smirnov's for that statistic (and agrees on rejection).
    assert exact.statistic - 0.02 <= d <= exact.statistic + 1e-12
    assert p == pytest.approx(stats.kstwo.sf(d, round(len(ref) * len(cur) / (len(ref) + len(cur)))))
    assert (p < 0.01) == (exact.pvalue < 0.01)


@pytest.mark.parametrize(("label", "make"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_wasserstein_from_histograms_matches_scipy(label: str, make: object) -> None:
    ref, cur = make(np.random.default_rng(11))  # type: ignore[operator]
    h_ref, h_cur = _pair(ref, cur)
    ours = drift.wasserstein_from_histograms(h_ref, h_cur) / np.std(ref, ddof=1)
    exact = stats.wasserstein_distance(ref, cur) / np.std(ref, ddof=1)
    # Tolerance: 0.01 reference standard deviations plus 5% (mass assumed even within a bin).
    assert ours == pytest.approx(exact, abs=0.01, rel=0.05)


HEAVY_TAILS_AND_SCALE = [
    ("t(3), no shift", lambda r: (r.standard_t(3, 10_000), r.standard_t(3, 10_000))),
    ("t(2), no shift", lambda r: (r.standard_t(2, 10_000), r.standard_t(2, 10_000))),
    ("t(3), 0.3 shift", lambda r: (r.standard_t(3, 10_000), r.standard_t(3, 10_000) + 0.3)),
    ("t(3), scale x1.5", lambda r: (r.standard_t(3, 10_000), 1.5 * r.standard_t(3, 10_000))),
    ("normal, scale x2", lambda r: (r.normal(0, 1, 10_000), r.normal(0, 2, 10_000))),
    ("normal, scale x0.5", lambda r: (r.normal(0, 1, 10_000), r.normal(0, 0.5, 10_000))),
    ("lognormal, sigma 1 -> 1.5", lambda r: (r.lognormal(0, 1, 10_000), r.lognormal(0, 1.5, 10_000))),
]


@pytest.mark.parametrize(("label", "make"), HEAVY_TAILS_AND_SCALE, ids=[s[0] for s in HEAVY_TAILS_AND_SCALE])
def test_wasserstein_effect_size_is_within_one_fine_bin_of_scipy_on_heavy_tails_and_scale_changes(
    label: str, make: object
) -> None:
    # Given heavy-tailed or rescaled samples of 10,000 rows binned on the reference's quantile edges
    ref, cur = make(np.random.default_rng(21))  # type: ignore[operator]
    h_ref, h_cur = _pair(ref, cur)
    # When the effect size (W1 / reference sd) is computed from the histograms alone
    sd = np.std(ref, ddof=1)
    ours = drift.wasserstein_from_histograms(h_ref, h_cur) / sd
    # Then it is within 1/FINE_BINS of scipy's exact value on the raw samples
    assert ours == pytest.approx(stats.wasserstein_distance(ref, cur) / sd, abs=1 / FINE_BINS)


def test_psi_on_grouped_fine_bins_equals_decile_psi_from_raw_samples() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(0, 1, 20000), rng.normal(0.4, 1.2, 8000)
    h_ref, h_cur = _pair(ref, cur)
    ends = drift.psi_groups(h_ref.counts)
    ours = drift.population_stability_index(
        drift.group_counts(h_ref.counts, ends), drift.group_counts(h_cur.counts, ends)
    )
    # Independent: deciles of the raw reference, PSI = KL(c||r) + KL(r||c) with scipy's entropy.
    deciles = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    r = np.bincount(np.searchsorted(deciles, ref), minlength=10) / ref.size
    c = np.bincount(np.searchsorted(deciles, cur), minlength=10) / cur.size
    reference = stats.entropy(c, r) + stats.entropy(r, c)
    assert len(ends) == 10
    assert ours == pytest.approx(reference, rel=1e-6)


def test_psi_bands_follow_shift_size() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(0, 1, 50000)
    psi = {}
    for shift in (0.0, 0.2, 0.6):
        h_ref, h_cur = _pair(ref, rng.normal(shift, 1, 50000))
        psi[shift] = drift.numeric_feature_drift("x", h_ref, h_cur).psi
    assert psi[0.0] < 0.01 < psi[0.2] < 0.1 < 0.25 < psi[0.6]


def test_categorical_statistics_match_scipy() -> None:
    rng = np.random.default_rng(9)
    ref = rng.choice(["a", "b", "c", "d"], 3000, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(["a", "b", "c", "d", "new"], 2000, p=[0.3, 0.3, 0.2, 0.15, 0.05])
    f = drift.categorical_feature_drift("cat", categorical_counts(ref), categorical_counts(cur))
    cats = ["a", "b", "c", "d", "new"]
    table = np.array([[np.sum(ref == k) for k in cats], [np.sum(cur == k) for k in cats]])
    chi = stats.chi2_contingency(table, correction=False)
    assert f.chi_square == pytest.approx(chi.statistic, rel=1e-9)
    assert f.p_value == pytest.approx(chi.pvalue, rel=1e-6, abs=1e-300)
    assert f.jensen_shannon == pytest.approx(jensenshannon(table[0], table[1], base=2), abs=1e-9)
    assert f.unseen_share == pytest.approx(np.mean(cur == "new"))
    assert f.unseen_categories == ["new"]
    assert f.plot is not None and f.plot.labels[-1] == drift.UNSEEN_LABEL


def test_missing_rate_change_is_measured_and_decides_drift() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1, 3000)
    cur = rng.normal(0, 1, 3000)
    cur[rng.random(3000) < 0.3] = np.nan
    h_ref, h_cur = _pair(ref, cur)
    f = drift.numeric_feature_drift("x", h_ref, h_cur)
    assert f.missing_rate_change == pytest.approx(np.mean(np.isnan(cur)))
    (decided,) = drift.decide([f], drift.DriftPolicy())
    assert decided.drifted and "missing rate" in decided.reason


@pytest.mark.parametrize("missing_share", [0.99, 1.0])
def test_an_almost_all_missing_feature_is_flagged_and_counted_in_the_drift_share(
    missing_share: float,
) -> None:
    # Given a window of 2,000 rows where one feature went (almost) entirely missing and two did not
    rng = np.random.default_rng(12)
    ref = {"x": rng.normal(0, 1, 3000), "y": rng.normal(0, 1, 3000), "c": rng.choice(["u", "v"], 3000)}
    cur = {"x": rng.normal(0, 1, 2000), "y": rng.normal(0, 1, 2000), "c": rng.choice(["u", "v"], 2000)}
    cur["x"][rng.random(2000) < missing_share] = np.nan
    reference = build_dataset_profile(ref, ["x", "y"], ["c"])
    current = build_dataset_profile(cur, ["x", "y"], ["c"])
    current = current.model_copy(
        update={"numeric": {k: numeric_histogram(cur[k], reference.numeric[k].edges) for k in ("x", "y")}}
    )
    # When drift is decided
    result = drift.dataset_drift(reference, current, drift.DriftPolicy())
    by_name = {f.feature: f for f in result.features}
    x = by_name["x"]
    # Then the missing-rate rule flags it (never "not tested"), with the rate numpy measures
    assert x.tested and x.drifted and x.band is drift.Band.DRIFT and "missing rate" in x.reason
    assert x.missing_rate_change == pytest.approx(np.mean(np.isnan(cur["x"])) - np.mean(np.isnan(ref["x"])))
    # and no distribution statistic is reported from its handful of values
    assert x.psi is None and x.p_value is None
    # And the drift share counts it among the tested features: 1 of 3
    assert result.tested == 3 and result.drifted == 1
    assert result.drift_share == pytest.approx(1 / 3)


def test_holm_adjustment_matches_its_definition() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    adjusted = drift.holm_adjust(p)
    # Brute force: adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
    order = sorted(range(len(p)), key=lambda i: p[i])
    expected = {}
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        expected[i] = running
    assert adjusted == pytest.approx([expected[i] for i in range(len(p))])


def test_a_feature_with_too_few_values_is_not_tested() -> None:
    rng = np.random.default_rng(2)
    h_ref, h_cur = _pair(rng.normal(0, 1, 3000), rng.normal(3, 1, 50))
    (decided,) = drift.decide(
        [drift.numeric_feature_drift("x", h_ref, h_cur)], drift.DriftPolicy(min_count=100)
    )
    assert not decided.tested and not decided.drifted and decided.band is drift.Band.NOT_TESTED


def test_significant_but_tiny_shift_on_a_huge_sample_is_not_drift() -> None:
    rng = np.random.default_rng(4)
    h_ref, h_cur = _pair(rng.normal(0, 1, 200_000), rng.normal(0.03, 1, 1_000_000))
    (decided,) = drift.decide([drift.numeric_feature_drift("x", h_ref, h_cur)], drift.DriftPolicy())
    assert decided.p_value_adjusted is not None and decided.p_value_adjusted < 1e-6
    assert not decided.drifted


def test_dataset_profile_statistics_cover_every_feature() -> None:
    rng = np.random.default_rng(8)
    cols = {"x": rng.normal(0, 1, 2000), "c": rng.choice(["u", "v"], 2000)}
    ref = build_dataset_profile(cols, ["x"], ["c"])
    cur = build_dataset_profile(
        {"x": rng.normal(2, 1, 2000), "c": rng.choice(["u", "v"], 2000)}, ["x"], ["c"]
    )
    cur = cur.model_copy(
        update={"numeric": {"x": numeric_histogram(rng.normal(2, 1, 2000), ref.numeric["x"].edges)}}
    )
    result = drift.dataset_drift(ref, cur, drift.DriftPolicy(drift_share=0.5))
    by_name = {f.feature: f for f in result.features}
    assert by_name["x"].drifted and not by_name["c"].drifted
    assert result.drift_share == 0.5 and result.dataset_drift is True


# -- performance ---------------------------------------------------------------------------------


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(-1.0, 1.5, n)))
    y = (rng.random(n) < p).astype(int)
    return y, p


def test_production_metrics_match_sklearn_and_interval_covers_the_value() -> None:
    y, p = _calibrated(2000, 1)
    perf = production_performance(y, p, "roc_auc", {"roc_auc": 0.9}, min_labels=200)
    assert perf.value == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert perf.metrics["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert perf.metrics["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert perf.metrics["f1"] == pytest.approx(skm.f1_score(y, (p >= 0.5).astype(int)))
    assert perf.metric_gap == pytest.approx(0.9 - perf.value)
    assert perf.ci_low is not None and perf.ci_high is not None
    assert perf.ci_low < perf.value < perf.ci_high
    # The 95% bootstrap interval of AUC at 2,000 labels is about +-2 standard errors (~0.02 each).
    assert 0.02 < perf.ci_high - perf.ci_low < 0.1


COVERAGE_RUNS = 3000


@pytest.mark.parametrize(
    ("positives", "negatives", "separation"),
    [
        (120, 280, 1.2),
        (20, 480, 1.2),
        (300, 700, 1.5),
        # True AUC 0.71 with 60 positives: a corner where normal-theory degrees of freedom
        # covered ~96%.
        (60, 340, float(np.sqrt(2) * stats.norm.ppf(0.71))),
        # Near an AUC of 1 with few positives the logit is far from straight over the interval.
        (20, 480, float(np.sqrt(2) * stats.norm.ppf(0.92))),
        (30, 470, float(np.sqrt(2) * stats.norm.ppf(0.95))),
    ],
    ids=[
        "400 labels",
        "20 positives",
        "1,000 labels",
        "AUC 0.71, 60 positives",
        "AUC 0.92, 20 positives",
        "AUC 0.95, 30 positives",
    ],
)
def test_auc_interval_covers_the_true_auc_within_one_point_of_95_percent(
    positives: int, negatives: int, separation: float
) -> None:
    # Given binormal scores, whose true AUC is Phi(d / sqrt(2)) (scipy), and 3,000 seeded samples
    truth = stats.norm.cdf(separation / np.sqrt(2))
    rng = np.random.default_rng(2024)
    y = np.r_[np.ones(positives, int), np.zeros(negatives, int)]
    covered = 0
    for _ in range(COVERAGE_RUNS):
        p = np.concatenate([rng.normal(separation, 1, positives), rng.normal(0, 1, negatives)])
        # When the production interval of ROC AUC is computed
        interval = metric_interval(y, p, "roc_auc")
        assert interval is not None
        covered += interval[0] <= truth <= interval[1]
    # Then it covers the truth 94-96% of the time (the run's own sd is 0.4 points)
    assert abs(covered / COVERAGE_RUNS - 0.95) <= 0.01


def test_auc_interval_midpoint_and_width_follow_sklearn_auc() -> None:
    y, p = _calibrated(2000, 5)
    interval = metric_interval(y, p, "roc_auc")
    assert interval is not None
    assert interval[0] < skm.roc_auc_score(y, p) < interval[1]


def test_accuracy_interval_covers_the_true_accuracy_within_one_point_of_95_percent() -> None:
    # Given calibrated Beta(2, 5) scores, whose true accuracy is E[max(p, 1 - p)] (scipy's quadrature)
    truth, _ = integrate.quad(lambda t: max(t, 1 - t) * stats.beta(2, 5).pdf(t), 0, 1, points=[0.5])
    rng = np.random.default_rng(77)
    covered = 0
    for _ in range(COVERAGE_RUNS):
        p = rng.beta(2, 5, 300)
        y = (rng.random(300) < p).astype(int)
        # When the accuracy interval of 300 labels is computed
        interval = metric_interval(y, p, "accuracy")
        assert interval is not None
        covered += interval[0] <= truth <= interval[1]
    # Then it covers the truth 94-96% of the time
    assert abs(covered / COVERAGE_RUNS - 0.95) <= 0.01


def test_no_gap_below_min_labels() -> None:
    y, p = _calibrated(150, 3)
    perf = production_performance(y, p, "roc_auc", {"roc_auc": 0.9}, min_labels=200)
    assert perf.metric_gap is None and perf.value is None
    assert perf.label_count == 150


def test_fairness_gap_from_selection_and_tpr() -> None:
    rng = np.random.default_rng(0)
    groups = rng.choice(["a", "b"], 4000)
    p = np.where(groups == "a", rng.uniform(0.3, 1.0, 4000), rng.uniform(0.0, 0.7, 4000))
    y = (rng.random(4000) < p).astype(int)
    selection = {
        "g": {g: [int((groups == g).sum()), int(((groups == g) & (p >= 0.5)).sum())] for g in ("a", "b")}
    }
    result = fairness(selection, {"g": groups.astype(object)}, y, p)
    rate = {g: np.mean(p[groups == g] >= 0.5) for g in ("a", "b")}
    tpr = {g: skm.recall_score(y[groups == g], p[groups == g] >= 0.5) for g in ("a", "b")}
    (attr,) = result.attributes
    assert attr.selection_rate_gap == pytest.approx(abs(rate["a"] - rate["b"]))
    assert attr.true_positive_rate_gap == pytest.approx(abs(tpr["a"] - tpr["b"]))
    assert result.gap == pytest.approx(max(attr.selection_rate_gap, attr.true_positive_rate_gap))
