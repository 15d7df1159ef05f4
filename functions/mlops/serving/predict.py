"""Answer a prediction request: validate, encode, run the champion, build the log records.

`predict` is the whole hot path. It keeps the predictions as columns (`PredictionBatch`)
because constructing a record, let alone a pydantic model, per row would cost more
than the inference itself; the log writer expands them into `PredictionRecord`s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops.cloud.storage import iso, parse_time, utcnow
from mlops.model.inference import predict_proba_onnx, predict_values_onnx
from mlops.model.kinds import Task
from mlops.model.schema import encode_columns
from mlops.serving.champion import ServingModel
from mlops.serving.log_queue import PredictionBatch
from mlops.serving.validation import read_request
from mlops.shared.prediction_ids import new_prediction_ids, prediction_ids_at

DECISION_THRESHOLD = 0.5


@dataclass(frozen=True)
class PredictionOutcome:
    """What one request produced: the API answer and the records to log."""

    body: dict[str, Any]
    batch: PredictionBatch
    model_version: int
    unseen_count: int
    latency_ms: float


def predict(
    model: ServingModel,
    payload: Any,
    request_id: str,
    max_rows: int,
    now: Callable[[], datetime] = utcnow,
    new_ids: Callable[[int, datetime], list[str]] = new_prediction_ids,
) -> PredictionOutcome:
    """Validate `payload` against the model's schema and predict every row, in input order.

    Rows are logged in their canonical form (what the model saw); the client's ids and
    event times, when sent, replace the generated ids and the time of serving.
    """
    started = time.perf_counter()
    received = now()
    request = read_request(payload, model.validator, max_rows, received, model.registered_at, model.version)
    rows = request.rows
    # One canonical list per feature: the encoder and the unseen-category flags both use them.
    columns = request.columns
    feeds = encode_columns(columns, model.schema, model.numeric_dtype, request.numbers)
    if request.ids is not None:
        ids = request.ids
    elif request.event_times is not None:
        # A row is logged under its event time: its id names that hour, not the serving one.
        ids = prediction_ids_at([parse_time(t) for t in request.event_times])
    else:
        ids = new_ids(len(rows), received)
    unseen = model.unseen_categories_by_row(columns, len(rows))
    values: list[float] | None = None
    predictions: list[dict[str, Any]]
    if model.schema.task is Task.REGRESSION:
        # A predicted number per row instead of a class and its probability.
        values = predict_values_onnx(model.session, feeds).tolist()
        probabilities: list[float] = []
        labels: list[int] = []
        predictions = [{"prediction_id": pid, "value": v} for pid, v in zip(ids, values, strict=True)]
    else:
        probabilities = predict_proba_onnx(model.session, feeds).tolist()
        labels = [1 if p >= DECISION_THRESHOLD else 0 for p in probabilities]
        predictions = [
            {"prediction_id": pid, "label": label, "probability": p}
            for pid, label, p in zip(ids, labels, probabilities, strict=True)
        ]
    batch = PredictionBatch(
        request_id=request_id,
        timestamp=iso(received),
        event_times=request.event_times,
        model_name=model.model_name,
        model_version=model.version,
        prediction_ids=ids,
        probabilities=probabilities,
        labels=labels,
        unseen_categories=unseen,
        features=rows,
        values=values,
        feature_columns=columns,
    )
    return PredictionOutcome(
        body={"model_version": model.version, "predictions": predictions},
        batch=batch,
        model_version=model.version,
        unseen_count=sum(map(len, unseen)),
        latency_ms=(time.perf_counter() - started) * 1000.0,
    )


def describe_model(model: ServingModel, production: dict[str, Any] | None) -> dict[str, Any]:
    """The answer of GET /model: which version serves, since when, how good it was and is."""
    return {
        "model_name": model.model_name,
        "model_version": model.version,
        "champion_since": model.since,
        "primary_metric": model.primary_metric,
        "test_metrics": model.test_metrics,
        "feature_schema": model.schema.model_dump(mode="json"),
        "production": production,
    }
