"""One monitoring window folded into counts: feature histograms, score sketches, group counts.

Prediction log objects are parsed into column batches and added one at a time, so
memory holds one object's rows plus counts; only labelled predictions are kept row by
row (probability, label, sensitive attributes), because metrics need them.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops.model.evaluation import DECISION_THRESHOLD
from mlops.monitoring.profile import (
    MISSING_CATEGORY,
    CategoricalCounts,
    DatasetProfile,
    NumericHistogram,
    ReferenceProfile,
    tail_sums,
)

# Uniform score grid for the label-free estimate: fine enough that ties within a bin
# move an expected ROC AUC by far less than its sampling error.
SCORE_GRID_BINS = 1000
# The group name of a missing sensitive attribute, as mlops.model.evaluation.group_metrics names it.
MISSING_GROUP = "(missing)"


@dataclass
class PredictionBatch:
    """The rows of one log object as columns."""

    prediction_ids: list[str]
    probability: np.ndarray
    numeric: dict[str, np.ndarray]
    categorical: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.prediction_ids)

    def take(self, mask: np.ndarray) -> PredictionBatch:
        idx = np.flatnonzero(mask)
        return PredictionBatch(
            prediction_ids=[self.prediction_ids[i] for i in idx],
            probability=self.probability[idx],
            numeric={k: v[idx] for k, v in self.numeric.items()},
            categorical={k: [v[i] for i in idx] for k, v in self.categorical.items()},
        )


def _numeric_column(values: list[Any]) -> np.ndarray:
    try:
        # None becomes NaN in a float array: the missing marker of the profiles.
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        out = np.full(len(values), np.nan)
        for i, v in enumerate(values):
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                continue
        return out


def parse_prediction_log(
    data: bytes,
    numeric: Sequence[str],
    categorical: Sequence[str],
    start: str | None = None,
    end: str | None = None,
) -> PredictionBatch:
    """Columns of one gzip JSON Lines log object, rows with ``start <= timestamp < end`` only.

    The lines are joined into one JSON array and parsed by a single ``json.loads``,
    which is faster than one call per line. Timestamps in the canonical form
    (``...Z``, fixed width) compare as text; anything else is parsed.
    """
    text = gzip.decompress(data).decode("utf-8")
    rows = json.loads("[" + ",".join(line for line in text.split("\n") if line) + "]")
    if start is not None or end is not None:
        stamps = [r["timestamp"] for r in rows]
        keep = _in_window(stamps, start, end)
        if not keep.all():
            rows = [r for r, k in zip(rows, keep, strict=True) if k]
    feats = [r["features"] for r in rows]
    return PredictionBatch(
        prediction_ids=[r["prediction_id"] for r in rows],
        probability=np.array([r["probability"] for r in rows], dtype=np.float64),
        numeric={n: _numeric_column([f.get(n) for f in feats]) for n in numeric},
        categorical={c: [f.get(c) for f in feats] for c in categorical},
    )


def _in_window(stamps: list[str], start: str | None, end: str | None) -> np.ndarray:
    from mlops.cloud.storage import iso, parse_time

    canonical = len({len(s) for s in stamps}) <= 1 and all(s.endswith("Z") for s in stamps)
    if canonical and stamps and len(stamps[0]) == 27:
        arr = np.array(stamps)
        keep = np.ones(len(stamps), dtype=bool)
        if start is not None:
            keep &= arr >= start
        if end is not None:
            keep &= arr < end
        return keep
    normal = np.array([iso(parse_time(s)) for s in stamps]) if stamps else np.array([], dtype=str)
    keep = np.ones(len(stamps), dtype=bool)
    if start is not None:
        keep &= normal >= start
    if end is not None:
        keep &= normal < end
    return keep


@dataclass
class _NumericCounts:
    edges: np.ndarray
    counts: np.ndarray
    missing: int = 0
    min: float | None = None
    max: float | None = None
    sum: float = 0.0
    sum_sq: float = 0.0
    below_sum: float = 0.0
    above_sum: float = 0.0

    @classmethod
    def on(cls, edges: Sequence[float]) -> _NumericCounts:
        e = np.asarray(edges, dtype=np.float64)
        return cls(edges=e, counts=np.zeros(e.size + 1, dtype=np.int64))

    def add(self, values: np.ndarray) -> None:
        finite_mask = np.isfinite(values)
        finite = values[finite_mask]
        self.missing += int(values.size - finite.size)
        if finite.size == 0:
            return
        # Same bin convention as mlops.monitoring.profile.numeric_histogram: (edge[i-1], edge[i]].
        idx = np.searchsorted(self.edges, finite, side="left")
        self.counts += np.bincount(idx, minlength=self.counts.size)
        below, above = tail_sums(finite, idx, self.edges.size)
        self.below_sum += below
        self.above_sum += above
        lo, hi = float(finite.min()), float(finite.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        self.sum += float(finite.sum())
        self.sum_sq += float(np.dot(finite, finite))

    def histogram(self) -> NumericHistogram:
        return NumericHistogram(
            edges=[float(e) for e in self.edges],
            counts=[int(c) for c in self.counts],
            missing=self.missing,
            min=self.min,
            max=self.max,
            sum=self.sum,
            sum_sq=self.sum_sq,
            below_sum=self.below_sum,
            above_sum=self.above_sum,
        )


def _category_key(value: Any) -> str | None:
    if value is None or value == MISSING_CATEGORY or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else str(value)


@dataclass
class ScoreGrid:
    """Counts and probability sums of predictions on a uniform [0, 1] grid (mergeable)."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_GRID_BINS, dtype=np.int64))
    sums: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_GRID_BINS, dtype=np.float64))

    def add(self, proba: np.ndarray) -> None:
        p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
        idx = np.minimum((p * SCORE_GRID_BINS).astype(np.int64), SCORE_GRID_BINS - 1)
        self.counts += np.bincount(idx, minlength=SCORE_GRID_BINS)
        self.sums += np.bincount(idx, weights=p, minlength=SCORE_GRID_BINS)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def of(cls, proba: np.ndarray) -> ScoreGrid:
        grid = cls()
        grid.add(proba)
        return grid


