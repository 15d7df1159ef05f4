"""Label-free performance estimation: a calibration map fitted on the test set, and what follows from it.

- Calibration: the test rows (held out from training, labelled) give the probability of a
  positive per score interval: grid-aligned bins of about equal rows, made monotone by
  pooling adjacent violators, separately below and above the decision threshold so that
  expected threshold metrics on the test set are its realized ones. ROC AUC uses a logistic
  map of the score's logit instead when that predicts the test labels as well out of fold
  (`fit_calibration`). Both are stored as plain numbers in the reference profile
  (sha256-verified with the bundle), never as a pickle.
- Estimate: with calibrated probabilities ``q``, a window's score grid gives expected positives
  ``count * q`` and negatives ``count * (1 - q)`` per cell, hence expected ROC AUC, average
  precision and threshold metrics (confidence-based performance estimation). On the test
  set itself the estimate equals the realized metric up to ties within a calibration bin.
- Interval: a parametric simulation of the realized metric the window would show if the
  calibration holds: each bin's rate drawn from its Beta posterior (the map's own
  uncertainty; the logistic map's coefficients from their normal law), then each cell's
  positives from a binomial (the labels' noise).
- Agreement: how far labels may take a window's realized metric from its estimate while the
  relation between scores and outcome holds (`agreement_limits`): the labels' noise given the
  window's scores, new in every window, plus the map's error, which the one test set gives every
  window of a version alike, so the two limits add.
- Variability: the test set cut at random into chunks gives the chunk-to-chunk standard
  deviation of the estimate and of the realized metric; they scale as 1/sqrt(rows) to any
  window, and set the estimated-gap alarm threshold instead of a fixed number.

Blind spot: a changed relation between inputs and outcome (concept shift) leaves the scores
and hence the estimate unchanged. `concept_shift_check` catches it once labels arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from mlops.model.evaluation import DECISION_THRESHOLD
from mlops.monitoring.profile import CalibrationMap, PerformanceReference
from mlops.monitoring.window import SCORE_GRID_BINS, ScoreGrid

ESTIMATED_METRICS = ("roc_auc", "average_precision", "accuracy", "precision", "recall", "f1")
# The metric of the whole ranking that the logistic map (when chosen) estimates. Threshold metrics
# need only the expected positives on each side of the threshold, which the binned map reproduces;
# average precision weighs the top scores, where a two-parameter map's shape error concentrates
# (random forest: 0.005 off on its own test set), so it keeps the binned map too.
RANKING_METRICS = ("roc_auc",)
# Folds of the test set on which the logistic and the binned map are compared before one is chosen.
CALIBRATION_FOLDS = 5
# Calibration bins before pooling: at most this many, of at least MIN_BIN_ROWS test rows each.
# Fine bins keep the test-set estimate exact (few pairs tied inside a bin) and follow the
# score-to-risk curve closely; pooling adjacent violators then merges the noisy ones.
MAX_CALIBRATION_BINS = 1000
MIN_BIN_ROWS = 50
# Chunking of the test set for its chunk-to-chunk variability: CHUNKS chunks per random
# partition, CHUNK_REPEATS partitions (so the standard deviation rests on ~200 chunks).
CHUNKS = 10
MIN_CHUNK_ROWS = 50
CHUNK_REPEATS = 20
SIMULATIONS = 300
CONFIDENCE = 0.95
# Whether labels agree with the estimate (`agreement_limits`) is judged at 99%, not 95%: the part of
# the limit due to the test set is drawn once per version and persists in every window, so its level
# is the share of versions that would warn for their whole life although nothing changed (1 in 100,
# not 1 in 20); and consecutive 24-hour windows share most of their labels, so two breaches in three
# periods confirm little and each window's level is close to the alarm's per-period level.
AGREEMENT_CONFIDENCE = 0.99
AGREEMENT_SIMULATIONS = 1000
# The estimated-gap alarm fires when the estimate's drop is both clear and material. Clear: beyond
# ESTIMATE_SIGMAS of the estimate's own chunk-to-chunk spread at the window's size (what healthy
# windows' estimates do; with the test estimate's error). Material: beyond WARNING_SIGMAS of the
# realized metric's spread, the warning limit of a control chart on labelled windows, so that an
# expected drop there would push a labelled window of this size past it half the time. The
# estimate sees no label noise, so asking it to clear the realized metric's 3-sd action limit (a
# drop of ~0.025 AUC at 2,000 rows) missed drops labelled windows were already showing. Never
# below MIN_MATERIAL_GAP (at 10^6 rows a 0.002 drop is not news).
ESTIMATE_SIGMAS = 3.0
WARNING_SIGMAS = 2.0
MIN_MATERIAL_GAP = 0.01


# -- metrics from expected (or simulated) positives and negatives per score cell ---------------


def metrics_from_cells(
    pos: np.ndarray, neg: np.ndarray, cut: int, only: str | None = None
) -> dict[str, np.ndarray]:
    """ROC AUC, average precision and threshold metrics from positives/negatives per score cell.

    Cells are ordered by score (the last axis); scores in one cell are ties, as in the ROC
    curve's trapezoids. Leading axes are independent draws (a simulation), so this is
    vectorised; an undefined value is NaN. `only` computes one metric (simulations need one).
    """
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    total_pos = pos.sum(axis=-1)
    total_neg = neg.sum(axis=-1)
    both = (total_pos > 0) & (total_neg > 0)
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        if only in (None, "roc_auc"):
            neg_below = np.cumsum(neg, axis=-1) - neg
            auc = np.sum(pos * (neg_below + 0.5 * neg), axis=-1) / (total_pos * total_neg)
            out["roc_auc"] = np.where(both, auc, np.nan)
        if only in (None, "average_precision"):
            tp_curve = np.cumsum(pos[..., ::-1], axis=-1)
            fp_curve = np.cumsum(neg[..., ::-1], axis=-1)
            seen = tp_curve + fp_curve
            precision_curve = np.where(seen > 0, tp_curve / np.maximum(seen, 1e-300), 1.0)
            ap = np.sum(pos[..., ::-1] * precision_curve, axis=-1) / total_pos
            out["average_precision"] = np.where(both, ap, np.nan)
        if only is None or only not in out:
            tp = pos[..., cut:].sum(axis=-1)
            fp = neg[..., cut:].sum(axis=-1)
            fn = pos[..., :cut].sum(axis=-1)
            tn = neg[..., :cut].sum(axis=-1)
            n = tp + fp + fn + tn
            some = n > 0
            out["accuracy"] = np.where(some, (tp + tn) / n, np.nan)
            out["precision"] = np.where(some, np.where(tp + fp > 0, tp / (tp + fp), 0.0), np.nan)
            out["recall"] = np.where(some, np.where(tp + fn > 0, tp / (tp + fn), 0.0), np.nan)
            out["f1"] = np.where(
                some, np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0), np.nan
            )
    return out


def _decision_cell(grid_bins: int) -> int:
    return round(DECISION_THRESHOLD * grid_bins)


def _finite(value: Any) -> float | None:
    v = float(value)
    return v if np.isfinite(v) else None


# -- calibration ----------------------------------------------------------------------------------


def score_cells(proba: np.ndarray, grid_bins: int = SCORE_GRID_BINS) -> np.ndarray:
    """The score-grid cell of each probability, as `ScoreGrid` assigns them."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    return np.minimum((p * grid_bins).astype(np.int64), grid_bins - 1)


