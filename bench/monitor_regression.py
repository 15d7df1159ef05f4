"""The regression rows of bench/monitor.py: a regression champion's monitor run on logged predictions.

Same features and log layout as the classification benchmark; the target is a number, the logs
carry predicted values, 5% of the rows get their true value as feedback. Timed end to end (S3 read
to metrics, reports and history): the first run profiles every hour partition and stores its partial
(see mlops.regression.partials); a second run of the same window reuses them all (``rerun_s``) and
reads no feedback object again (``rerun_feedback_gets``; mlops.regression.truths).
"""

from __future__ import annotations

import math
import resource
import time
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from mlops.cloud.logstore import (
    FeedbackRecord,
    RegressionPredictionRecord,
    feedback_key,
    prediction_key,
    write_feedback,
    write_predictions,
)
from mlops.cloud.storage import iso
from mlops.model.spec import ModelSpec, parse_spec
from mlops.model.training import feature_frame, frame_rows, train_model
from mlops.monitoring.run import run_monitor
from moto import mock_aws

from bench.monitor import CATEGORICAL, NUMERIC, OBJECT_ROWS, WINDOW_START, make_rows, promoted_model


def regression_spec() -> ModelSpec:
    return parse_spec(
        {
            "name": "bench",
            "task": "regression",
            "target": "value",
            "primary_metric": "rmse",
            "sensitive_attributes": ["cat_0"],
            "estimator": {"kind": "ridge"},
            "features": [{"name": n, "kind": "numeric"} for n in NUMERIC]
            + [{"name": c, "kind": "categorical"} for c in CATEGORICAL],
            "split": {"test_size": 0.25, "seed": 1},
        }
    )


def with_value(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    value = np.nan_to_num(frame["num_0"]) * 0.5 + np.log1p(np.nan_to_num(frame["num_1"])) * 4
    value = value + (frame["cat_1"] == "c1_0") * 3 + rng.normal(0, 2, len(frame))
    return frame.drop(columns=["y"]).assign(value=value)


def bench_regression(rows: int, reference_rows: int) -> dict[str, Any]:
    spec = regression_spec()
    training = with_value(make_rows(math.ceil(reference_rows / (1 - spec.split.test_size)), seed=1), 1)
    result = train_model(training, spec)
    current = with_value(make_rows(rows, seed=2, shift=True), 2)
    with mock_aws():
        clients, settings, record = promoted_model(result, len(training))
        s3, bucket = clients["s3"], settings.log_bucket
        step = timedelta(days=1) / rows
        ids = [f"p{i:07d}" for i in range(rows)]
        for start in range(0, rows, OBJECT_ROWS):
            chunk = feature_frame(current.iloc[start : start + OBJECT_ROWS], spec)
            predicted = result.pipeline.predict(chunk)
            features = frame_rows(chunk)
            records = [
                RegressionPredictionRecord(
                    prediction_id=ids[start + j],
                    request_id=f"r{start + j}",
                    timestamp=iso(WINDOW_START + step * (start + j)),
                    model_name=spec.name,
                    model_version=record.version,
                    features=features[j],
                    value=float(predicted[j]),
                )
                for j in range(len(features))
            ]
            write_predictions(
                s3,
                bucket,
                prediction_key(
                    record.version, WINDOW_START + step * start, ids[start : start + len(records)]
                ),
                records,
            )
        chosen = np.flatnonzero(np.random.default_rng(0).random(rows) < 0.05)
        at = WINDOW_START + timedelta(hours=20)
        truth = current["value"].to_numpy()
        for start in range(0, chosen.size, 10_000):
            part = chosen[start : start + 10_000]
            feedback = [
                FeedbackRecord(
                    prediction_id=ids[i],
                    label=float(truth[i]),
                    source="explicit",
                    observed_at=iso(at),
                    received_at=iso(at),
                )
                for i in part
            ]
            write_feedback(s3, bucket, feedback_key(at, [ids[i] for i in part]), feedback)
        began = time.perf_counter()
        monitored = run_monitor(
            s3,
            clients["cloudwatch"],
            clients["dynamodb"],
            settings,
            window_end=WINDOW_START + timedelta(days=1),
            window=timedelta(days=1),
            now=WINDOW_START + timedelta(days=1),
        )
        end_to_end_s = time.perf_counter() - began
        began = time.perf_counter()
        rerun = run_monitor(
            s3,
            clients["cloudwatch"],
            clients["dynamodb"],
            settings,
            window_end=WINDOW_START + timedelta(days=1),
            window=timedelta(days=1),
            now=WINDOW_START + timedelta(days=1),
        )
        rerun_s = time.perf_counter() - began
    assert rerun.summary()["reads"]["log_gets"] == 0, rerun.summary()["reads"]
    # The re-run reads the stored truths, not the window's feedback objects again.
    assert rerun.summary()["reads"]["feedback_gets"] == 0, rerun.summary()["reads"]
    (version,) = monitored.summary()["versions"]
    assert version["prediction_count"] == rows, version
    return {
        "task": "regression",
        "rows": rows,
        "features": len(NUMERIC) + len(CATEGORICAL),
        "reference_rows": result.train_rows,
        "log_objects": -(-rows // OBJECT_ROWS),
        "labels": int(chosen.size),
        "drift_share": version["drift_share"],
        "metric_gap": None if version["metric_gap"] is None else round(version["metric_gap"], 4),
        # The label-free estimate on every row against the realized error on the labelled ones, and
        # whether the labelled rows contradict the estimate (the bench's target follows one rule).
        "production_rmse": _rounded(version["production_metric"]),
        "estimated_rmse": _rounded(version["estimated_metric"]),
        "concept_shift_suspected": version["concept_shift_suspected"],
        "end_to_end_s": round(end_to_end_s, 3),
        "rerun_s": round(rerun_s, 3),
        "feedback_gets": monitored.summary()["reads"]["feedback_gets"],
        "rerun_feedback_gets": rerun.summary()["reads"]["feedback_gets"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
