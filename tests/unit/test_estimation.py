"""Label-free estimation: calibration on the test set, estimates against sklearn, variability, storage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlops.datagen.churn import generate_churn
from mlops.model.spec import TASK_ESTIMATORS, Estimator, EstimatorKind, ModelSpec, Task
from mlops.model.training import feature_frame, train_model
from mlops.monitoring import estimation
from mlops.monitoring.profile import CalibrationMap, read_reference_profile
from mlops.monitoring.window import ScoreGrid
from mlops.shared.errors import UnsupportedProfileFormat
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

DECISION = 0.5


def _realized(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    predicted = (p >= DECISION).astype(int)
    return {
        "roc_auc": skm.roc_auc_score(y, p),
        "average_precision": skm.average_precision_score(y, p),
        "accuracy": skm.accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted, zero_division=0),
        "recall": skm.recall_score(y, predicted),
        "f1": skm.f1_score(y, predicted),
    }


@pytest.fixture(
    scope="module",
    params=[k for k in EstimatorKind if k in TASK_ESTIMATORS[Task.BINARY_CLASSIFICATION]],
    ids=lambda k: k.value,
)
def trained_kind(request: pytest.FixtureRequest, churn_spec: ModelSpec) -> object:
    spec = churn_spec.model_copy(update={"estimator": Estimator(kind=request.param)})
    return train_model(generate_churn(6000, seed=31), spec, test_data=generate_churn(5000, seed=32))


def test_estimate_on_the_test_set_equals_sklearns_realized_metrics(trained_kind: object) -> None:
    # Given a model of each kind registered with 5,000 held-out test rows
    result = trained_kind
    y, p = result.test_labels, result.test_scores  # type: ignore[attr-defined]
    calibration = result.profile.estimation.calibration  # type: ignore[attr-defined]
    # When its own test scores are estimated without their labels
    estimate = estimation.estimate_metrics(ScoreGrid.of(p), calibration)
    # Then every metric equals sklearn's realized value within 0.003
    for name, value in _realized(y, p).items():
        assert estimate[name] == pytest.approx(value, abs=0.003), name


def test_estimate_follows_covariate_shift_for_an_over_confident_model() -> None:
    # Given an over-confident model (scores sharpen the true log-odds threefold) and a test set
    rng = np.random.default_rng(3)

    def sample(n: int, mean: float) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(mean, 1.0, n)
        y = (rng.random(n) < 1 / (1 + np.exp(-(x - 1.0)))).astype(int)
        return y, 1 / (1 + np.exp(-3 * (x - 1.0)))

    y_test, p_test = sample(20_000, 0.0)
    calibration = estimation.fit_calibration(y_test, p_test)
    assert skm.brier_score_loss(y_test, p_test) > skm.brier_score_loss(
        y_test, estimation.calibrated_cells(calibration)[estimation.score_cells(p_test)]
    )
    # When the inputs shift (the label's dependence on them unchanged)
    y, p = sample(200_000, 1.0)
    estimate = estimation.estimate_metrics(ScoreGrid.of(p), calibration)
    # Then the estimate is the realized value sklearn measures (sampling sd at this size ~0.001-0.002;
    # average precision also loses the order of the many scores saturated in the top grid cell)
    for name, value in _realized(y, p).items():
        assert estimate[name] == pytest.approx(value, abs=0.02 if name == "average_precision" else 0.01), name
    # while taking the scores at face value (the uncalibrated reading) would be far off
    naive = estimation.metrics_from_cells(
        ScoreGrid.of(p).sums, ScoreGrid.of(p).counts - ScoreGrid.of(p).sums, 500
    )
    assert abs(float(naive["accuracy"]) - skm.accuracy_score(y, p >= DECISION)) > 0.03


def test_estimate_interval_covers_the_realized_metric_of_fresh_labels() -> None:
    # Given calibrations fitted on 5,000 labelled rows of a calibrated model (a fresh test set each
    # time: the interval carries the calibration's own uncertainty, so coverage is over both)
    rng = np.random.default_rng(8)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        p = 1 / (1 + np.exp(-rng.normal(-1.0, 1.5, n)))
        return (rng.random(n) < p).astype(int), p

    covered = {"roc_auc": 0, "accuracy": 0}
    runs = 120
    for seed in range(runs):
        calibration = estimation.fit_calibration(*sample(5000))
        # When 1,000 new predictions are estimated, and their labels later arrive
        y, p = sample(1000)
        grid = ScoreGrid.of(p)
        realized = _realized(y, p)
        for name in covered:
            interval = estimation.estimate_interval(grid, calibration, name, seed=seed)
            assert interval is not None
            covered[name] += interval[0] <= realized[name] <= interval[1]
    # Then the 95% interval holds the realized value about 95% of the time (sd of this share ~0.02)
    for name, count in covered.items():
        assert 0.9 <= count / runs <= 0.99, name


def test_chunk_to_chunk_variability_matches_sklearn_on_random_chunks() -> None:
    # Given 5,000 labelled scores
    rng = np.random.default_rng(4)
    p = 1 / (1 + np.exp(-rng.normal(-1.0, 1.5, 5000)))
    y = (rng.random(5000) < p).astype(int)
    # When the performance reference is fitted
    reference = estimation.fit_performance_reference(y, p, seed=0)
    assert reference.chunks == 10 and reference.chunk_rows == 500
    # Then the realized sd across chunks is what sklearn's AUC shows on independent random chunks
    independent = []
    for _ in range(200):
        idx = rng.choice(5000, 500, replace=False)
        independent.append(skm.roc_auc_score(y[idx], p[idx]))
    assert reference.realized_sd["roc_auc"] == pytest.approx(np.std(independent, ddof=1), rel=0.2)
    # and the estimate varies less than the realized value (it does not see label noise)
    assert reference.estimate_sd["roc_auc"] < reference.realized_sd["roc_auc"]


def test_estimated_gap_threshold_shrinks_with_the_window_but_not_below_the_material_gap() -> None:
    rng = np.random.default_rng(6)
    p = 1 / (1 + np.exp(-rng.normal(-1.0, 1.5, 5000)))
    y = (rng.random(5000) < p).astype(int)
    reference = estimation.fit_performance_reference(y, p)
    small = estimation.estimated_gap_threshold(reference, "roc_auc", 500)
    large = estimation.estimated_gap_threshold(reference, "roc_auc", 2000)
    huge = estimation.estimated_gap_threshold(reference, "roc_auc", 10_000_000)
    assert small is not None and large is not None and huge is not None
    sd, sd_estimate = reference.realized_sd["roc_auc"], reference.estimate_sd["roc_auc"]
    test_sd = sd_estimate * np.sqrt(500 / 5000)
    # a 500-row window (one chunk): the larger of 3 sds of the estimate and 2 of the realized metric
    assert small == pytest.approx(max(3 * np.hypot(sd_estimate, test_sd), 2 * np.hypot(sd, test_sd)))
    # the test value's own error stays: a huge window's limit is what the test set alone allows
    assert huge == pytest.approx(max(estimation.MIN_MATERIAL_GAP, 3 * sd_estimate * np.sqrt(500 / 5000)))
    assert small > large > huge


def test_healthy_windows_rarely_reach_the_estimated_gap_threshold() -> None:
    # Given a reference fitted on 5,000 rows and 200 windows of 1,000 rows from the same population
    rng = np.random.default_rng(9)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        p = 1 / (1 + np.exp(-rng.normal(-1.0, 1.5, n)))
        return (rng.random(n) < p).astype(int), p

    y_test, p_test = sample(5000)
    reference = estimation.fit_performance_reference(y_test, p_test)
    test_auc = skm.roc_auc_score(y_test, p_test)
    reached = 0
    for _ in range(200):
        _, p = sample(1000)
        gap = test_auc - estimation.estimate_metrics(ScoreGrid.of(p), reference.calibration)["roc_auc"]
        threshold = estimation.estimated_gap_threshold(reference, "roc_auc", 1000)
        assert threshold is not None
        reached += gap >= threshold
    # Then at most 1% of them alarm (3 sd: ~0.1% expected)
    assert reached <= 2


def test_calibration_map_is_stored_as_plain_json_in_the_profile(churn_spec: ModelSpec) -> None:
    # Given a trained model
    result = train_model(generate_churn(3000, seed=5), churn_spec)
    stored = result.profile.model_dump_json()
    # When the profile is read back from its JSON bytes
    profile = read_reference_profile(stored.encode())
    # Then the calibration map is plain numbers that give the same estimate
    raw = json.loads(stored)["estimation"]["calibration"]
    assert set(raw) == {"grid_bins", "edges", "rows", "positives", "rates", "logistic", "logistic_covariance"}
    assert all(isinstance(v, (int, float)) for key in ("edges", "rates") for v in raw[key])
    assert raw["logistic"] is None or all(isinstance(v, float) for v in raw["logistic"])
    assert DECISION in raw["edges"]
    grid = ScoreGrid.of(result.test_scores)
    assert estimation.estimate_metrics(grid, profile.estimation.calibration) == estimation.estimate_metrics(
        grid, result.profile.estimation.calibration
    )
    # And the counts behind it add up to the test set
    assert sum(raw["rows"]) == result.test_rows
    assert sum(raw["positives"]) == int(result.test_labels.sum())


def test_an_older_profile_format_is_refused_with_a_clear_message(churn_spec: ModelSpec) -> None:
    result = train_model(generate_churn(1000, seed=6), churn_spec)
    old = json.loads(result.profile.model_dump_json())
    old["format"] = 1
    del old["estimation"]
    with pytest.raises(UnsupportedProfileFormat, match=r"format 1 is not readable.*mlops train"):
        read_reference_profile(json.dumps(old), "reference profile of version 3")


def test_calibration_borrows_a_rate_for_an_empty_side_of_the_threshold() -> None:
    # Given test scores that never reach the decision threshold
    rng = np.random.default_rng(2)
    p = rng.uniform(0.05, 0.4, 3000)
    y = (rng.random(3000) < p).astype(int)
    calibration = estimation.fit_calibration(y, p)
    # Then scores above it get the highest rate seen, not NaN
    assert np.isfinite(calibration.rates).all()
    assert calibration.rates[-1] == calibration.rates[-2]
    frame = pd.DataFrame({"p": [0.7]})
    assert (
        estimation.estimate_metrics(ScoreGrid.of(frame["p"].to_numpy()), calibration)["accuracy"] is not None
    )


def test_window_scores_of_a_real_model_are_estimated_near_sklearn_under_covariate_shift(
    trained_kind: object,
) -> None:
    # Given a churn model of each kind, and 20,000 customers whose charges and calls shifted
    result = trained_kind
    spec = result.spec  # type: ignore[attr-defined]
    if spec.estimator.kind is EstimatorKind.RANDOM_FOREST:
        # Vote shares mix rows of different risk: under covariate shift their calibration moves
        # too (a limit of every confidence-based estimate, documented in the monitoring notes
        # (docs/monitoring.md)).
        pytest.skip("random forest scores are not a function of the risk alone")
    shifted = generate_churn(20_000, seed=43, covariate_shift=1.0)
    p = result.pipeline.predict_proba(feature_frame(shifted, spec))[:, 1]  # type: ignore[attr-defined]
    y = shifted["churned"].to_numpy()
    # When the shifted scores are estimated
    calibration = result.profile.estimation.calibration  # type: ignore[attr-defined]
    estimate = estimation.estimate_metrics(ScoreGrid.of(p), calibration)
    # Then the estimate is within sampling error (AUC sd ~0.004 here) of sklearn's realized AUC
    assert estimate["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=0.015)


def test_logistic_map_matches_sklearns_unpenalised_logistic_regression() -> None:
    # Given test scores whose log-odds are too sharp by half (the logistic map's shape)
    rng = np.random.default_rng(21)
    x = rng.normal(-1.0, 1.2, 8000)
    y = (rng.random(8000) < 1 / (1 + np.exp(-x))).astype(int)
    p = 1 / (1 + np.exp(-1.5 * x))
    # When the calibration map is fitted
    calibration = estimation.fit_calibration(y, p)
    # Then the logistic map was chosen, with sklearn's coefficients on the logit of the score's cell
    assert calibration.logistic is not None
    middle = (estimation.score_cells(p) + 0.5) / calibration.grid_bins
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(
        np.log(middle / (1 - middle))[:, None], y
    )
    assert calibration.logistic[0] == pytest.approx(reference.intercept_[0], abs=1e-4)
    assert calibration.logistic[1] == pytest.approx(reference.coef_[0, 0], abs=1e-4)
    # And ROC AUC on the test set is still its realized one
    estimate = estimation.estimate_metrics(ScoreGrid.of(p), calibration)
    assert estimate["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=0.003)


def test_a_calibration_map_without_a_logistic_map_estimates_with_its_binned_rates() -> None:
    # Given a map as profiles stored it before the logistic map existed
    rng = np.random.default_rng(4)
    p = rng.uniform(0.02, 0.98, 6000)
    y = (rng.random(6000) < p).astype(int)
    stored = estimation.fit_calibration(y, p).model_dump(exclude={"logistic", "logistic_covariance"})
    calibration = CalibrationMap.model_validate(stored)
    # When scores are estimated with it
    grid = ScoreGrid.of(p)
    estimate = estimation.estimate_metrics(grid, calibration)
    # Then ROC AUC is the expected AUC of its binned rates, computed by sklearn on weighted cells
    q = estimation.calibrated_cells(calibration)
    cells = np.flatnonzero(grid.counts)
    weights = np.r_[grid.counts[cells] * q[cells], grid.counts[cells] * (1 - q[cells])]
    labels = np.r_[np.ones(cells.size), np.zeros(cells.size)]
    expected = skm.roc_auc_score(labels, np.r_[cells, cells], sample_weight=weights)
    assert estimate["roc_auc"] == pytest.approx(expected, abs=1e-9)


def test_agreement_limits_for_a_threshold_metric_follow_sklearns_label_noise_and_the_test_sets_size() -> None:
    # Given calibrated scores, binned maps fitted on 2,000 and on 8,000 labelled rows, and a window of
    # 1,000 scores
    rng = np.random.default_rng(12)

    def scores(n: int) -> np.ndarray:
        return 1 / (1 + np.exp(-rng.normal(-1.0, 1.5, n)))

    def fitted(n: int) -> CalibrationMap:
        p = scores(n)
        return estimation.fit_calibration((rng.random(n) < p).astype(int), p).model_copy(
            update={"logistic": None, "logistic_covariance": None}
        )

    small, large = fitted(2000), fitted(8000)
    p = scores(1000)
    grid = ScoreGrid.of(p)
    # When the agreement limits of accuracy are computed against each map
    limits = {n: estimation.agreement_limits(grid, m, "accuracy") for n, m in ((2000, small), (8000, large))}
    assert limits[2000] is not None and limits[8000] is not None
    z = 2.5758  # the 99% normal quantile
    # Then the window part is the spread of sklearn's accuracy over labels these scores could get
    realized = [skm.accuracy_score(rng.random(p.size) < p, p >= DECISION) for _ in range(400)]
    window_sd = (limits[8000].window[1] - limits[8000].window[0]) / (2 * z)
    assert window_sd == pytest.approx(np.std(realized, ddof=1), rel=0.2)
    # and the test set's part shrinks about as 1/sqrt(rows): four times the rows, about half the width
    width = {n: lim.reference[1] - lim.reference[0] for n, lim in limits.items()}
    assert 0.35 <= width[8000] / width[2000] <= 0.7
    # and the limit is the sum of the parts
    assert limits[8000].high == pytest.approx(limits[8000].window[1] + limits[8000].reference[1])