def _pool_adjacent_violators(rows: np.ndarray, positives: np.ndarray) -> list[tuple[int, int]]:
    """Blocks [start, end) of bins whose pooled rates are non-decreasing (weighted by rows)."""
    blocks: list[list[float]] = []  # [start, end, rows, positives]
    for i, (r, k) in enumerate(zip(rows, positives, strict=True)):
        blocks.append([i, i + 1, float(r), float(k)])
        while len(blocks) > 1 and blocks[-2][3] * blocks[-1][2] > blocks[-1][3] * blocks[-2][2]:
            last = blocks.pop()
            blocks[-1][1] = last[1]
            blocks[-1][2] += last[2]
            blocks[-1][3] += last[3]
    return [(int(b[0]), int(b[1])) for b in blocks]


def _side_bins(counts: np.ndarray, lo: int, hi: int, target: int) -> list[int]:
    """Cell indices where bins of at least `target` rows end, within cells [lo, hi)."""
    ends: list[int] = []
    filled = 0
    for cell in range(lo, hi):
        filled += int(counts[cell])
        if filled >= target:
            ends.append(cell + 1)
            filled = 0
    if not ends or ends[-1] != hi:
        if ends and filled < target // 2:
            ends[-1] = hi  # a small (or empty) remainder joins the bin before it
        else:
            ends.append(hi)
    return ends


