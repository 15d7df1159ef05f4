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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from aws_lambda_powertools.shared.json_encoder import Encoder
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
from mlops.shared.routes import ROUTES, Route, compile_routes, match

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

Body = TypeVar("Body", bound=BaseModel)
View = Callable[..., Any]
APPLICATION_JSON = "application/json"


class Request:
    """The parts of an API Gateway HTTP API (payload 2.0) event that the route functions read."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.raw_event = event
        context = event.get("requestContext") or {}
        self.method: str = str((context.get("http") or {}).get("method", "")).upper()
        self.request_id: str = str(context.get("requestId", ""))
        self.headers: dict[str, str] = event.get("headers") or {}
        self.body: str | None = event.get("body")
        self.is_base64_encoded = bool(event.get("isBase64Encoded"))
        # A named stage prefixes the raw path on the API's own endpoint (/prod/predict) but not
        # behind a custom domain (/predict): strip the stage only where it is there.
        raw, stage = str(event.get("rawPath") or "/"), context.get("stage")
        if stage and stage != "$default" and (raw == f"/{stage}" or raw.startswith(f"/{stage}/")):
            raw = raw[len(stage) + 1 :] or "/"
        self.path = raw

    def query(self, name: str) -> str | None:
        return (self.raw_event.get("queryStringParameters") or {}).get(name)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer whose body is ready: JSON text, or a JSON value the dispatcher serializes."""

    status_code: int
    body: Any
    content_type: str = APPLICATION_JSON


# Powertools' JSON encoder (decimals, dataclasses, models), without the cycle check: answers are
# built from JSON values and cannot hold a cycle, and the check is a sixth of the time to encode a
# 1,000-row answer.
serialize = functools.partial(json.dumps, separators=(",", ":"), cls=Encoder, check_circular=False)


@dataclass(frozen=True)
class _Registered:
    route: Route
    view: View
    documentation: dict[str, Any]


class HttpApi:
    """One function's HTTP routes: those `mlops.shared.routes.ROUTES` gives the function, each bound
    to a Python function, matched with the same code the local gateway uses.

    Powertools' resolver is not used to serve: importing its package imports every resolver it has
    (AppSync, Bedrock, VPC Lattice, asyncio), about 0.1 s of the predict function's cold start. It still
    writes the API document (`documented`) from the same functions and their descriptions. Errors
    are answered as `answer_error` says; anything else propagates, and the Lambda invocation fails.
    """

    def __init__(self, function: str) -> None:
        self.function = function
        self._routes = compile_routes(tuple(r for r in ROUTES if r.function == function))
        self._views: dict[str, _Registered] = {}
        self._event: Request | None = None

    def route(self, method: str, path: str, **documentation: Any) -> Callable[[View], View]:
        """Bind the route `method path` (API Gateway syntax) to the decorated function."""
        key = f"{method} {path}"
        route = next((c.route for c in self._routes if c.route.route_key == key), None)
        if route is None:
            raise ValueError(f"{key} is not a route of the {self.function} function in ROUTES")

        def bind(view: View) -> View:
            self._views[key] = _Registered(route, view, documentation)
            return view

        return bind

    def get(self, path: str, **documentation: Any) -> Callable[[View], View]:
        return self.route("GET", path, **documentation)

    def post(self, path: str, **documentation: Any) -> Callable[[View], View]:
        return self.route("POST", path, **documentation)

    def unbound(self) -> list[str]:
        """The function's routes that no Python function serves (a test keeps this empty)."""
        return [c.route.route_key for c in self._routes if c.route.route_key not in self._views]

    @property
    def current_event(self) -> Request:
        if self._event is None:
            raise RuntimeError("no request is being handled")
        return self._event

    def resolve(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        request = Request(event)
        self._event = request
        try:
            found = match(self._routes, request.method, request.path)
            if found is None:
                answer = error_answer(404, f"no route {request.method} {request.path}")
            else:
                route, parameters = found
                try:
                    answer = _as_answer(self._views[route.route_key].view(**parameters))
                except Exception as err:
                    handled = answer_error(err)
                    if handled is None:
                        raise
                    answer = handled
        finally:
            self._event = None
        body = answer.body if isinstance(answer.body, str) else serialize(answer.body)
        # What API Gateway expects of a payload 2.0 answer (and what Powertools' resolver returns).
        return {
            "statusCode": answer.status_code,
            "body": body,
            "isBase64Encoded": False,
            "headers": {"Content-Type": answer.content_type},
            "cookies": [],
        }

    def documented(self, details: dict[str, dict[str, Any]] | None = None) -> APIGatewayHttpResolver:
        """Powertools' resolver with every route, its function and its description: it writes the
        OpenAPI document. `details` adds to the description of a route, by path."""
        from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

        resolver = APIGatewayHttpResolver()
        for registered in self._views.values():
            route = registered.route
            documentation = {**registered.documentation, **(details or {}).get(route.path, {})}
            rule = route.path.replace("{", "<").replace("}", ">")
            resolver.route(rule, route.method, **documentation)(registered.view)
        return resolver


def _as_answer(value: Any) -> Answer:
    return value if isinstance(value, Answer) else Answer(200, value)


JSON_TYPES = ("application/json",)


def json_answer(body: dict[str, Any], outputs: Sequence[float]) -> Answer:
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
    return Answer(200, answer)


def error_answer(status: int, message: str, problems: list[dict[str, Any]] | None = None) -> Answer:
    return Answer(status, json.dumps({"error": message, "problems": problems or []}))


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or media.endswith("+json")


def json_body(event: Request) -> Any:
    """The request body as a JSON value; 415 unless declared JSON, 400 unless it parses."""
    headers = event.headers
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


def answer_error(err: Exception) -> Answer | None:
    """The answer to a domain error raised by a route (the common error body), or None to fail."""
    if isinstance(err, ValidationFailed):
        return error_answer(err.status, str(err), err.problems)
    if isinstance(err, NotFoundError):
        return error_answer(404, str(err))
    if isinstance(err, ConflictError | IntegrityError):
        # IntegrityError: a version whose artifacts are not what was registered; it stays refused.
        return error_answer(409, str(err))
    if isinstance(err, UnavailableError | StorageError):
        logger.error("dependency unavailable", extra={"error": str(err)})
        return error_answer(503, str(err))
    return None