@dataclass
class LabelledRows:
    """Predictions that have a label: what production metrics and TPR by group need."""

    probability: list[np.ndarray] = field(default_factory=list)
    label: list[np.ndarray] = field(default_factory=list)
    groups: dict[str, list[Any]] = field(default_factory=dict)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Probabilities, labels and groups, row by row, in ascending order of probability.

        No figure depends on the rows' order, and every rank statistic sorts the scores: sorted
        once here, each later sort finds them in order (a tenth of the time of a first sort).
        """
        p = np.concatenate(self.probability) if self.probability else np.zeros(0)
        y = np.concatenate(self.label) if self.label else np.zeros(0, dtype=int)
        order = np.argsort(p)
        groups = {k: np.array(v, dtype=object)[order] for k, v in self.groups.items()}
        return p[order], y[order], groups


class WindowAccumulator:
    """Everything a monitor run needs from one version's window, built batch by batch."""

    def __init__(self, reference: ReferenceProfile, sensitive_attributes: Sequence[str] = ()) -> None:
        self.numeric = {k: _NumericCounts.on(h.edges) for k, h in reference.features.numeric.items()}
        self.categorical: dict[str, Counter[str | None]] = {
            k: Counter() for k in reference.features.categorical
        }
        self.scores = _NumericCounts.on(reference.scores.edges)
        self.score_grid = ScoreGrid()
        self.sensitive = list(sensitive_attributes)
        # attribute -> group -> [predictions, predicted positives]
        self.selection: dict[str, dict[str, list[int]]] = {a: {} for a in self.sensitive}
        self.labelled = LabelledRows(groups={a: [] for a in self.sensitive})
        self.rows = 0
        self.matched_ids: set[str] = set()

    @property
    def numeric_names(self) -> list[str]:
        return list(self.numeric)

    @property
    def categorical_names(self) -> list[str]:
        return list(self.categorical)

    def add(self, batch: PredictionBatch, labels: Mapping[str, int] | None = None) -> None:
        n = len(batch)
        if n == 0:
            return
        self.rows += n
        for name, acc in self.numeric.items():
            acc.add(batch.numeric[name])
        for name, counter in self.categorical.items():
            counter.update(batch.categorical[name])
        self.scores.add(batch.probability)
        self.score_grid.add(batch.probability)
        positive = batch.probability >= DECISION_THRESHOLD
        for attribute in self.sensitive:
            values = batch.categorical.get(attribute)
            if values is None:
                continue
            table = self.selection[attribute]
            # Counting (value, positive) pairs runs in C; names are normalised per distinct value.
            for (value, pos), c in Counter(zip(values, positive.tolist(), strict=True)).items():
                cell = table.setdefault(_category_key(value) or MISSING_GROUP, [0, 0])
                cell[0] += c
                cell[1] += c if pos else 0
        if labels:
            hits = [(i, labels[pid]) for i, pid in enumerate(batch.prediction_ids) if pid in labels]
            if hits:
                idx = np.fromiter((i for i, _ in hits), dtype=np.int64, count=len(hits))
                self.labelled.probability.append(batch.probability[idx])
                self.labelled.label.append(np.fromiter((y for _, y in hits), dtype=np.int64, count=len(hits)))
                for attribute in self.sensitive:
                    col = batch.categorical.get(attribute, [None] * n)
                    self.labelled.groups[attribute].extend(col[i] for i in idx)
                self.matched_ids.update(batch.prediction_ids[i] for i in idx)

    def dataset_profile(self) -> DatasetProfile:
        categorical = {}
        for name, counter in self.categorical.items():
            counts: Counter[str] = Counter()
            missing = 0
            for value, c in counter.items():
                key = _category_key(value)
                if key is None:
                    missing += c
                else:
                    counts[key] += c
            categorical[name] = CategoricalCounts(counts=dict(sorted(counts.items())), missing=missing)
        return DatasetProfile(
            rows=self.rows,
            numeric={k: v.histogram() for k, v in self.numeric.items()},
            categorical=categorical,
        )

    def score_histogram(self) -> NumericHistogram:
        return self.scores.histogram()

    @property
    def label_count(self) -> int:
        return int(sum(a.size for a in self.labelled.label))