def fit_calibration(y: np.ndarray, proba: np.ndarray, grid_bins: int = SCORE_GRID_BINS) -> CalibrationMap:
    """Calibration map from labelled scores: binned rates, and the logistic map when it predicts as well.

    The binned, monotone map split at the decision threshold makes threshold metrics on the test
    set exactly its realized ones. For ROC AUC the whole score-to-risk curve matters:
    each bin's rate carries its ~50 rows' label noise and the test set's local mix of rows,
    which a shifted window weighs differently; a two-parameter logistic map of the score's logit
    has far less of both. It is used when its out-of-fold Brier score on the test set is no
    worse than the binned map's (a model whose miscalibration is not logistic in shape keeps
    the binned map).
    """
    y = np.asarray(y, dtype=np.int64)
    cells = score_cells(proba, grid_bins)
    binned = _fit_binned(y, cells, grid_bins)
    if _logistic_predicts_as_well(y, cells, grid_bins):
        fitted = _fit_logistic(y, cells, grid_bins)
        if fitted is not None:
            beta, covariance = fitted
            return binned.model_copy(
                update={"logistic": beta.tolist(), "logistic_covariance": covariance.tolist()}
            )
    return binned


def _cell_logits(grid_bins: int) -> np.ndarray:
    middle = (np.arange(grid_bins) + 0.5) / grid_bins
    return np.log(middle / (1 - middle))


def _logistic(beta: np.ndarray, logits: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-(beta[..., 0:1] + beta[..., 1:2] * logits))))


