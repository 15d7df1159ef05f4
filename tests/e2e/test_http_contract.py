"""The API over HTTP on the local stack: bad input is a 4xx naming the problem, answers match the
served document, and concurrent clients each get their own answer."""

from __future__ import annotations

import json
import random
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from mlops.handlers import openapi
from mlops.local.gateway import http_api_event
from mlops.serving.contract import (
    ErrorBody,
    FeedbackResponse,
    History,
    ModelDetail,
    ModelInfo,
    ModelList,
    ModelSchema,
    PredictResponse,
    RetrainAccepted,
    ServedAt,
)
from mlops.shared.routes import compile_routes, match
from pydantic import BaseModel

from tests.conftest import ServedStack
from tests.integration.serving_helpers import load_event

ROW: dict[str, Any] = json.loads(load_event("predict_single.json")["body"])["features"]
FEEDBACK: dict[str, Any] = {"prediction_id": "p-1", "label": 1, "source": "explicit"}
DEEP = "[" * 100_000 + "]" * 100_000


def _with_duplicate(body: dict[str, Any], key: str, value: Any) -> str:
    """`body` as JSON text with `key` sent a second time, last."""
    text = json.dumps(body)
    return text[:-1] + f", {json.dumps(key)}: {json.dumps(value)}}}"


