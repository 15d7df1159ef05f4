"""The concept-shift check's false-alarm rate and power, each window against its own test set.

A version's calibration map comes from one test set, and that set's error is shared by every window
the version is monitored on; so a test that keeps one test set measures that set's luck, not the
check. Here every few windows get a fresh test set of the demo's size (1,250 rows: a quarter of
5,000), and the truth comes from sklearn on generated populations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from mlops.datagen.churn import generate_churn
from mlops.model.training import TrainingResult, feature_frame
from mlops.monitoring import estimation
from mlops.monitoring.performance import ConceptShiftCheck, concept_shift_check, production_performance
from mlops.monitoring.profile import PerformanceReference
from mlops.monitoring.window import ScoreGrid
from sklearn import metrics as skm

TEST_ROWS = 1250
# Labels in one of the demo's 24-hour windows: three 400-row slots labelled at 90%.
WINDOW_LABELS = 1070
TEST_SETS = 50
WINDOWS_PER_TEST_SET = 4
# Blend 30% of the new concept into the labels: ROC AUC falls by about 0.08 (checked below).
CONCEPT_SHIFT = 0.3


@dataclass
class Labelled:
    y: np.ndarray
    p: np.ndarray


def draw(trained: TrainingResult, rows: int, seed: int, concept_shift: float = 0.0) -> Labelled:
    data = generate_churn(rows, seed=seed, concept_shift=concept_shift)
    p = trained.pipeline.predict_proba(feature_frame(data, trained.spec))[:, 1]
    return Labelled(data["churned"].to_numpy(), p)


def check(trained: TrainingResult, window: Labelled, reference: PerformanceReference) -> ConceptShiftCheck:
    performance = production_performance(
        window.y, window.p, "roc_auc", trained.test_metrics, min_labels=200, resamples=0
    )
    result = concept_shift_check(window.y, window.p, performance, reference)
    assert result is not None
    return result


@pytest.fixture(scope="module")
def references(trained: TrainingResult) -> list[tuple[Labelled, PerformanceReference]]:
    """Independent test sets of the demo's size and the performance reference fitted on each."""
    out = []
    for i in range(TEST_SETS):
        test = draw(trained, TEST_ROWS, seed=70_000 + i)
        out.append((test, estimation.fit_performance_reference(test.y, test.p)))
    return out


@pytest.fixture(scope="module")
def population(trained: TrainingResult) -> Labelled:
    return draw(trained, 200_000, seed=79_999)


def test_in_distribution_windows_rarely_suspect_concept_shift(
    trained: TrainingResult, references: list[tuple[Labelled, PerformanceReference]], population: Labelled
) -> None:
    # Given 200 windows of 1,070 labelled predictions from the training distribution, four per test set
    true_map = estimation.fit_calibration(population.y, population.p)
    assert true_map.logistic is not None
    suspected = 0
    label_noise, window_sd = [], []
    for i, (_, reference) in enumerate(references):
        for j in range(WINDOWS_PER_TEST_SET):
            window = draw(trained, WINDOW_LABELS, seed=71_000 + WINDOWS_PER_TEST_SET * i + j)
            # When each is checked against the estimate from its version's test set
            result = check(trained, window, reference)
            # Then the realized value is sklearn's on those rows
            assert result.realized == pytest.approx(skm.roc_auc_score(window.y, window.p), abs=1e-12)
            suspected += result.suspected
            # (the window part of the limit against the labels' noise sklearn measures: realized minus
            # what the population's own calibration expects of these scores)
            grid = ScoreGrid.of(window.p)
            expected = estimation.estimate_metrics(grid, true_map)["roc_auc"]
            assert expected is not None
            label_noise.append(result.realized - expected)
            limits = estimation.agreement_limits(grid, reference.calibration, "roc_auc")
            assert limits is not None
            window_sd.append((limits.window[1] - limits.window[0]) / (2 * 2.5758))
    windows = TEST_SETS * WINDOWS_PER_TEST_SET
    # and at most 5% of them suspect it (the limit is built for ~1% per test set, far less per window)
    assert suspected <= 0.05 * windows
    # and the limit's window part is as wide as the labels' noise really is (sd of 200 values: ~5% error)
    assert np.std(label_noise, ddof=1) == pytest.approx(np.mean(window_sd), rel=0.2)


def test_the_limit_carries_the_test_sets_own_error(
    references: list[tuple[Labelled, PerformanceReference]], population: Labelled
) -> None:
    # Given 50 test sets of 1,250 rows, each with its calibration map, and a population of 200,000 rows
    true_auc = skm.roc_auc_score(population.y, population.p)
    grid = ScoreGrid.of(population.p)
    errors, reference_sd, covered = [], [], 0
    for _, reference in references:
        # When each map estimates the population's AUC from its scores alone
        estimate = estimation.estimate_metrics(grid, reference.calibration)["roc_auc"]
        limits = estimation.agreement_limits(grid, reference.calibration, "roc_auc")
        assert estimate is not None and limits is not None
        error = true_auc - estimate
        errors.append(error)
        reference_sd.append((limits.reference[1] - limits.reference[0]) / (2 * 2.5758))
        covered += limits.reference[0] <= error <= limits.reference[1]
    # Then the test sets' errors (against sklearn on the population) spread as the reference part says
    assert np.std(errors, ddof=1) == pytest.approx(np.mean(reference_sd), rel=0.3)
    # and its 99% limits hold nearly all of them
    assert covered >= 0.94 * len(references)


def test_a_realistic_concept_shift_is_suspected_in_nearly_every_window(
    trained: TrainingResult, references: list[tuple[Labelled, PerformanceReference]], population: Labelled
) -> None:
    # Given a concept shift that costs the model about 0.08 of ROC AUC (sklearn on 200,000 rows)
    shifted = draw(trained, 200_000, seed=72_999, concept_shift=CONCEPT_SHIFT)
    drop = skm.roc_auc_score(population.y, population.p) - skm.roc_auc_score(shifted.y, shifted.p)
    assert 0.06 <= drop <= 0.1
    # When 50 windows of 1,070 labelled predictions of the shifted world are checked, each against
    # the estimate from its own test set
    suspected = 0
    for i, (_, reference) in enumerate(references):
        window = draw(trained, WINDOW_LABELS, seed=73_000 + i, concept_shift=CONCEPT_SHIFT)
        result = check(trained, window, reference)
        suspected += result.suspected and result.difference < 0
    # Then nearly all of them suspect it, on the side of a loss
    assert suspected >= 0.9 * len(references)