def _fit_logistic(y: np.ndarray, cells: np.ndarray, grid_bins: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Maximum-likelihood [intercept, slope] of P(positive) on the logit of the score's cell, and
    their covariance (the inverse Fisher information); None when it does not converge."""
    positives = int(y.sum())
    if min(positives, y.size - positives) < 2:
        return None
    x = _cell_logits(grid_bins)[cells]
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(100):
        q = _logistic(beta, x)
        information = design.T @ (design * (q * (1 - q))[:, None])
        step = np.linalg.solve(information, design.T @ (y - q))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    else:
        return None
    q = _logistic(beta, x)
    information = design.T @ (design * (q * (1 - q))[:, None])
    covariance = np.linalg.inv(information)
    if not (np.isfinite(beta).all() and np.isfinite(covariance).all()):
        return None
    return beta, covariance


def _logistic_predicts_as_well(y: np.ndarray, cells: np.ndarray, grid_bins: int) -> bool:
    """Whether the logistic map's out-of-fold Brier score is at most the binned map's."""
    folds = np.random.default_rng(0).permutation(y.size) % CALIBRATION_FOLDS
    logits = _cell_logits(grid_bins)
    logistic_loss = binned_loss = 0.0
    for fold in range(CALIBRATION_FOLDS):
        train, held_out = folds != fold, folds == fold
        fitted = _fit_logistic(y[train], cells[train], grid_bins)
        if fitted is None:
            return False
        q_logistic = _logistic(fitted[0], logits[cells[held_out]])
        q_binned = calibrated_cells(_fit_binned(y[train], cells[train], grid_bins))[cells[held_out]]
        logistic_loss += float(np.sum((y[held_out] - q_logistic) ** 2))
        binned_loss += float(np.sum((y[held_out] - q_binned) ** 2))
    return logistic_loss <= binned_loss


def _fit_binned(y: np.ndarray, cells: np.ndarray, grid_bins: int) -> CalibrationMap:
    """Monotone, grid-aligned binned map, split at the decision threshold."""
    counts = np.bincount(cells, minlength=grid_bins)
    positives = np.bincount(cells, weights=y, minlength=grid_bins)
    cut = _decision_cell(grid_bins)
    target = max(MIN_BIN_ROWS, int(np.ceil(y.size / MAX_CALIBRATION_BINS)))
    edges: list[int] = []
    rows: list[int] = []
    pos: list[int] = []
    for lo, hi in ((0, cut), (cut, grid_bins)):
        bin_ends = _side_bins(counts, lo, hi, target)
        starts = [lo, *bin_ends[:-1]]
        bin_rows = np.array([counts[a:b].sum() for a, b in zip(starts, bin_ends, strict=True)])
        bin_pos = np.array([positives[a:b].sum() for a, b in zip(starts, bin_ends, strict=True)])
        for a, b in _pool_adjacent_violators(bin_rows, bin_pos):
            edges.append(bin_ends[b - 1])
            rows.append(int(bin_rows[a:b].sum()))
            pos.append(round(float(bin_pos[a:b].sum())))
    edges.pop()  # the last interval is open above
    rates = [k / r if r else float("nan") for k, r in zip(pos, rows, strict=True)]
    # An empty side (no test score above the threshold, say) borrows its neighbour's rate.
    filled = [j for j in range(len(rates)) if rows[j]]
    for i in range(len(rates)):
        if not rows[i]:
            nearest = min(filled, key=lambda j: abs(j - i), default=None)
            rates[i] = rates[nearest] if nearest is not None else 0.5
    return CalibrationMap(
        grid_bins=grid_bins,
        edges=[e / grid_bins for e in edges],
        rows=rows,
        positives=pos,
        rates=[float(r) for r in rates],
    )


def cell_intervals(calibration: CalibrationMap) -> np.ndarray:
    """For each score-grid cell, the index of the calibration interval it falls in."""
    edge_cells = np.rint(np.asarray(calibration.edges) * calibration.grid_bins).astype(np.int64)
    return np.searchsorted(edge_cells, np.arange(calibration.grid_bins), side="right")


def calibrated_cells(calibration: CalibrationMap) -> np.ndarray:
    """Calibrated probability of a positive for each score-grid cell (the binned map)."""
    return np.asarray(calibration.rates, dtype=np.float64)[cell_intervals(calibration)]


def ranking_cells(calibration: CalibrationMap) -> np.ndarray:
    """Probability of a positive per score-grid cell for ROC AUC: the logistic map if chosen."""
    if calibration.logistic is None:
        return calibrated_cells(calibration)
    return _logistic(np.asarray(calibration.logistic), _cell_logits(calibration.grid_bins))


def expected_metrics(
    counts: np.ndarray, threshold_q: np.ndarray, ranking_q: np.ndarray, cut: int
) -> dict[str, np.ndarray]:
    """Expected metrics of score-cell counts: threshold metrics from one map, ranking ones from the other."""
    values = metrics_from_cells(counts * threshold_q, counts * (1 - threshold_q), cut)
    if ranking_q is not threshold_q:
        ranked = metrics_from_cells(counts * ranking_q, counts * (1 - ranking_q), cut)
        values.update({name: ranked[name] for name in RANKING_METRICS})
    return values


# -- estimates --------------------------------------------------------------------------------------


def _check_grid(grid: ScoreGrid, calibration: CalibrationMap) -> None:
    if grid.counts.size != calibration.grid_bins:
        raise ValueError(
            f"score grid has {grid.counts.size} cells, the calibration map {calibration.grid_bins}"
        )


def estimate_metrics(grid: ScoreGrid, calibration: CalibrationMap) -> dict[str, float | None]:
    """Expected metrics of the scores in `grid`, with calibrated probabilities."""
    _check_grid(grid, calibration)
    if grid.total == 0:
        return {}
    counts = grid.counts.astype(np.float64)
    cut = _decision_cell(calibration.grid_bins)
    values = expected_metrics(counts, calibrated_cells(calibration), ranking_cells(calibration), cut)
    return {k: _finite(v) for k, v in values.items()}


def _map_draws(
    calibration: CalibrationMap, occupied: np.ndarray, metric: str, rng: np.random.Generator, simulations: int
) -> tuple[np.ndarray, np.ndarray]:
    """The map's probability of a positive per occupied cell: its point value and draws of it.

    The draws are the map's own uncertainty, the finite sample of the test set it was fitted on:
    the logistic map's coefficients from their asymptotic normal law (for ROC AUC, when chosen),
    otherwise each bin's rate from its Jeffreys posterior (a bin with no test rows keeps its
    borrowed rate).
    """
    if metric in RANKING_METRICS and calibration.logistic is not None and calibration.logistic_covariance:
        logits = _cell_logits(calibration.grid_bins)[occupied]
        beta = rng.multivariate_normal(
            np.asarray(calibration.logistic), np.asarray(calibration.logistic_covariance), size=simulations
        )
        return _logistic(np.asarray(calibration.logistic), logits), _logistic(beta, logits)
    rows = np.asarray(calibration.rows, dtype=np.float64)
    pos = np.asarray(calibration.positives, dtype=np.float64)
    rates = np.asarray(calibration.rates, dtype=np.float64)
    interval_of = cell_intervals(calibration)[occupied]
    drawn = np.where(
        rows > 0,
        rng.beta(pos + 0.5, np.maximum(rows - pos, 0) + 0.5, size=(simulations, rows.size)),
        rates,
    )
    return rates[interval_of], drawn[:, interval_of]


def estimate_interval(
    grid: ScoreGrid,
    calibration: CalibrationMap,
    metric: str,
    confidence: float = CONFIDENCE,
    simulations: int = SIMULATIONS,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Interval of the realized `metric` these scores would show if the calibration holds: the map's
    uncertainty and the labels' noise in one simulation."""
    _check_grid(grid, calibration)
    if grid.total == 0 or metric not in ESTIMATED_METRICS:
        return None
    rng = np.random.default_rng(seed)
    occupied = np.flatnonzero(grid.counts)
    counts = grid.counts[occupied]
    cut = int(np.searchsorted(occupied, _decision_cell(calibration.grid_bins)))
    _, q = _map_draws(calibration, occupied, metric, rng, simulations)
    simulated_pos = rng.binomial(counts, q)
    values = metrics_from_cells(simulated_pos, counts - simulated_pos, cut, only=metric)[metric]
    return _quantile_interval(values, simulations, confidence)


