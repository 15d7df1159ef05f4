"""The one place that turns domain errors into HTTP answers, and HTTP bodies into JSON values.

Every error answer has the body ``{"error": message, "problems": [{"row", "field", "problem"}]}``.
Bad input is always a 4xx: 400 malformed JSON (also duplicate keys, nesting too deep, lone
surrogates), 413 too many rows, 415 not JSON, 422 invalid values, 404 unknown route or record,
409 conflict (also: a version whose artifacts fail verification). 503 means a dependency is
down; retry.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.shared.json_encoder import Encoder
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from pydantic import BaseModel
from pydantic import ValidationError as ModelValidationError

from mlops.shared import strict_json
from mlops.shared.errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    StorageError,
    UnavailableError,
    ValidationFailed,
)
from mlops.shared.observability import logger

Body = TypeVar("Body", bound=BaseModel)


class _StagedEvent(APIGatewayProxyEventV2):
    @property
    def path(self) -> str:
        # A named stage prefixes the raw path on the API's own endpoint (/prod/predict) but not
        # behind a custom domain (/predict): strip the stage only where it is there.
        raw, stage = self.raw_path, self.request_context.stage
        if stage and stage != "$default" and (raw == f"/{stage}" or raw.startswith(f"/{stage}/")):
            return raw[len(stage) + 1 :] or "/"
        return raw


# Powertools' own serializer, without the cycle check: answers are built from JSON values and
# cannot hold a cycle, and the check is a sixth of the time to encode a 1,000-row answer.
_JSON_ANSWER = functools.partial(json.dumps, separators=(",", ":"), cls=Encoder, check_circular=False)


class HttpApi(APIGatewayHttpResolver):
    """The resolver of every HTTP function: payload 2.0, routed on the path within the stage."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("serializer", _JSON_ANSWER)
        super().__init__(**options)

    def _to_proxy_event(self, event: dict[str, Any]) -> BaseProxyEvent:
        return _StagedEvent(event, self._json_body_deserializer)


JSON_TYPES = ("application/json",)


def json_answer(body: dict[str, Any], outputs: Sequence[float]) -> Response[Any]:
    """A 200 answer of `body`, its text written by orjson (a tenth of the time) when that text is what
    the resolver's serializer would write: the same values (a float may be spelled differently, 1e-05
    as 0.00001), only ASCII, and `outputs` (the model's numbers in it) finite, which orjson would
    write as null. Otherwise the resolver serializes `body` as any other answer."""
    answer: Any = body
    try:
        fast = orjson.dumps(body)
    except orjson.JSONEncodeError:
        fast = None
    if fast is not None and fast.isascii() and math.isfinite(sum(outputs)):
        answer = fast.decode("ascii")
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=answer)


def error_response(status: int, message: str, problems: list[dict[str, Any]] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": message, "problems": problems or []}),
    )


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or media.endswith("+json")


def json_body(event: APIGatewayProxyEventV2) -> Any:
    """The request body as a JSON value; 415 unless declared JSON, 400 unless it parses."""
    headers = event.headers or {}
    # HTTP APIs deliver header names in lower case; other callers may not.
    content_type = headers.get("content-type") or next(
        (v for k, v in headers.items() if k.lower() == "content-type"), None
    )
    if not _is_json(content_type):
        raise ValidationFailed(
            "unsupported content type",
            [
                {
                    "row": None,
                    "field": "content-type",
                    "problem": f"expected application/json, got {content_type!r}",
                }
            ],
            status=415,
        )
    raw = event.body
    if not raw:
        raise ValidationFailed(
            "the body is empty", [{"row": None, "field": None, "problem": "send a JSON body"}], 400
        )
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8") if event.is_base64_encoded else raw
    except (UnicodeDecodeError, binascii.Error, ValueError) as err:
        raise ValidationFailed(
            "the body is not valid JSON", [{"row": None, "field": None, "problem": str(err)}], 400
        ) from None
    try:
        return strict_json.parse(text)
    except strict_json.JsonRefused as err:
        raise ValidationFailed(
            "the body is not valid JSON", [{"row": None, "field": err.where, "problem": str(err)}], 400
        ) from None


def parse_body(model: type[Body], payload: Any) -> Body:
    """`payload` as the contract `model`; 422 naming every offending field otherwise."""
    try:
        return model.model_validate(payload, strict=True)
    except ModelValidationError as err:
        problems = [
            {
                "row": None,
                "field": ".".join(str(part) for part in e["loc"]) or None,
                "problem": e["msg"],
            }
            for e in err.errors(include_url=False, include_input=False)
        ]
        raise ValidationFailed("the body does not match the expected shape", problems) from None


def install_error_handlers(app: APIGatewayHttpResolver) -> None:
    """Map every domain error (and unknown routes) to its status and the common error body."""

    @app.exception_handler(ValidationFailed)
    def _invalid(err: ValidationFailed) -> Response:
        return error_response(err.status, str(err), err.problems)

    @app.exception_handler(NotFoundError)
    def _missing(err: NotFoundError) -> Response:
        return error_response(404, str(err))

    @app.exception_handler([ConflictError, IntegrityError])
    def _conflict(err: Exception) -> Response:
        # IntegrityError: a version whose artifacts are not what was registered; it stays refused.
        return error_response(409, str(err))

    @app.exception_handler([UnavailableError, StorageError])
    def _unavailable(err: Exception) -> Response:
        logger.error("dependency unavailable", extra={"error": str(err)})
        return error_response(503, str(err))

    @app.not_found
    def _no_route(_: RouteNotFound) -> Response:
        event = app.current_event
        return error_response(404, f"no route {event.http_method} {event.path}")
