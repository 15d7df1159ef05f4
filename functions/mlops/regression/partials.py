"""Incremental monitoring of a regression version: one stored profile per hour partition, a window
is their merge (the scheme of `mlops.monitoring.partials`, with predicted values for scores).

An hour's partial holds what needs no label: feature counts and the predicted values on the
reference's bin edges, and sums over its rows of the loss model's expected absolute and squared
errors and their powers and products with the prediction (`LossSums`: the label-free
estimate of a window and its spread come from their merge). It is stored with the hour's rows
(prediction id, predicted value, the row's two expected losses, sensitive attributes) and the
manifest of the log objects it covers, and reused while that manifest holds. Labels are joined
when the window is assembled, hour by hour, into mergeable error sums (per hour and per group) and
the labelled rows the intervals need (with their expected losses), so feedback that arrives late
counts without its hour's logs being read again.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlops.cloud.logstore import FirstSeen
from mlops.cloud.storage import get_bytes, iso
from mlops.model.spec import ModelSpec
from mlops.monitoring.partials import (
    Manifest,
    PartialKind,
    PartialStore,
    ReadStats,
    hour_partials,
)
from mlops.monitoring.profile import DatasetProfile, NumericHistogram, numeric_histogram, profile_columns
from mlops.monitoring.window import _in_window, _numeric_column
from mlops.regression.estimation import expected_losses
from mlops.regression.metrics import _group_text
from mlops.regression.profile import RegressionProfile
from mlops.regression.uncertainty import LossSums

# 2: the partial and its rows in one object (format 1 kept them in two).
REGRESSION_PARTIAL_FORMAT = 2
REGRESSION_HOUR_NAME = "regression-hour.json.gz"


class RegressionHourPartial(BaseModel):
    """What one version's predictions in one hour (or its part inside a window) say without labels."""

    model_config = ConfigDict(extra="forbid")

    format: int = REGRESSION_PARTIAL_FORMAT
    task: Literal["regression"] = "regression"
    version: int
    hour: str
    lo: str | None = None
    hi: str | None = None
    covers: list[tuple[str, str]]
    bytes_read: int = 0
    engine: str = "python"
    rows: int
    features: DatasetProfile
    predictions: NumericHistogram
    expected_losses: LossSums


