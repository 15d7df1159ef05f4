"""Each HTTP function's dispatcher: the routes of the one route table, the common error body, and
answers in the shape API Gateway takes (the shape Powertools' resolver gives, which writes the API
document from the same functions)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mlops.handlers import admin, feedback, predict
from mlops.handlers.http import Answer, HttpApi
from mlops.shared.errors import ConflictError, StorageError, ValidationFailed
from mlops.shared.routes import ROUTES


def _event(
    method: str, raw_path: str, stage: str = "$default", query: dict[str, str] | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "rawPath": raw_path,
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": raw_path}, "requestId": "r-1", "stage": stage},
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    return event


@pytest.mark.parametrize("module", [predict, feedback, admin], ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_every_function_serves_exactly_its_routes_of_the_route_table(module: Any):
    app: HttpApi = module.app
    # Binding a route outside the table fails (below); here no route of the table is left unserved.
    assert app.unbound() == []
    assert any(r.function == app.function for r in ROUTES)


def test_a_route_outside_the_table_cannot_be_bound():
    app = HttpApi("predict")
    with pytest.raises(ValueError, match="DELETE /predict is not a route of the predict function"):
        app.route("DELETE", "/predict")
    with pytest.raises(ValueError, match="GET /models is not a route of the predict function"):
        app.get("/models")


def _app() -> HttpApi:
    app = HttpApi("admin")
    seen: dict[str, Any] = {}

    @app.get("/models/{version}")
    def show(version: str) -> Answer:
        seen["version"] = version
        seen["request_id"] = app.current_event.request_id
        if version == "9":
            raise ConflictError("version 9 is refused")
        if version == "8":
            raise StorageError("the registry is down")
        if version == "7":
            raise ValidationFailed("bad", [{"row": None, "field": "version", "problem": "odd"}], 422)
        if version == "6":
            raise KeyError("a bug")
        return Answer(201, {"version": version, "ratio": 0.5})

    @app.get("/models/history")
    def history() -> dict[str, Any]:
        return {"at": app.current_event.query("at")}

    app.seen = seen  # type: ignore[attr-defined]
    return app


def test_answers_have_the_payload_2_shape_and_path_parameters_reach_the_function():
    app = _app()
    answer = app.resolve(_event("GET", "/models/3"))
    assert answer == {
        "statusCode": 201,
        "body": '{"version":"3","ratio":0.5}',
        "isBase64Encoded": False,
        "headers": {"Content-Type": "application/json"},
        "cookies": [],
    }
    assert app.seen == {"version": "3", "request_id": "r-1"}  # type: ignore[attr-defined]
    # A literal segment wins over a parameter; a query string parameter is read by name.
    answer = app.resolve(_event("get", "/prod/models/history", stage="prod", query={"at": "2026-01-01"}))
    assert (answer["statusCode"], json.loads(answer["body"])) == (200, {"at": "2026-01-01"})


def test_domain_errors_get_their_status_and_the_common_body_and_other_errors_fail_the_invocation():
    app = _app()
    for version, status, problems in (
        ("9", 409, []),
        ("8", 503, []),
        ("7", 422, [{"row": None, "field": "version", "problem": "odd"}]),
    ):
        answer = app.resolve(_event("GET", f"/models/{version}"))
        assert answer["statusCode"] == status
        assert json.loads(answer["body"])["problems"] == problems
    with pytest.raises(KeyError):
        app.resolve(_event("GET", "/models/6"))
    # After a failed invocation the next request is not read as the failed one.
    with pytest.raises(RuntimeError):
        _ = app.current_event


@pytest.mark.parametrize(
    ("method", "raw_path", "stage", "shown"),
    [
        ("DELETE", "/models/3", "$default", "DELETE /models/3"),
        ("GET", "/models/3/", "$default", "GET /models/3/"),
        ("GET", "/predict", "$default", "GET /predict"),
        ("GET", "/prod/nowhere", "prod", "GET /nowhere"),
    ],
)
def test_an_unknown_route_is_a_json_404_naming_it(method: str, raw_path: str, stage: str, shown: str):
    answer = _app().resolve(_event(method, raw_path, stage))
    assert answer["statusCode"] == 404
    assert json.loads(answer["body"]) == {"error": f"no route {shown}", "problems": []}
