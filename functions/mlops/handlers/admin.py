"""Admin API Lambda: the registry's audit trail and its changes, behind a separate IAM policy.

GET /models, GET /models/{version}, GET /models/history[?at=TIME], POST /models/{version}/promote,
POST /models/rollback, and POST /retrain (started asynchronously: the API never waits for a
training run).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops import aws
from mlops.admin import (
    RetrainDispatch,
    lambda_dispatch,
    model_detail,
    model_list,
    promote_version,
    retrain_request_event,
    rollback_champion,
    served_at_answer,
)
from mlops.config import AdminSettings
from mlops.errors import UnavailableError, ValidationFailed
from mlops.handlers.http import install_error_handlers, json_body
from mlops.observability import logger
from mlops.registry import Registry
from mlops.storage import utcnow

app = APIGatewayHttpResolver()
install_error_handlers(app)


@functools.cache
def settings() -> AdminSettings:
    """Read from the environment once per container (at the first request), validated."""
    return AdminSettings()  # type: ignore[call-arg]


# How POST /retrain starts a run: on AWS an asynchronous invoke of the retrain function; the
# local stack installs its own dispatcher (it runs the retrain handler in-process).
_dispatch: RetrainDispatch | None = None


def use_retrain_dispatch(dispatch: RetrainDispatch | None) -> None:
    global _dispatch
    _dispatch = dispatch


def _retrain_dispatch() -> RetrainDispatch:
    if _dispatch is not None:
        return _dispatch
    function_name = settings().retrain_function_name
    if not function_name:
        raise UnavailableError("retraining on request is not configured (no retrain function)")
    return lambda_dispatch(aws.client("lambda"), function_name)


def _registry() -> Registry:
    return Registry(aws.client("dynamodb"), settings().registry_table, settings().model_name)


def _actor() -> str:
    """Who is calling: the IAM principal API Gateway authenticated."""
    ctx = app.current_event.raw_event.get("requestContext", {})
    iam = (ctx.get("authorizer") or {}).get("iam") or {}
    return str(iam.get("userArn") or iam.get("callerId") or "unknown")


def _reason() -> str:
    body = json_body(app.current_event)
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed(
            "a reason is required", [{"row": None, "field": "reason", "problem": "send a non-empty string"}]
        )
    return reason.strip()


def _version(text: str) -> int:
    if not text.isdigit():
        raise ValidationFailed(
            "not a version number",
            [{"row": None, "field": "version", "problem": f"{text!r} is not a number"}],
        )
    return int(text)


def _json(status: int, body: Any) -> Response:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body, default=str)
    )


@app.get("/models")
def list_models() -> Response:
    return _json(200, model_list(_registry()))


@app.get("/models/history")
def history() -> Response:
    registry = _registry()
    at = app.current_event.get_query_string_value("at")
    if at is None:
        return _json(200, {"history": [h.model_dump(mode="json") for h in registry.history()]})
    return _json(200, served_at_answer(registry, at))


@app.get("/models/<version>")
def show(version: str) -> Response:
    return _json(
        200,
        model_detail(
            _registry(),
            aws.client("s3"),
            settings().artifact_bucket,
            settings().report_bucket,
            _version(version),
        ),
    )


@app.post("/models/<version>/promote")
def promote(version: str) -> Response:
    entry = promote_version(
        _registry(), aws.client("s3"), settings().artifact_bucket, _version(version), _actor(), _reason()
    )
    logger.info("promoted", extra=entry.model_dump(mode="json"))
    return _json(200, entry.model_dump(mode="json"))


@app.post("/models/rollback")
def rollback() -> Response:
    entry = rollback_champion(_registry(), aws.client("s3"), settings().artifact_bucket, _actor(), _reason())
    logger.info("rolled back", extra=entry.model_dump(mode="json"))
    return _json(200, entry.model_dump(mode="json"))


@app.post("/retrain")
def retrain() -> Response:
    body = json_body(app.current_event)
    if not isinstance(body, dict):
        raise ValidationFailed(
            "the body must be a JSON object", [{"row": None, "field": None, "problem": "not an object"}]
        )
    reason = body.get("reason") or "requested through the admin API"
    force = body.get("force", False)
    if not isinstance(reason, str) or not isinstance(force, bool):
        raise ValidationFailed(
            "invalid retrain request",
            [{"row": None, "field": "reason/force", "problem": "reason must be a string, force a boolean"}],
        )
    event = retrain_request_event(reason, _actor(), force, utcnow())
    event_id = _retrain_dispatch()(event)
    return _json(202, {"accepted": True, "event_id": event_id, "reason": reason, "force": force})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