# (case, method, path, body, status, field the problem names or None, text the answer contains)
BAD_INPUTS = [
    ("predict nested 100,000 deep", "POST", "/predict", DEEP, 400, None, "too deeply"),
    ("feedback nested 100,000 deep", "POST", "/feedback", DEEP, 400, None, "too deeply"),
    ("promote nested 100,000 deep", "POST", "/models/2/promote", DEEP, 400, None, "too deeply"),
    (
        "lone surrogate in a category",
        "POST",
        "/predict",
        json.dumps({"features": {**ROW, "region": "\ud800"}}),
        400,
        "features.region",
        "surrogate",
    ),
    (
        "lone surrogate as a prediction id",
        "POST",
        "/feedback",
        json.dumps({**FEEDBACK, "prediction_id": "\ud800"}),
        400,
        "prediction_id",
        "surrogate",
    ),
    (
        "observed_at after year 9999 in UTC",
        "POST",
        "/feedback",
        {**FEEDBACK, "observed_at": "9999-12-31T23:59:59-01:00"},
        422,
        "observed_at",
        "within the years 1 to 9999",
    ),
    (
        "observed_at before year 1 in UTC",
        "POST",
        "/feedback",
        {**FEEDBACK, "observed_at": "0001-01-01T00:00:00+01:00"},
        422,
        "observed_at",
        "within the years 1 to 9999",
    ),
    (
        "history at after year 9999 in UTC",
        "GET",
        "/models/history?at=9999-12-31T23:59:59-01:00",
        None,
        422,
        "at",
        "within the years 1 to 9999",
    ),
    (
        "history at before year 1 in UTC",
        "GET",
        "/models/history?at=0001-01-01T00:00:00%2B01:00",
        None,
        422,
        "at",
        "within the years 1 to 9999",
    ),
    ("version of 5,000 digits", "GET", "/models/" + "7" * 5000, None, 422, "version", "not a version"),
    ("version '²'", "GET", "/models/%C2%B2", None, 422, "version", "not a version"),
    ("promote version '²'", "POST", "/models/%C2%B2/promote", {"reason": "r"}, 422, "version", "version"),
    ("promote with a 500 KB reason", "POST", "/models/2/promote", {"reason": "x" * 500_000}, 422, "reason",
     "at most 1000 characters"),
    ("duplicate key in predict", "POST", "/predict", _with_duplicate({"features": ROW}, "features", ROW), 400,
     "features", "duplicate key 'features'"),
    ("duplicate key in a row", "POST", "/predict",
     json.dumps({"features": ROW})[:-2] + ', "region": "south"}}', 400, "region", "duplicate key 'region'"),
    ("duplicate key in feedback", "POST", "/feedback", _with_duplicate(FEEDBACK, "label", 0), 400, "label",
     "duplicate key 'label'"),
    ("duplicate key in promote", "POST", "/models/2/promote", _with_duplicate({"reason": "a"}, "reason", "b"),
     400, "reason", "duplicate key 'reason'"),
    ("duplicate key in retrain", "POST", "/retrain", _with_duplicate({"force": False}, "force", True), 400,
     "force", "duplicate key 'force'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field", "text"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_is_a_4xx_json_answer_naming_the_problem_and_changes_nothing(
    served: ServedStack, method: str, path: str, body: Any, status: int, field: str | None, text: str
) -> None:
    history = served.registry.history()

    got, headers, answer = served.call(method, path, body)

    assert got == status, answer
    assert headers["content-type"] == "application/json"
    ErrorBody.model_validate(answer)
    problems = answer["problems"]
    assert problems and all(len(p["problem"]) < 300 for p in problems)
    if field is not None:
        assert field in [p["field"] for p in problems], problems
    assert text in answer["error"] + " ".join(p["problem"] for p in problems)
    assert served.registry.history() == history
    assert served.retrain_requests == []


def test_a_valid_promote_reason_at_the_bound_is_accepted(served: ServedStack) -> None:
    status, _, entry = served.call("POST", "/models/2/promote", {"reason": "r" * 1000})
    assert status == 200 and entry["to_version"] == 2
    status, _, entry = served.call("POST", "/models/rollback", {"reason": "back"})
    assert status == 200 and entry["to_version"] == 1


def test_the_served_document_names_the_champions_features_and_the_committed_one_does_not(
    served: ServedStack,
) -> None:
    status, _, schema = served.call("GET", "/model/schema")
    assert status == 200
    ModelSchema.model_validate(schema)
    row = schema["row"]
    assert row["required"] == [f["name"] for f in schema["features"]] == list(ROW)
    assert row["additionalProperties"] is False
    assert row["properties"]["tenure_months"]["maximum"] == 600
    assert "month-to-month" in row["properties"]["contract"]["examples"]

    status, _, document = served.call("GET", "/openapi.json")
    assert status == 200
    one, batch = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["oneOf"]
    assert one["properties"]["features"]["properties"] == row["properties"]
    assert batch["properties"]["instances"]["items"] == row
    assert batch["properties"]["instances"]["maxItems"] == schema["max_batch_rows"]
    # Everything else is the committed document.
    committed = json.loads(openapi.DOCUMENT.read_text(encoding="utf-8"))
    assert {p: v for p, v in document["paths"].items() if p != "/predict"} == {
        p: v for p, v in committed["paths"].items() if p != "/predict"
    }


def _expected(served: ServedStack, request: tuple[str, str, Any]) -> Any:
    """What an answer must hold to belong to `request` (prediction ids differ per call)."""
    method, path, body = request
    status, _, answer = served.call(method, path, body)
    if path == "/predict" and status == 200:
        return status, [p["probability"] for p in answer["predictions"]]
    return status, answer


def test_concurrent_clients_each_get_the_answer_to_their_own_request(served: ServedStack) -> None:
    # Given requests to the same functions that must give different answers
    rng = random.Random(7)
    rows = [{**ROW, "tenure_months": t, "support_calls": rng.randint(0, 9)} for t in range(0, 240, 8)]
    requests: list[tuple[str, str, Any]] = [("POST", "/predict", {"features": r}) for r in rows]
    requests += [("POST", "/predict", {"instances": rows[:n]}) for n in (2, 3, 5)]
    requests += [("POST", "/predict", {}), ("GET", "/model", None), ("GET", "/model/schema", None)]
    requests += [("GET", "/models", None), ("GET", "/models/history", None), ("GET", "/models/1", None)]
    expected = {i: _expected(served, r) for i, r in enumerate(requests)}
    assert len({json.dumps(v, sort_keys=True) for v in expected.values()}) == len(requests)

    # When eight clients send them all at once, several times over, with the interpreter switching
    # threads every few microseconds so that any state shared between requests is interleaved
    order = [i for _ in range(4) for i in range(len(requests))]
    rng.shuffle(order)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda i: (i, _expected(served, requests[i])), order))
    finally:
        sys.setswitchinterval(switch)

    # Then every answer is the one its own request gets alone
    wrong = [(requests[i][:2], answer) for i, answer in answers if answer != expected[i]]
    assert wrong == []


