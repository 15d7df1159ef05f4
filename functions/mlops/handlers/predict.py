"""Predict Lambda: ``POST /predict`` and ``GET /model`` behind an API Gateway HTTP API (payload 2.0).

Powertools request validation is off on purpose: the per-schema `RowValidator` checks
rows against the *champion's* schema (which a static model cannot) in a fraction of the
time; the OpenAPI document is still generated from the models in `mlops.serving.api`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from mlops import aws
from mlops.alarms import DIM_MODEL, DIM_VERSION, Metric
from mlops.config import ServingSettings
from mlops.errors import MlopsError
from mlops.handlers.http import install_error_handlers, json_body
from mlops.logstore import read_latest_report
from mlops.observability import count_failure, logger, metrics
from mlops.registry import Champion, Registry
from mlops.serving.api import ErrorBody, ModelInfo, PredictRequest, PredictResponse, request_body
from mlops.serving.champion import ChampionCache, ServingModel, load_serving_model
from mlops.serving.log_queue import PredictionBatch, send_predictions
from mlops.serving.predict import describe_model, predict

app = APIGatewayHttpResolver()
install_error_handlers(app)


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
        return cls(settings, aws.client("s3"), aws.client("dynamodb"), aws.client("sqs"))

    def _load(self, champion: Champion) -> ServingModel:
        return load_serving_model(self.cache.registry, self.s3, self.settings.artifact_bucket, champion)

    def log_predictions(self, batch: PredictionBatch) -> None:
        """Queue the predictions for the log writer; if the queue stays down, keep them in the log."""
        try:
            send_predictions(self.sqs, self.settings.prediction_queue_url, batch)
        except (MlopsError, ValueError) as err:
            # The client already has its answer; the records survive in CloudWatch Logs for replay.
            logger.error(
                "prediction log queue unavailable", extra={"error": str(err), "records": batch.records()}
            )
            count_failure(Metric.PREDICTION_LOG_FAILURES, len(batch), self.settings.model_name)


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


_ERRORS: dict[int, Any] = {
    code: {"description": text, "content": {"application/json": {"model": ErrorBody}}}
    for code, text in (
        (400, "The body is not valid JSON"),
        (413, "Too many rows"),
        (415, "The body is not declared as application/json"),
        (422, "Rows that do not match the feature schema; every problem is listed"),
        (503, "No champion can be served right now"),
    )
}


@app.post(
    "/predict",
    summary="Predict one row or a batch with the champion model",
    responses={
        200: {
            "description": "One prediction per row, in input order",
            "content": {"application/json": {"model": PredictResponse}},
        },
        **_ERRORS,
    },
    openapi_extensions=request_body(PredictRequest, description="One row or a batch of rows"),
)
def post_predict() -> dict[str, Any]:
    rt = runtime()
    event = app.current_event
    payload = json_body(event)
    model = rt.cache.current()
    outcome = predict(model, payload, event.request_context.request_id, rt.settings.max_batch_rows)
    rt.log_predictions(outcome.batch)
    metrics.add_dimension(name=DIM_MODEL, value=model.model_name)
    metrics.add_dimension(name=DIM_VERSION, value=str(outcome.model_version))
    metrics.add_metric(name=Metric.PREDICTIONS, unit=MetricUnit.Count, value=len(outcome.batch))
    metrics.add_metric(name=Metric.PREDICTION_LATENCY, unit=MetricUnit.Milliseconds, value=outcome.latency_ms)
    metrics.add_metric(name=Metric.UNSEEN_CATEGORIES, unit=MetricUnit.Count, value=outcome.unseen_count)
    return outcome.body


@app.get(
    "/model",
    summary="The champion: version, since when, test-set and latest production figures, feature schema",
    responses={
        200: {"description": "The serving model", "content": {"application/json": {"model": ModelInfo}}},
        503: _ERRORS[503],
    },
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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
