"""Test helper: log simulated production traffic and feedback the way serving stores them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from mlops.cloud.logstore import (
    FeedbackRecord,
    PredictionRecord,
    feedback_key,
    prediction_key,
    write_feedback,
    write_predictions,
)
from mlops.cloud.registry import Registry
from mlops.cloud.storage import iso
from mlops.model import bundle
from mlops.model.inference import load_session, predict_proba_onnx, session_numeric_dtype
from mlops.model.schema import FeatureSchema, encode_rows
from mlops.model.training import frame_rows
from mlops.shared.resources import LOG_BUCKET


def log_traffic(
    stack: Any,
    registry: Registry,
    version: int,
    frame: pd.DataFrame,
    start: datetime,
    spacing: timedelta = timedelta(seconds=30),
    with_feedback: bool = True,
    id_prefix: str = "p",
) -> list[PredictionRecord]:
    """Score `frame` with the version's ONNX model, log it hour by hour, and log its labels."""
    record = registry.get_version(version)
    s3, bucket = stack.s3, stack.env[LOG_BUCKET.env_var]
    art = record.artifacts
    onnx_bytes = bundle.read_artifact(s3, stack.artifact_bucket, art[bundle.MODEL_ONNX])
    schema = FeatureSchema.model_validate_json(
        bundle.read_artifact(s3, stack.artifact_bucket, art[bundle.SCHEMA])
    )
    session = load_session(onnx_bytes)
    spec_features = [f.name for f in schema.features]
    rows = frame_rows(frame[spec_features]) if set(spec_features) <= set(frame.columns) else []
    probs = predict_proba_onnx(session, encode_rows(rows, schema, session_numeric_dtype(session)))
    records = []
    for i, (row, p) in enumerate(zip(rows, probs, strict=True)):
        ts = start + spacing * i
        records.append(
            PredictionRecord(
                prediction_id=f"{id_prefix}-{version}-{i}",
                request_id=f"req-{i}",
                timestamp=iso(ts),
                model_name=record.model_name,
                model_version=version,
                features=row,
                probability=float(p),
                label=int(p >= 0.5),
            )
        )
    by_hour: dict[datetime, list[PredictionRecord]] = {}
    for r in records:
        ts = datetime.fromisoformat(r.timestamp.replace("Z", "+00:00"))
        by_hour.setdefault(ts.replace(minute=0, second=0, microsecond=0), []).append(r)
    for hour, batch in by_hour.items():
        write_predictions(s3, bucket, prediction_key(version, hour, [r.prediction_id for r in batch]), batch)
    if with_feedback:
        target = frame[schema.target].astype(int).to_numpy()
        feedback = [
            FeedbackRecord(
                prediction_id=r.prediction_id,
                label=int(target[i]),
                source="explicit",
                observed_at=r.timestamp,
                received_at=r.timestamp,
            )
            for i, r in enumerate(records)
        ]
        write_feedback(s3, bucket, feedback_key(start, [f.prediction_id for f in feedback]), feedback)
    return records
