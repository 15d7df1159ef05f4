"""Predict Lambda: ``POST /predict``, ``GET /model``, ``GET /model/schema`` and ``GET /openapi.json``
behind an API Gateway HTTP API (payload 2.0).

No request model validates the body: the per-schema `RowValidator` checks rows against the
*champion's* schema (which a static model cannot) in a fraction of the time; the OpenAPI
document is still generated from the models in `mlops.serving.contract`.
"""

from __future__ import annotations

# First: the collector waits while the container starts (see the module).
from mlops.shared import startup

# isort: split
import functools
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from mlops.cloud import aws
from mlops.cloud.logstore import read_latest_report
from mlops.cloud.registry import Champion, Registry
from mlops.handlers.http import Answer, HttpApi, json_answer, json_body
from mlops.handlers.openapi import DOCUMENT
from mlops.model.kinds import Task
from mlops.serving.champion import ChampionCache, ServingModel, load_serving_model
from mlops.serving.log_queue import (
    FALLBACK_FIELD,
    SEND_CLIENT_CONFIG,
    PredictionBatch,
    fallback_pieces,
    send_predictions,
)
from mlops.serving.predict import describe_model, predict
from mlops.shared.alarm_specs import DIM_MODEL, DIM_VERSION, Metric
from mlops.shared.errors import MlopsError
from mlops.shared.observability import count_failure, logger, metrics
from mlops.shared.settings import ServingSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver


