"""Retraining data: the original data set plus labelled production rows, mixed by a written rule.

The mix (documented in the README):

- The original data set is split with the spec's seed exactly as the first training split
  it, so its test part is the same "original test set" every generation is judged on.
- Labelled production rows (prediction logs joined with feedback) from the last
  `retraining.production_window_days` are ordered by time; the most recent
  `HOLDOUT_SHARE` of them are held out (candidate vs champion comparison and the
  candidate's recorded test metrics), the rest join the training rows.
- Production training rows are weighted so that together they carry
  `retraining.max_production_share` of the total weight (recency over volume: a few
  thousand fresh labels can move a model trained on a large, older data set), or
  `retraining.alarm_production_share` when a performance alarm asked for the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mlops.cloud.logstore import iter_feedback, iter_predictions, latest_labels, model_versions_logged
from mlops.model.spec import ModelSpec
from mlops.model.training import binary_target, feature_frame, frame_rows, labels, target_classes
from mlops.retraining.gate import LabelledRows

HOLDOUT_SHARE = 0.3
TIMESTAMP = "_logged_at"


def labelled_production_rows(
    s3: Any, log_bucket: str, spec: ModelSpec, start: datetime, end: datetime
) -> pd.DataFrame:
    """Every logged prediction in [start, end) that has a label, with its features and time."""
    labels_by_id = latest_labels(iter_feedback(s3, log_bucket, start, end + timedelta(days=1)))
    rows: list[dict[str, Any]] = []
    for version in model_versions_logged(s3, log_bucket):
        for batch in iter_predictions(s3, log_bucket, version, start, end):
            for record in batch:
                label = labels_by_id.get(record.prediction_id)
                if label is None:
                    continue
                row = {name: record.features.get(name) for name in spec.feature_names}
                row[spec.target] = label
                if spec.id_column:
                    row[spec.id_column] = record.prediction_id
                row[TIMESTAMP] = record.timestamp
                rows.append(row)
    columns = [*spec.feature_names, spec.target, TIMESTAMP] + ([spec.id_column] if spec.id_column else [])
    frame = pd.DataFrame.from_records(rows, columns=columns)
    return frame.sort_values(TIMESTAMP, kind="stable").reset_index(drop=True)


@dataclass
class TrainingSet:
    data: pd.DataFrame
    weights: np.ndarray
    test_data: pd.DataFrame | None
    original_test: LabelledRows
    production_holdout: LabelledRows
    stats: dict[str, Any]


def _labelled(frame: pd.DataFrame, spec: ModelSpec) -> LabelledRows:
    if frame.empty:
        return LabelledRows(rows=[], labels=np.zeros(0, dtype=int))
    return LabelledRows(rows=frame_rows(feature_frame(frame, spec)), labels=binary_target(frame, spec))


def _in_target_values(production: pd.DataFrame, original: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Production labels (feedback: 1 = positive) written as the original target's values."""
    negative, positive = target_classes(original, spec)
    if production.empty or negative is None:
        return production
    return production.assign(
        **{spec.target: production[spec.target].map({0: negative, 1: positive}).astype(object)}
    )


def build_training_set(
    original: pd.DataFrame, production: pd.DataFrame, spec: ModelSpec, performance: bool = False
) -> TrainingSet:
    """The mix; under a performance alarm production rows carry `alarm_production_share` of the
    weight, since the old data then describe a world the model no longer serves."""
    y = labels(original, spec)
    production = _in_target_values(production, original, spec)
    return mix_training_set(original, production, spec, performance, stratify=y, labelled=_labelled)


def mix_training_set(
    original: pd.DataFrame,
    production: pd.DataFrame,
    spec: ModelSpec,
    performance: bool,
    *,
    stratify: Any,
    labelled: Callable[[pd.DataFrame, ModelSpec], LabelledRows],
) -> TrainingSet:
    """Original training rows plus the older labelled production rows, weighted to the spec's share;
    the newest production rows held out as the test set when there are enough of them with more
    than one target value. `labelled` reads a frame's rows and targets for the task."""
    orig_train, orig_test = train_test_split(
        original, test_size=spec.split.test_size, random_state=spec.split.seed, stratify=stratify
    )
    n_holdout = round(len(production) * HOLDOUT_SHARE)
    prod_train = production.iloc[: len(production) - n_holdout]
    holdout = production.iloc[len(production) - n_holdout :]

    keep = [c for c in original.columns if c != TIMESTAMP]
    prod_train_rows = prod_train[[c for c in keep if c in prod_train.columns]]
    data = pd.concat([orig_train[keep], prod_train_rows], ignore_index=True)
    share = spec.retraining.alarm_production_share if performance else spec.retraining.max_production_share
    weights = np.ones(len(data))
    prod_weight = 1.0
    if len(prod_train) and share < 1.0:
        prod_weight = share / (1.0 - share) * len(orig_train) / len(prod_train)
        weights[len(orig_train) :] = prod_weight
    holdout_usable = len(holdout) >= spec.monitoring.min_labels and holdout[spec.target].nunique() > 1
    stats = {
        "original_rows": len(original),
        "original_train_rows": len(orig_train),
        "original_test_rows": len(orig_test),
        "production_labelled_rows": len(production),
        "production_train_rows": len(prod_train),
        "production_holdout_rows": len(holdout),
        "production_weight": prod_weight,
        "production_weight_share": share if len(prod_train) else 0.0,
        "test_set": "production_holdout" if holdout_usable else "original_test",
    }
    return TrainingSet(
        data=data,
        weights=weights,
        test_data=holdout.drop(columns=[TIMESTAMP]) if holdout_usable else orig_test,
        original_test=labelled(orig_test, spec),
        production_holdout=labelled(holdout, spec),
        stats=stats,
    )
