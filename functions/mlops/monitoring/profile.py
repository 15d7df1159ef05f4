"""Mergeable data profiles: histograms and category counts, never raw rows.

A reference profile is computed once at training time and stored in the bundle.
Monitoring profiles each window of production traffic on the *reference* bin edges,
so profiles of parts of a window merge exactly into the profile of the whole, and
drift statistics need nothing but counts. Numpy only: serving-sized Lambdas can use it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.model.canonical import MISSING_CATEGORY
from mlops.shared.errors import UnsupportedProfileFormat

# 2: tail sums on numeric histograms, and the performance reference (calibration map and
# chunk-to-chunk variability) for label-free estimation. Format 1 is refused when read.
PROFILE_FORMAT = 2
SUPPORTED_PROFILE_FORMATS = frozenset({PROFILE_FORMAT})
# Fine quantile bins: enough for KS and Wasserstein estimates within about 1/FINE_BINS
# of the exact value; PSI uses them grouped into PSI_BINS coarser bins.
FINE_BINS = 100
PSI_BINS = 10
SCORE_EDGES = [round(i / FINE_BINS, 10) for i in range(1, FINE_BINS)]


class ProfileMismatch(ValueError):
    """Two profiles built on different bin edges or features cannot be merged."""


class NumericHistogram(BaseModel):
    """Counts of a numeric column on fixed bin edges.

    ``counts[i]`` counts values ``v`` with ``edges[i-1] < v <= edges[i]``; the first bin is
    open below and the last open above, so ``len(counts) == len(edges) + 1``.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    edges: list[float]
    counts: list[int]
    missing: int = 0
    min: float | None = None
    max: float | None = None
    sum: float = 0.0
    sum_sq: float = 0.0
    # Sums of the values in the open outer bins, so the tail means (which the Wasserstein
    # distance needs) are exact rather than guessed from the total sum.
    below_sum: float = 0.0
    above_sum: float = 0.0

    @property
    def count(self) -> int:
        return int(sum(self.counts))

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    @property
    def std(self) -> float | None:
        n = self.count
        if n < 2:
            return None
        var = (self.sum_sq - self.sum * self.sum / n) / (n - 1)
        return float(np.sqrt(max(var, 0.0)))

    @property
    def missing_rate(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    def merge(self, other: NumericHistogram) -> NumericHistogram:
        if self.edges != other.edges:
            raise ProfileMismatch("numeric histograms have different bin edges")
        mins = [m for m in (self.min, other.min) if m is not None]
        maxs = [m for m in (self.max, other.max) if m is not None]
        return NumericHistogram(
            edges=self.edges,
            counts=[a + b for a, b in zip(self.counts, other.counts, strict=True)],
            missing=self.missing + other.missing,
            min=min(mins) if mins else None,
            max=max(maxs) if maxs else None,
            sum=self.sum + other.sum,
            sum_sq=self.sum_sq + other.sum_sq,
            below_sum=self.below_sum + other.below_sum,
            above_sum=self.above_sum + other.above_sum,
        )


class CategoricalCounts(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    counts: dict[str, int]
    missing: int = 0

    @property
    def count(self) -> int:
        return int(sum(self.counts.values()))

    @property
    def missing_rate(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    def merge(self, other: CategoricalCounts) -> CategoricalCounts:
        merged = Counter(self.counts)
        merged.update(other.counts)
        return CategoricalCounts(counts=dict(sorted(merged.items())), missing=self.missing + other.missing)


class DatasetProfile(BaseModel):
    """Per-feature histograms and counts of one data set (training data or a window)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    format: int = PROFILE_FORMAT
    rows: int
    numeric: dict[str, NumericHistogram]
    categorical: dict[str, CategoricalCounts]

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        if self.numeric.keys() != other.numeric.keys() or self.categorical.keys() != other.categorical.keys():
            raise ProfileMismatch("profiles describe different features")
        return DatasetProfile(
            rows=self.rows + other.rows,
            numeric={k: v.merge(other.numeric[k]) for k, v in self.numeric.items()},
            categorical={k: v.merge(other.categorical[k]) for k, v in self.categorical.items()},
        )

    def edges(self) -> dict[str, list[float]]:
        return {k: v.edges for k, v in self.numeric.items()}


class CalibrationMap(BaseModel):
    """Probability of a positive given the model's score, fitted on the labelled test rows.

    Piecewise constant: interval ``j`` holds scores in ``[edges[j-1], edges[j])`` (open at both
    ends of the list). Edges are multiples of 1/``grid_bins`` so each cell of the monitor's score
    grid falls in one interval, and the decision threshold is always an edge. Plain numbers only:
    it is stored in the profile and verified by its sha256 like every artifact.
    """

    model_config = ConfigDict(extra="forbid")

    grid_bins: int
    edges: list[float]
    rows: list[int]
    positives: list[int]
    rates: list[float]
    # ROC AUC uses a logistic map of the score's logit when
    # it predicted the test labels at least as well out of fold: [intercept, slope] and their
    # covariance. Absent in profiles written before it, which then use the binned rates.
    logistic: list[float] | None = None
    logistic_covariance: list[list[float]] | None = None


class PerformanceReference(BaseModel):
    """What label-free estimation needs from the test set: calibration and chunk-to-chunk spread."""

    model_config = ConfigDict(extra="forbid")

    calibration: CalibrationMap
    test_rows: int
    chunk_rows: int
    chunks: int
    # Standard deviation across test-set chunks of ``chunk_rows`` rows, per metric.
    estimate_sd: dict[str, float]
    realized_sd: dict[str, float]


class ReferenceMetric(BaseModel):
    """A version's reference figure of its primary metric and what it rests on: a value from a
    few hundred rows is an estimate with an interval, not an exact bar."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    value: float | None
    rows: int
    positives: int
    standard_error: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    source: str


class ReferenceProfile(BaseModel):
    """What monitoring compares production against, fixed when a version is trained."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    format: int = PROFILE_FORMAT
    features: DatasetProfile
    scores: NumericHistogram = Field(description="predicted probabilities on the test set")
    test_metrics: dict[str, float | None]
    positive_rate: float
    seen_categories: dict[str, list[str]]
    estimation: PerformanceReference
    # Absent in profiles written before references carried their sample size.
    reference_metric: ReferenceMetric | None = None


def read_reference_profile(data: bytes | str, source: str = "reference profile") -> ReferenceProfile:
    """Parse a stored reference profile, refusing formats this code does not read."""
    try:
        raw = json.loads(data)
    except json.JSONDecodeError as err:
        raise UnsupportedProfileFormat(f"{source}: not JSON ({err})") from None
    found = raw.get("format") if isinstance(raw, dict) else None
    if found not in SUPPORTED_PROFILE_FORMATS:
        raise UnsupportedProfileFormat(
            f"{source}: format {found!r} is not readable (this version reads format {PROFILE_FORMAT}, "
            "which adds the calibration map of label-free estimation); register the model again "
            "(mlops train) to monitor it"
        )
    try:
        return ReferenceProfile.model_validate(raw)
    except ValidationError as err:
        raise UnsupportedProfileFormat(f"{source}: invalid format {found} profile: {err}") from None


def quantile_edges(values: np.ndarray, bins: int = FINE_BINS) -> list[float]:
    """Distinct inner quantile edges of the finite values (fewer when values repeat)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    qs = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1], method="linear")
    edges = np.unique(qs)
    return [float(e) for e in edges]


def numeric_histogram(
    values: np.ndarray | Sequence[float | None], edges: Sequence[float]
) -> NumericHistogram:
    arr = np.asarray(values, dtype=np.float64)
    finite_mask = np.isfinite(arr)
    finite = arr[finite_mask]
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), finite, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    below, above = tail_sums(finite, idx, len(edges))
    return NumericHistogram(
        edges=list(edges),
        counts=[int(c) for c in counts],
        missing=int(arr.size - finite.size),
        min=float(finite.min()) if finite.size else None,
        max=float(finite.max()) if finite.size else None,
        sum=float(finite.sum()),
        sum_sq=float(np.dot(finite, finite)),
        below_sum=below,
        above_sum=above,
    )


