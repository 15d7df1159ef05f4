"""Feedback Lambda: ``POST /feedback`` (one item or ``{"items": [...]}``) behind the HTTP API."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from mlops.cloud import aws
from mlops.handlers.http import HttpApi, json_body
from mlops.regression.feedback import NumericLabel
from mlops.serving.contract import (
    FeedbackBatch,
    FeedbackItem,
    FeedbackResponse,
    error_responses,
    request_body,
)
from mlops.serving.feedback import LabelCheck, binary_label, submit_feedback
from mlops.serving.log_queue import SEND_CLIENT_CONFIG
from mlops.shared.observability import logger
from mlops.shared.settings import FeedbackSettings

app = HttpApi("feedback")


@cache
def settings() -> FeedbackSettings:
    return FeedbackSettings()  # type: ignore[call-arg]  # read from the environment


@app.post(
    "/feedback",
    summary="Record the true label of earlier predictions; the same feedback twice is stored once",
    responses={
        200: {
            "description": "Each item's status: stored, duplicate, or conflict (another label was stored)",
            "content": {"application/json": {"model": FeedbackResponse}},
        },
        **error_responses(
            400,
            409,
            413,
            415,
            422,
            503,
            described={
                409: "A single item conflicts with the label already stored for it",
                503: "Feedback could not be stored; what was not kept is named, retry",
            },
        ),
    },
    openapi_extensions=request_body(FeedbackItem, FeedbackBatch, description="One item or a batch"),
)
def post_feedback() -> dict[str, Any]:
    config = settings()
    payload = json_body(app.current_event)
    return submit_feedback(
        aws.client("dynamodb"),
        config.feedback_table,
        aws.client("sqs", config=SEND_CLIENT_CONFIG),
        config.prediction_queue_url,
        payload,
        config.max_batch_items,
        check_label=label_check(config),
    )


def label_check(config: FeedbackSettings) -> LabelCheck:
    if config.feedback_label == "number":
        return NumericLabel(config.target_min, config.target_max)
    return binary_label


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