class PredictRuntime:
    """What a container keeps between requests: settings, clients and the champion cache."""

    def __init__(
        self,
        settings: ServingSettings,
        s3: Any,
        dynamodb: Any,
        sqs: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.s3 = s3
        self.dynamodb = dynamodb
        self.sqs = sqs
        registry = Registry(dynamodb, settings.registry_table, settings.model_name)
        self.cache = ChampionCache(
            registry,
            loader=self._load,
            refresh_seconds=settings.champion_refresh_seconds,
            clock=clock,
            on_load_failure=lambda version, err: _champion_refused(settings.model_name, version, err),
        )

    @classmethod
    def from_environment(cls) -> PredictRuntime:
        # Settings are validated here, at cold start: a misconfigured function fails loudly once.
        settings = ServingSettings()  # type: ignore[call-arg]  # read from the environment
        sqs = aws.client("sqs", config=SEND_CLIENT_CONFIG)
        return cls(settings, aws.client("s3"), aws.client("dynamodb"), sqs)

    def _load(self, champion: Champion) -> ServingModel:
        return load_serving_model(self.cache.registry, self.s3, self.settings.artifact_bucket, champion)

    def log_predictions(self, batch: PredictionBatch) -> None:
        """Queue the predictions for the log writer within the time budget; keep what was not sent.

        The client already has its answer. Records the queue did not take are logged as pieces
        under CloudWatch Logs' event limit: writing them costs no time and needs no service that
        may be down as well; `mlops logs replay` puts them into the prediction log.
        """
        deadline = time.monotonic() + self.settings.log_send_budget_seconds
        try:
            unsent = send_predictions(self.sqs, self.settings.prediction_queue_url, batch, deadline=deadline)
        except ValueError as err:
            # One row too big for any message or log event: nothing can carry it, say which.
            logger.error(
                "prediction log record too large to keep",
                extra={"error": str(err), "prediction_ids": list(batch.prediction_ids)},
            )
            count_failure(Metric.PREDICTION_LOG_FAILURES, len(batch), self.settings.model_name)
            return
        if not unsent:
            return
        pieces = fallback_pieces(unsent)
        for number, piece in enumerate(pieces, start=1):
            logger.error(
                "prediction log queue unavailable; records kept here for replay",
                extra={FALLBACK_FIELD: piece, "piece": number, "pieces": len(pieces)},
            )
        rows = sum(len(piece["prediction_id"]) for piece in pieces)
        count_failure(Metric.PREDICTION_LOG_FAILURES, rows, self.settings.model_name)


def _champion_refused(model_name: str, version: int, err: Exception) -> None:
    logger.error(
        "champion refused; the previous model keeps serving", extra={"version": version, "error": str(err)}
    )
    count_failure(Metric.CHAMPION_LOAD_FAILURES, 1, model_name)


_runtime: PredictRuntime | None = None


def runtime() -> PredictRuntime:
    global _runtime
    if _runtime is None:
        _runtime = PredictRuntime.from_environment()
    return _runtime


def use_runtime(value: PredictRuntime | None) -> None:
    """Install a runtime (tests, benchmarks, the local gateway); None means a fresh container."""
    global _runtime
    _runtime = value


app = HttpApi("predict")


@app.post("/predict", summary="Predict one row or a batch with the champion model")
def post_predict() -> Answer:
    rt = runtime()
    event = app.current_event
    payload = json_body(event)
    model = rt.cache.current()
    outcome = predict(model, payload, event.request_id, rt.settings.max_batch_rows)
    rt.log_predictions(outcome.batch)
    metrics.add_dimension(name=DIM_MODEL, value=model.model_name)
    metrics.add_dimension(name=DIM_VERSION, value=str(outcome.model_version))
    metrics.add_metric(name=Metric.PREDICTIONS, unit=MetricUnit.Count, value=len(outcome.batch))
    metrics.add_metric(name=Metric.PREDICTION_LATENCY, unit=MetricUnit.Milliseconds, value=outcome.latency_ms)
    metrics.add_metric(name=Metric.UNSEEN_CATEGORIES, unit=MetricUnit.Count, value=outcome.unseen_count)
    batch = outcome.batch
    return json_answer(outcome.body, batch.values if batch.values is not None else batch.probabilities)


@app.get(
    "/model",
    summary="The champion: version, since when, test-set and latest production figures, feature schema",
)
def get_model() -> dict[str, Any]:
    rt = runtime()
    model = rt.cache.current()
    production = None
    if rt.settings.report_bucket:
        try:
            production = read_latest_report(rt.s3, rt.settings.report_bucket, model.version)
        except MlopsError as err:
            # Production figures are extra information: their absence must not hide the model.
            logger.warning("latest monitoring summary unreadable", extra={"error": str(err)})
    return describe_model(model, production)


@app.get(
    "/model/schema",
    summary="The champion's features (names, kinds, ranges, categories) and the JSON Schema of a row",
)
def get_model_schema() -> dict[str, Any]:
    rt = runtime()
    model = rt.cache.current()
    return {
        "model_name": model.model_name,
        "model_version": model.version,
        "max_batch_rows": rt.settings.max_batch_rows,
        "features": [f.model_dump(mode="json") for f in model.schema.features],
        "row": model.validator.json_schema(),
    }


@functools.cache
def _committed_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return document


@app.get("/openapi.json", summary="This document, with the champion's features in the /predict request body")
def get_openapi() -> dict[str, Any]:
    from mlops.serving.contract import served_openapi

    rt = runtime()
    model = rt.cache.current()
    document = served_openapi(
        _committed_document(), model.validator.json_schema(), rt.settings.max_batch_rows
    )
    if model.schema.task is Task.REGRESSION:
        from mlops.regression.contract import regression_document

        document = regression_document(document, model.schema)
    return document


_NO_CHAMPION = {503: "No champion can be served right now"}


def _route_details() -> dict[str, dict[str, Any]]:
    """Each route's OpenAPI answers and request body, from the contract models of `mlops.serving.contract`.

    Only the API document needs them; the function serves the committed document, so its cold
    start neither imports the contract models nor builds their JSON Schemas.
    """
    from mlops.serving.contract import (
        ModelInfo,
        ModelSchema,
        PredictBatch,
        PredictOne,
        PredictResponse,
        error_responses,
        request_body,
    )

    return {
        "/predict": {
            "responses": {
                200: {
                    "description": "One prediction per row, in input order",
                    "content": {"application/json": {"model": PredictResponse}},
                },
                **error_responses(400, 413, 415, 422, 503, described=_NO_CHAMPION),
            },
            "openapi_extensions": request_body(
                PredictOne, PredictBatch, description="One row or a batch of rows"
            ),
        },
        "/model": {
            "responses": {
                200: {
                    "description": "The serving model",
                    "content": {"application/json": {"model": ModelInfo}},
                },
                **error_responses(503, described=_NO_CHAMPION),
            },
        },
        "/model/schema": {
            "responses": {
                200: {
                    "description": "How to build a valid row",
                    "content": {"application/json": {"model": ModelSchema}},
                },
                **error_responses(503, described=_NO_CHAMPION),
            },
        },
        "/openapi.json": {
            "responses": {
                200: {
                    "description": "OpenAPI 3 document of the API",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **error_responses(503, described=_NO_CHAMPION),
            },
        },
    }


def documented_app() -> APIGatewayHttpResolver:
    """The function's routes with their answers and request body described, for the API document."""
    return app.documented(_route_details())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return app.resolve(event, context)
    finally:
        startup.resume()