def tail_sums(finite: np.ndarray, idx: np.ndarray, n_edges: int) -> tuple[float, float]:
    """Sums of the values in the first and last (open) bins, given each value's bin index."""
    if n_edges == 0:
        return float(finite.sum()), 0.0
    return float(finite[idx == 0].sum()), float(finite[idx == n_edges].sum())


def is_missing_category(value: Any) -> bool:
    return value is None or value == MISSING_CATEGORY or (isinstance(value, float) and value != value)


def categorical_counts(values: Iterable[Any]) -> CategoricalCounts:
    counter: Counter[str] = Counter()
    missing = 0
    for v in values:
        if is_missing_category(v):
            missing += 1
        else:
            counter[str(v)] += 1
    return CategoricalCounts(counts=dict(sorted(counter.items())), missing=missing)


def profile_columns(
    columns: Mapping[str, Any],
    numeric_edges: Mapping[str, Sequence[float]],
    categorical: Sequence[str],
) -> DatasetProfile:
    """Profile column arrays on given numeric edges (the reference's, for a window)."""
    rows = 0
    numeric: dict[str, NumericHistogram] = {}
    for name, edges in numeric_edges.items():
        numeric[name] = numeric_histogram(columns[name], edges)
        rows = numeric[name].count + numeric[name].missing
    cats: dict[str, CategoricalCounts] = {}
    for name in categorical:
        cats[name] = categorical_counts(columns[name])
        rows = cats[name].count + cats[name].missing
    return DatasetProfile(rows=rows, numeric=numeric, categorical=cats)


def build_dataset_profile(
    columns: Mapping[str, Any],
    numeric: Sequence[str],
    categorical: Sequence[str],
    bins: int = FINE_BINS,
) -> DatasetProfile:
    """Profile training data, choosing the quantile edges from the data itself."""
    edges = {name: quantile_edges(np.asarray(columns[name], dtype=np.float64), bins) for name in numeric}
    return profile_columns(columns, edges, categorical)