class AgreementLimits(NamedTuple):
    """How far a window's realized metric may fall from its estimate (realized minus estimate) while
    the relation between scores and outcome holds, in two parts that behave differently over time.

    - ``window``: the labels' noise given these scores, the realized metric of labels drawn from the
      map minus the estimate. It is new in every window.
    - ``reference``: the map's own error, the estimate with the map's coefficients (or rates) drawn
      from their sampling law minus the estimate. It comes from the one test set the map was fitted
      on, so every window of a version shares it.

    Each is a (low, high) pair. Because one part persists, the limits add rather than combine in
    quadrature: for any test set whose error lies within its pair, a window falls outside
    ``low``..``high`` only when its labels' noise leaves the window pair.
    """

    window: tuple[float, float]
    reference: tuple[float, float]

    @property
    def low(self) -> float:
        return self.window[0] + self.reference[0]

    @property
    def high(self) -> float:
        return self.window[1] + self.reference[1]


def agreement_limits(
    grid: ScoreGrid,
    calibration: CalibrationMap,
    metric: str,
    confidence: float = AGREEMENT_CONFIDENCE,
    simulations: int = AGREEMENT_SIMULATIONS,
    seed: int = 0,
) -> AgreementLimits | None:
    """The limits of realized minus estimated `metric` on the labelled predictions in `grid`.

    Each part is its simulated mean plus or minus the normal quantile of `confidence` times its
    simulated standard deviation: at a 99% level the empirical 0.5% quantile of a few thousand
    draws rests on a handful of them, the standard deviation on all.
    """
    _check_grid(grid, calibration)
    if grid.total == 0 or metric not in ESTIMATED_METRICS:
        return None
    rng = np.random.default_rng(seed)
    occupied = np.flatnonzero(grid.counts)
    counts = grid.counts[occupied]
    cut = int(np.searchsorted(occupied, _decision_cell(calibration.grid_bins)))
    point, drawn = _map_draws(calibration, occupied, metric, rng, simulations)
    estimate = metrics_from_cells(counts * point, counts * (1 - point), cut, only=metric)[metric]
    if not np.isfinite(estimate):
        return None
    labelled = rng.binomial(counts, point, size=(simulations, counts.size))
    realized = metrics_from_cells(labelled, counts - labelled, cut, only=metric)[metric]
    expected = metrics_from_cells(counts * drawn, counts * (1 - drawn), cut, only=metric)[metric]
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    window = _normal_limits(realized - estimate, simulations, z)
    reference = _normal_limits(expected - estimate, simulations, z)
    if window is None or reference is None:
        return None
    return AgreementLimits(window=window, reference=reference)


