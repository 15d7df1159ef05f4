"""A regression champion behind the same handlers on moto: values answered and logged as served,
the same validation, a document that says what this API does, and numeric feedback checked
against the spec's target range."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from mlops.cloud import aws
from mlops.cloud.logstore import RegressionPredictionRecord, iter_feedback, latest_values
from mlops.cloud.storage import read_jsonl_gz, utcnow
from mlops.datagen.pricing import generate_prices
from mlops.handlers import feedback as feedback_handler
from mlops.handlers import log_writer as log_writer_handler
from mlops.handlers import predict as predict_handler
from mlops.model.spec import load_spec
from mlops.model.training import frame_rows, rows_frame, train_model
from mlops.regression.feedback import task_environment
from mlops.shared.resources import LOG_BUCKET, MODEL_NAME_ENV
from mlops.shared.settings import ServingSettings

from tests.conftest import register_and_promote
from tests.integration.serving_helpers import (
    CONTEXT,
    FakeClock,
    deliver_queued,
    drain_queue,
    load_event,
    response_json,
    sqs_event_from,
    with_body,
)
from tests.unit.test_regression_spec import PRICING_SPEC


@pytest.fixture(scope="module")
def pricing():
    spec = load_spec(PRICING_SPEC)
    data = generate_prices(1500, seed=11)
    return spec, data, train_model(data, spec)


@pytest.fixture
def served(aws_stack, pricing, monkeypatch):
    """The pricing model promoted on the moto stack, a fresh predict container and feedback settings."""
    spec, data, result = pricing
    monkeypatch.setenv(MODEL_NAME_ENV, spec.name)
    for name, value in task_environment(spec).items():
        monkeypatch.setenv(name, value)
    register_and_promote(aws_stack, result, data)
    runtime = predict_handler.PredictRuntime(
        ServingSettings(),  # type: ignore[call-arg]
        aws.client("s3"),
        aws.client("dynamodb"),
        aws.client("sqs"),
        clock=FakeClock(),
    )
    predict_handler.use_runtime(runtime)
    feedback_handler.settings.cache_clear()
    log_writer_handler.settings.cache_clear()
    yield result
    predict_handler.use_runtime(None)
    feedback_handler.settings.cache_clear()
    log_writer_handler.settings.cache_clear()


def call(handler: Any, event: dict[str, Any]) -> tuple[int, Any]:
    response = handler.handler(event, CONTEXT)
    return response["statusCode"], response_json(response)


def get_event(path: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("model_get.json"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = f"GET {path}"
    return event


def test_values_are_answered_and_logged_exactly_as_served(served, aws_stack):
    # Given a regression champion and rows a client sends as JSON
    rows = frame_rows(served.test_features.iloc[:5])
    status, body = call(predict_handler, with_body(load_event("predict_batch.json"), {"instances": rows}))
    # then each row gets a value (and nothing of a classifier), within the stated parity of sklearn
    assert status == 200 and body["model_version"] == 1
    assert all(set(p) == {"prediction_id", "value"} for p in body["predictions"])
    expected = served.pipeline.predict(rows_frame(rows, served.spec))
    answered = np.array([p["value"] for p in body["predictions"]])
    assert np.max(np.abs(answered - expected)) <= served.spec.regression_settings.parity_tolerance

    # when the log writer stores what the function queued
    assert log_writer_handler.handler(sqs_event_from(drain_queue(aws_stack)), CONTEXT) == {
        "batchItemFailures": []
    }
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    keys = [o["Key"] for o in aws_stack.s3.list_objects_v2(Bucket=bucket, Prefix="predictions/")["Contents"]]
    logged = [
        r for k in keys for r in read_jsonl_gz(aws_stack.s3.get_object(Bucket=bucket, Key=k)["Body"].read())
    ]
    # then the log holds the same values under the same ids, with no probability or class
    assert {r["prediction_id"]: r["value"] for r in logged} == {
        p["prediction_id"]: p["value"] for p in body["predictions"]
    }
    assert all("probability" not in r and "label" not in r for r in logged)
    [RegressionPredictionRecord.model_validate(r) for r in logged]


def test_bad_rows_are_refused_by_name_as_for_classification(served):
    row = frame_rows(served.test_features.iloc[:1])[0] | {"seats": "many", "storage_gb": -5}
    status, body = call(predict_handler, with_body(load_event("predict_single.json"), {"features": row}))
    assert status == 422
    assert {p["field"] for p in body["problems"]} == {"seats", "storage_gb"}


def test_the_served_document_describes_values_and_numeric_feedback(served):
    status, document = call(predict_handler, get_event("/openapi.json"))
    assert status == 200
    prediction = document["components"]["schemas"]["Prediction"]
    assert set(prediction["properties"]) == {"prediction_id", "value"}
    assert prediction["properties"]["value"]["type"] == "number"
    feedback = document["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    label = feedback["oneOf"][0]["properties"]["label"]
    assert (label["type"], label["minimum"], label["maximum"]) == ("number", 0.0, 100000.0)
    status, model = call(predict_handler, get_event("/model"))
    assert status == 200 and model["feature_schema"]["task"] == "regression"
    assert model["primary_metric"] == "rmse"


def feedback_event(items: list[dict[str, Any]]) -> dict[str, Any]:
    return with_body(load_event("feedback_batch.json"), {"items": items})


def test_numeric_feedback_is_stored_once_and_checked_against_the_range(served, aws_stack):
    # Given true prices for two predictions (one written as an integer)
    items = [
        {"prediction_id": "q-1", "label": 129.5, "source": "explicit"},
        {"prediction_id": "q-2", "label": 100, "source": "explicit"},
    ]
    status, body = call(feedback_handler, feedback_event(items))
    assert status == 200 and body["stored"] == 2
    # when the same truth is sent again, one as 100.0 rather than 100, and one changed
    again = [items[0] | {"label": 129.5}, items[1] | {"label": 100.0}]
    status, body = call(feedback_handler, feedback_event(again))
    assert status == 200 and body["duplicates"] == 2
    status, body = call(feedback_handler, feedback_event([items[0] | {"label": 130.0}]))
    assert status == 200 and body["conflicts"] == 1
    # then the stored truth is what was first sent, as numbers
    assert deliver_queued(aws_stack) == {"batchItemFailures": []}
    now = utcnow()
    stored = iter_feedback(
        aws_stack.s3, aws_stack.env[LOG_BUCKET.env_var], now - timedelta(days=1), now + timedelta(days=1)
    )
    assert latest_values(stored) == {"q-1": 129.5, "q-2": 100.0}


@pytest.mark.parametrize(
    ("label", "problem"),
    [
        (-1.0, "-1.0 is below the target's minimum 0.0"),
        (1e6, "1000000.0 is above the target's maximum 100000.0"),
        ("129.5", "expected a number (the true value)"),
        (True, "expected a number (the true value)"),
        (None, "expected a number (the true value)"),
    ],
)
def test_feedback_that_is_no_price_is_refused_naming_the_label(served, label, problem):
    status, body = call(
        feedback_handler, feedback_event([{"prediction_id": "q-9", "label": label, "source": "explicit"}])
    )
    assert status == 422
    assert body["problems"] == [{"row": 0, "field": "label", "problem": problem}]


def test_a_classification_deployment_still_takes_only_0_or_1(aws_stack, fresh_settings):
    status, body = call(
        feedback_handler, feedback_event([{"prediction_id": "c-1", "label": 0.5, "source": "explicit"}])
    )
    assert status == 422 and body["problems"][0]["problem"] == "expected 0 or 1"
    assert json.loads(load_event("feedback_single.json")["body"])["label"] in (0, 1)
