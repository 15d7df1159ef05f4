"""Answer a prediction request of a regression champion: the same validation, ids and logging as
`mlops.serving.predict`, with a predicted number per row instead of a class and a probability."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mlops.cloud.storage import iso
from mlops.model.inference import predict_values_onnx
from mlops.model.schema import encode_columns
from mlops.serving.champion import ServingModel
from mlops.serving.log_queue import PredictionBatch
from mlops.serving.predict import PredictionOutcome
from mlops.serving.validation import read_request


def predict_values(
    model: ServingModel,
    payload: Any,
    request_id: str,
    max_rows: int,
    now: Callable[[], datetime],
    new_ids: Callable[[int], list[str]],
) -> PredictionOutcome:
    started = time.perf_counter()
    received = now()
    request = read_request(payload, model.validator, max_rows, received, model.registered_at, model.version)
    rows = request.rows
    model.validator.canonicalize(rows)
    columns = {f.name: [row[f.name] for row in rows] for f in model.schema.features}
    feeds = encode_columns(columns, model.schema, model.numeric_dtype)
    values = predict_values_onnx(model.session, feeds).tolist()
    ids = request.ids if request.ids is not None else new_ids(len(rows))
    unseen = model.unseen_categories_by_row(columns, len(rows))
    batch = PredictionBatch(
        request_id=request_id,
        timestamp=iso(received),
        event_times=request.event_times,
        model_name=model.model_name,
        model_version=model.version,
        prediction_ids=ids,
        probabilities=[],
        labels=[],
        unseen_categories=unseen,
        features=rows,
        values=values,
        feature_columns=columns,
    )
    predictions = [{"prediction_id": pid, "value": v} for pid, v in zip(ids, values, strict=True)]
    return PredictionOutcome(
        body={"model_version": model.version, "predictions": predictions},
        batch=batch,
        model_version=model.version,
        unseen_count=sum(map(len, unseen)),
        latency_ms=(time.perf_counter() - started) * 1000.0,
    )