def _normal_limits(values: np.ndarray, simulations: int, z: float) -> tuple[float, float] | None:
    values = values[np.isfinite(values)]
    if values.size < simulations // 2:
        return None
    centre, spread = float(values.mean()), float(values.std(ddof=1))
    return centre - z * spread, centre + z * spread


def _quantile_interval(values: np.ndarray, simulations: int, confidence: float) -> tuple[float, float] | None:
    values = values[np.isfinite(values)]
    if values.size < simulations // 2:
        return None
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return float(lo), float(hi)


# -- the reference's own variability ---------------------------------------------------------------


def fit_performance_reference(y: np.ndarray, proba: np.ndarray, seed: int = 0) -> PerformanceReference:
    """Calibration map and chunk-to-chunk standard deviations of estimate and realized metrics."""
    y = np.asarray(y, dtype=np.int64)
    calibration = fit_calibration(y, proba)
    grid_bins = calibration.grid_bins
    cells = score_cells(proba, grid_bins)
    q = calibrated_cells(calibration)
    q_ranking = ranking_cells(calibration)
    cut = _decision_cell(grid_bins)
    n = int(y.size)
    chunks = int(np.clip(n // MIN_CHUNK_ROWS, 2, CHUNKS)) if n >= 2 * MIN_CHUNK_ROWS else 0
    estimate_sd: dict[str, float] = {}
    realized_sd: dict[str, float] = {}
    chunk_rows = n // chunks if chunks else 0
    if chunks:
        rng = np.random.default_rng(seed)
        chunk_counts, chunk_pos = [], []
        for _ in range(CHUNK_REPEATS):
            order = rng.permutation(n)
            for part in np.array_split(order[: chunks * chunk_rows], chunks):
                chunk_counts.append(np.bincount(cells[part], minlength=grid_bins))
                chunk_pos.append(np.bincount(cells[part], weights=y[part], minlength=grid_bins))
        counts = np.asarray(chunk_counts, dtype=np.float64)
        positives = np.asarray(chunk_pos, dtype=np.float64)
        estimated = expected_metrics(counts, q, q_ranking, cut)
        realized = metrics_from_cells(positives, counts - positives, cut)
        for name in ESTIMATED_METRICS:
            for source, target in ((estimated, estimate_sd), (realized, realized_sd)):
                values = source[name][np.isfinite(source[name])]
                if values.size >= 10:
                    target[name] = float(np.std(values, ddof=1))
    return PerformanceReference(
        calibration=calibration,
        test_rows=n,
        chunk_rows=chunk_rows,
        chunks=chunks,
        estimate_sd=estimate_sd,
        realized_sd=realized_sd,
    )


def scaled_sd(
    reference: PerformanceReference, sds: Mapping[str, float], metric: str, rows: int
) -> float | None:
    """A chunk-to-chunk standard deviation carried to `rows` rows (it shrinks as 1/sqrt(rows))."""
    sd = sds.get(metric)
    if sd is None or rows <= 0 or reference.chunk_rows <= 0:
        return None
    return float(sd * np.sqrt(reference.chunk_rows / rows))


def estimated_gap_threshold(reference: PerformanceReference, metric: str, rows: int) -> float | None:
    """The estimated gap beyond which a window of `rows` rows alarms, from the test set's variability.

    Both limits are chunk-to-chunk standard deviations of the test set carried to the window's
    size, each combined with the test value's own error (the test value equals the test set's
    estimate, which differs from the population's by the estimate's spread at the test set's
    size): ESTIMATE_SIGMAS of the estimate's spread (a drop healthy windows' estimates do not
    show) and WARNING_SIGMAS of the realized metric's (a drop labelled windows would show as
    abnormal), whichever is larger, and at least MIN_MATERIAL_GAP.
    """
    window_estimate_sd = scaled_sd(reference, reference.estimate_sd, metric, rows)
    window_realized_sd = scaled_sd(reference, reference.realized_sd, metric, rows)
    test_sd = scaled_sd(reference, reference.estimate_sd, metric, reference.test_rows)
    if window_estimate_sd is None or window_realized_sd is None or test_sd is None:
        return None
    return max(
        MIN_MATERIAL_GAP,
        ESTIMATE_SIGMAS * float(np.hypot(window_estimate_sd, test_sd)),
        WARNING_SIGMAS * float(np.hypot(window_realized_sd, test_sd)),
    )