@dataclass
class ValueRows:
    """What the label join needs of an hour: each prediction's id, predicted value, expected |error|
    and error² (the loss model's, so labelled rows are compared with it without their features),
    and sensitive values."""

    prediction_ids: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    expected_absolute: list[float] = field(default_factory=list)
    expected_squared: list[float] = field(default_factory=list)
    groups: dict[str, list[Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.prediction_ids,
            "v": self.values,
            "fa": self.expected_absolute,
            "fs": self.expected_squared,
            "g": self.groups,
        }

    @classmethod
    def from_json(cls, body: Any, sensitive: Sequence[str]) -> ValueRows:
        n = len(body["id"])
        return cls(
            prediction_ids=body["id"],
            values=body["v"],
            expected_absolute=body["fa"],
            expected_squared=body["fs"],
            groups={a: body["g"].get(a, [None] * n) for a in sensitive},
        )


@dataclass
class ValueBatch:
    """The rows of one regression log object as columns (features as logged, None when absent)."""

    prediction_ids: list[str]
    timestamps: list[str]
    values: np.ndarray
    columns: dict[str, list[Any]]

    def take(self, mask: np.ndarray) -> ValueBatch:
        idx = np.flatnonzero(mask)
        return ValueBatch(
            prediction_ids=[self.prediction_ids[i] for i in idx],
            timestamps=[self.timestamps[i] for i in idx],
            values=self.values[idx],
            columns={k: [v[i] for i in idx] for k, v in self.columns.items()},
        )


def parse_value_log(
    data: bytes, features: Sequence[str], start: str | None = None, end: str | None = None
) -> ValueBatch:
    """Columns of one gzip JSON Lines regression log object, rows with ``start <= timestamp < end``."""
    text = gzip.decompress(data).decode("utf-8")
    rows = json.loads("[" + ",".join(line for line in text.split("\n") if line) + "]")
    batch = ValueBatch(
        prediction_ids=[r["prediction_id"] for r in rows],
        timestamps=[r["timestamp"] for r in rows],
        values=_numeric_column([r["value"] for r in rows]),
        columns={n: [r["features"].get(n) for r in rows] for n in features},
    )
    if (start is not None or end is not None) and rows:
        keep = _in_window(batch.timestamps, start, end)
        if not keep.all():
            batch = batch.take(keep)
    return batch


@dataclass
class ValueProfile:
    """What some rows say without labels: feature counts, predicted values, expected losses per row."""

    features: DatasetProfile
    predictions: NumericHistogram
    expected_absolute: np.ndarray
    expected_squared: np.ndarray
    expected_losses: LossSums


def profile_values(
    spec: ModelSpec, profile: RegressionProfile, columns: Mapping[str, Sequence[Any]], values: np.ndarray
) -> ValueProfile:
    features = profile_columns(columns, profile.features.edges(), spec.categorical_features)
    predictions = numeric_histogram(values, profile.predictions.edges)
    if values.size == 0:
        absolute, squared = np.zeros(0), np.zeros(0)
    else:
        absolute, squared = expected_losses(profile.loss_model, columns, values)
    return ValueProfile(
        features, predictions, absolute, squared, LossSums.from_losses(absolute, squared, values)
    )


def python_hour_profile(
    s3: Any,
    bucket: str,
    spec: ModelSpec,
    profile: RegressionProfile,
    version: int,
    hour: datetime,
    covers: Manifest,
    lo: str | None,
    hi: str | None,
) -> tuple[RegressionHourPartial, ValueRows]:
    """Read the hour's objects in key order, each prediction once, into a partial and its rows."""
    ids: list[str] = []
    values: list[np.ndarray] = []
    columns: dict[str, list[Any]] = {n: [] for n in spec.feature_names}
    first = FirstSeen()
    read = 0
    for key, _ in covers:
        data = get_bytes(s3, bucket, key)
        read += len(data)
        batch = parse_value_log(data, spec.feature_names, lo, hi)
        keep = first.keep(key, batch.prediction_ids)
        if keep is not None:
            batch = batch.take(np.array(keep, dtype=bool))
        ids.extend(batch.prediction_ids)
        values.append(batch.values)
        for name in columns:
            columns[name].extend(batch.columns[name])
    predicted = np.concatenate(values) if values else np.zeros(0)
    profiled = profile_values(spec, profile, columns, predicted)
    partial = RegressionHourPartial(
        version=version,
        hour=iso(hour),
        lo=lo,
        hi=hi,
        covers=covers,
        bytes_read=read,
        rows=len(ids),
        features=profiled.features,
        predictions=profiled.predictions,
        expected_losses=profiled.expected_losses,
    )
    rows = ValueRows(
        prediction_ids=ids,
        values=predicted.tolist(),
        expected_absolute=profiled.expected_absolute.tolist(),
        expected_squared=profiled.expected_squared.tolist(),
        groups={a: list(columns[a]) for a in spec.sensitive_attributes},
    )
    return partial, rows


@dataclass
class ErrorSums:
    """Mergeable sums of labelled predictions: enough for RMSE, MAE, mean error and R² exactly.

    The target's spread is held as a mean and a sum of squared deviations (merged by Chan's
    rule), not as a raw sum of squares, so R² keeps its precision when the target's mean is
    large against its spread.
    """

    n: int = 0
    residual_sum: float = 0.0
    squared_sum: float = 0.0
    absolute_sum: float = 0.0
    target_mean: float = 0.0
    target_m2: float = 0.0

    @classmethod
    def of(cls, y_true: np.ndarray, predicted: np.ndarray) -> ErrorSums:
        y = np.asarray(y_true, dtype=np.float64)
        r = y - np.asarray(predicted, dtype=np.float64)
        if y.size == 0:
            return cls()
        mean = float(y.mean())
        return cls(
            n=int(y.size),
            residual_sum=float(r.sum()),
            squared_sum=float(np.dot(r, r)),
            absolute_sum=float(np.abs(r).sum()),
            target_mean=mean,
            target_m2=float(np.sum((y - mean) ** 2)),
        )

    def merge(self, other: ErrorSums) -> ErrorSums:
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.target_mean - self.target_mean
        return ErrorSums(
            n=n,
            residual_sum=self.residual_sum + other.residual_sum,
            squared_sum=self.squared_sum + other.squared_sum,
            absolute_sum=self.absolute_sum + other.absolute_sum,
            target_mean=self.target_mean + delta * other.n / n,
            target_m2=self.target_m2 + other.target_m2 + delta * delta * self.n * other.n / n,
        )

    def metrics(self) -> dict[str, float | None]:
        """rmse, mae, mean_error and r2 (None when empty, r2 None when the target does not vary)."""
        if self.n == 0:
            return {"rmse": None, "mae": None, "mean_error": None, "r2": None}
        return {
            "rmse": float(np.sqrt(self.squared_sum / self.n)),
            "mae": self.absolute_sum / self.n,
            "mean_error": self.residual_sum / self.n,
            "r2": 1.0 - self.squared_sum / self.target_m2 if self.target_m2 > 0 else None,
        }


def group_sums(
    groups: Mapping[str, Sequence[Any]], y_true: np.ndarray, predicted: np.ndarray
) -> dict[str, dict[str, ErrorSums]]:
    """Error sums per sensitive attribute and group (missing values in the group "(missing)")."""
    out: dict[str, dict[str, ErrorSums]] = {}
    for attribute, values in groups.items():
        names = _group_text(values)
        out[attribute] = {
            g: ErrorSums.of(y_true[names == g], predicted[names == g]) for g in sorted(set(names.tolist()))
        }
    return out


def merge_group_sums(
    into: dict[str, dict[str, ErrorSums]], other: Mapping[str, Mapping[str, ErrorSums]]
) -> None:
    for attribute, table in other.items():
        held = into.setdefault(attribute, {})
        for group, sums in table.items():
            held[group] = held.get(group, ErrorSums()).merge(sums)


@dataclass
class HourErrors:
    """The labelled predictions of one hour partition, as error sums."""

    hour: str
    rows: int
    errors: ErrorSums


@dataclass
class RegressionWindow:
    """One version's window as a regression monitor run reads it: merged counts and labelled rows."""

    rows: int = 0
    features: DatasetProfile | None = None
    predictions: NumericHistogram | None = None
    expected_losses: LossSums = field(default_factory=LossSums)
    # Labelled predictions, in the order the hours hold them: true and predicted values, the loss
    # model's expected |error| and error² of each, and sensitive values.
    label_true: list[float] = field(default_factory=list)
    label_predicted: list[float] = field(default_factory=list)
    label_expected_absolute: list[float] = field(default_factory=list)
    label_expected_squared: list[float] = field(default_factory=list)
    label_groups: dict[str, list[Any]] = field(default_factory=dict)
    errors: ErrorSums = field(default_factory=ErrorSums)
    group_errors: dict[str, dict[str, ErrorSums]] = field(default_factory=dict)
    hours: list[HourErrors] = field(default_factory=list)
    matched_ids: set[str] = field(default_factory=set)

    def labelled(self) -> tuple[np.ndarray, np.ndarray, dict[str, list[Any]]]:
        return (
            np.asarray(self.label_true, dtype=np.float64),
            np.asarray(self.label_predicted, dtype=np.float64),
            self.label_groups,
        )

    def add_profile(
        self,
        rows: int,
        features: DatasetProfile,
        predictions: NumericHistogram,
        expected_losses: LossSums,
    ) -> None:
        if rows == 0:
            return
        self.rows += rows
        self.features = features if self.features is None else self.features.merge(features)
        self.predictions = predictions if self.predictions is None else self.predictions.merge(predictions)
        self.expected_losses = self.expected_losses + expected_losses

    def join_labels(self, hour: str, rows: ValueRows, truths: Mapping[str, float]) -> None:
        """Add the hour's labelled predictions: rows, error sums of the hour and of each group."""
        hits = [i for i, pid in enumerate(rows.prediction_ids) if pid in truths]
        y = np.fromiter((truths[rows.prediction_ids[i]] for i in hits), dtype=np.float64, count=len(hits))
        p = np.fromiter((rows.values[i] for i in hits), dtype=np.float64, count=len(hits))
        sums = ErrorSums.of(y, p)
        if rows.prediction_ids:
            self.hours.append(HourErrors(hour=hour, rows=len(rows.prediction_ids), errors=sums))
        if not hits:
            return
        self.label_true.extend(y.tolist())
        self.label_predicted.extend(p.tolist())
        self.label_expected_absolute.extend(rows.expected_absolute[i] for i in hits)
        self.label_expected_squared.extend(rows.expected_squared[i] for i in hits)
        groups = {}
        for attribute, column in rows.groups.items():
            picked = [column[i] for i in hits]
            self.label_groups.setdefault(attribute, []).extend(picked)
            groups[attribute] = picked
        self.errors = self.errors.merge(sums)
        merge_group_sums(self.group_errors, group_sums(groups, y, p))
        self.matched_ids.update(rows.prediction_ids[i] for i in hits)


REGRESSION_HOUR: PartialKind[RegressionHourPartial, ValueRows] = PartialKind(
    REGRESSION_HOUR_NAME,
    REGRESSION_PARTIAL_FORMAT,
    RegressionHourPartial.model_validate,
    ValueRows.from_json,
)


def regression_window_from_partials(
    store_at: PartialStore,
    spec: ModelSpec,
    profile: RegressionProfile,
    version: int,
    start: datetime,
    end: datetime,
    truths: Mapping[str, float],
    *,
    stats: ReadStats | None = None,
) -> RegressionWindow:
    """One version's window [start, end) as the merge of its hours' partials, labels joined per hour.

    A whole hour whose stored manifest matches its listing is reused; any other whole hour is
    profiled again and stored; hours cut by the window are profiled for their part and not stored.
    """
    stats = stats if stats is not None else ReadStats()

    def compute(
        hour: datetime, covers: Manifest, size: int, lo: str | None, hi: str | None
    ) -> tuple[RegressionHourPartial, ValueRows]:
        return python_hour_profile(
            store_at.s3, store_at.log_bucket, spec, profile, version, hour, covers, lo, hi
        )

    window = RegressionWindow(label_groups={a: [] for a in spec.sensitive_attributes})
    sensitive = spec.sensitive_attributes
    for hour, partial, rows in hour_partials(
        REGRESSION_HOUR, store_at, version, start, end, sensitive, compute, stats
    ):
        window.add_profile(partial.rows, partial.features, partial.predictions, partial.expected_losses)
        window.join_labels(iso(hour), rows, truths)
    return window
