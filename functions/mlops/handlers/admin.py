"""Admin API Lambda: the registry's audit trail and its changes, behind a separate IAM policy.

GET /models, GET /models/{version}, GET /models/history[?at=TIME], POST /models/{version}/promote,
POST /models/rollback, and POST /retrain (started asynchronously: the API never waits for a
training run).
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.cloud import aws
from mlops.cloud.registry import Registry
from mlops.cloud.storage import utcnow
from mlops.handlers.http import Answer, HttpApi, json_body, parse_body
from mlops.model.admin import (
    VERSION_PATTERN,
    RetrainDispatch,
    lambda_dispatch,
    model_detail,
    model_list,
    parse_version,
    promote_version,
    retrain_request_event,
    rollback_champion,
    served_at_answer,
)
from mlops.serving.contract import (
    ChangeRequest,
    History,
    HistoryRow,
    ModelDetail,
    ModelList,
    RetrainAccepted,
    RetrainRequest,
    ServedAt,
    error_responses,
    request_body,
)
from mlops.shared.errors import UnavailableError
from mlops.shared.observability import logger
from mlops.shared.settings import AdminSettings

app = HttpApi("admin")


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
    return parse_body(ChangeRequest, json_body(app.current_event)).reason.strip()


VersionText = Annotated[
    str, Path(pattern=VERSION_PATTERN, description="A version number, as `GET /models` lists them")
]


def _json(status: int, body: Any) -> Answer:
    return Answer(status, json.dumps(body, default=str))


def _ok(model: type[Any], text: str) -> dict[int, Any]:
    return {200: {"description": text, "content": {"application/json": {"model": model}}}}


_AT = {
    "name": "at",
    "in": "query",
    "required": False,
    "description": "An ISO 8601 time within the years 1 to 9999 in UTC: answer which version served then",
    "schema": {"type": "string"},
}


@app.get(
    "/models",
    summary="Every version: status, champion, test metrics, gate outcome",
    responses={**_ok(ModelList, "The versions, oldest first"), **error_responses(503)},
)
def list_models() -> Answer:
    return _json(200, model_list(_registry()))


@app.get(
    "/models/history",
    summary="Every promotion and rollback, or (with `at`) which version served at a time",
    responses={
        200: {
            "description": "The history, or the version serving at `at`",
            "content": {"application/json": {"model": History | ServedAt}},
        },
        **error_responses(422, 503),
    },
    openapi_extensions={"parameters": [_AT]},
)
def history() -> Answer:
    registry = _registry()
    at = app.current_event.query("at")
    if at is None:
        return _json(200, {"history": [h.model_dump(mode="json") for h in registry.history()]})
    return _json(200, served_at_answer(registry, at))


@app.get(
    "/models/{version}",
    summary="One version: metrics, lineage, gate report, when it served, its monitoring runs",
    responses={**_ok(ModelDetail, "The version"), **error_responses(404, 422, 503)},
)
def show(version: VersionText) -> Answer:
    return _json(
        200,
        model_detail(
            _registry(),
            aws.client("s3"),
            settings().artifact_bucket,
            settings().report_bucket,
            parse_version(version),
        ),
    )


@app.post(
    "/models/{version}/promote",
    summary="Make a version the champion (recorded in the history with the caller and reason)",
    responses={
        **_ok(HistoryRow, "The history row of the change"),
        **error_responses(400, 404, 409, 415, 422, 503),
    },
    openapi_extensions=request_body(ChangeRequest, description="Why"),
)
def promote(version: VersionText) -> Answer:
    entry = promote_version(
        _registry(), aws.client("s3"), settings().artifact_bucket, parse_version(version), _actor(), _reason()
    )
    logger.info("promoted", extra=entry.model_dump(mode="json"))
    return _json(200, entry.model_dump(mode="json"))


@app.post(
    "/models/rollback",
    summary="Return to the version that served before the current champion",
    responses={
        **_ok(HistoryRow, "The history row of the change"),
        **error_responses(400, 404, 409, 415, 422, 503),
    },
    openapi_extensions=request_body(ChangeRequest, description="Why"),
)
def rollback() -> Answer:
    entry = rollback_champion(_registry(), aws.client("s3"), settings().artifact_bucket, _actor(), _reason())
    logger.info("rolled back", extra=entry.model_dump(mode="json"))
    return _json(200, entry.model_dump(mode="json"))


@app.post(
    "/retrain",
    summary="Start a gated retraining run; answers at once, the run reports through the registry and SNS",
    responses={
        202: {
            "description": "The run was started",
            "content": {"application/json": {"model": RetrainAccepted}},
        },
        **error_responses(400, 415, 422, 503),
    },
    openapi_extensions=request_body(RetrainRequest, description="Why, and whether to force a run"),
)
def retrain() -> Answer:
    request = parse_body(RetrainRequest, json_body(app.current_event))
    reason = request.reason.strip() if request.reason else "requested through the admin API"
    event = retrain_request_event(reason, _actor(), request.force, utcnow())
    event_id = _retrain_dispatch()(event)
    return _json(202, {"accepted": True, "event_id": event_id, "reason": reason, "force": request.force})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