def _event(method: str, path: str, body: Any) -> dict[str, Any]:
    found = match(compile_routes(), method, path)
    assert found is not None
    route, params = found
    data = json.dumps(body).encode() if body is not None else b""
    return http_api_event(route, method, path, "", {"content-type": "application/json"}, data, params)


def _answer(served: ServedStack, function: str, event: dict[str, Any]) -> Any:
    response = served.stack.lambdas.invoke(function, event)
    body = json.loads(response["body"])
    if "predictions" in body:
        return response["statusCode"], [p["probability"] for p in body["predictions"]]
    return response["statusCode"], body


def test_concurrent_invocations_of_the_api_functions_never_cross_answers(served: ServedStack) -> None:
    # Given events for each API function whose answers all differ
    rows = [{**ROW, "tenure_months": t} for t in range(0, 600, 25)]
    events = [("predict", _event("POST", "/predict", {"features": r})) for r in rows]
    events += [("predict", _event("GET", "/model", None)), ("predict", _event("POST", "/predict", {}))]
    events += [("admin", _event("GET", f"/models/{v}", None)) for v in (1, 2, 3)]
    events += [("admin", _event("GET", "/models", None)), ("feedback", _event("POST", "/feedback", {}))]
    expected = [_answer(served, function, event) for function, event in events]
    assert len({json.dumps(a, sort_keys=True) for a in expected}) == len(events)

    # When eight threads invoke them at once, switching every microsecond
    order = [i for _ in range(6) for i in range(len(events))]
    random.Random(3).shuffle(order)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda i: (i, _answer(served, *events[i])), order))
    finally:
        sys.setswitchinterval(switch)

    # Then each event got its own answer
    assert [i for i, answer in answers if answer != expected[i]] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "model"),
    [
        ("POST", "/predict", {"features": ROW}, 200, PredictResponse),
        ("POST", "/predict", {"instances": [ROW, {**ROW, "region": None, "tenure_months": None}]}, 200,
         PredictResponse),
        ("GET", "/model", None, 200, ModelInfo),
        ("GET", "/model/schema", None, 200, ModelSchema),
        ("POST", "/feedback", {"items": [FEEDBACK, {**FEEDBACK, "source": "implicit"}]}, 200,
         FeedbackResponse),
        ("GET", "/models", None, 200, ModelList),
        ("GET", "/models/1", None, 200, ModelDetail),
        ("GET", "/models/000002", None, 200, ModelDetail),
        ("GET", "/models/history", None, 200, History),
        ("GET", "/models/history?at=2000-01-01T00:00:00Z", None, 200, ServedAt),
        ("GET", "/models/history?at=9999-12-31T23:59:59Z", None, 200, ServedAt),
        ("POST", "/retrain", {"reason": "fresh labels", "force": True}, 202, RetrainAccepted),
        ("GET", "/models/9", None, 404, ErrorBody),
    ],
)  # fmt: skip
def test_answers_conform_to_their_documented_models(
    served: ServedStack, method: str, path: str, body: Any, status: int, model: type[BaseModel]
) -> None:
    got, headers, answer = served.call(method, path, body)
    assert got == status, answer
    assert headers["content-type"] == "application/json"
    model.model_validate(answer)
    served.retrain_requests.clear()
