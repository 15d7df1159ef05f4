"""Predict function on moto: answers, the log path to S3, bad requests, champion refresh and refusal."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
from mlops.cloud.logstore import PredictionRecord, latest_report_key
from mlops.cloud.storage import parse_time, read_jsonl_gz
from mlops.handlers import log_writer as log_writer_handler
from mlops.handlers import predict as predict_handler
from mlops.model import bundle
from mlops.model.training import rows_frame
from mlops.serving.contract import ErrorBody, ModelInfo, PredictResponse
from mlops.shared.alarm_specs import FAILURE_DIMENSIONS
from mlops.shared.prediction_ids import served_hour
from mlops.shared.resources import LOG_BUCKET, REPORT_BUCKET

from tests.conftest import register_and_promote
from tests.integration.serving_helpers import (
    CONTEXT,
    drain_queue,
    load_event,
    response_json,
    sqs_event_from,
    with_body,
)

GOOD_ROW: dict[str, Any] = json.loads(load_event("predict_single.json")["body"])["features"]


def emf_metrics(stdout: str) -> list[dict[str, Any]]:
    """The EMF documents the function printed (one JSON object a line)."""
    docs = []
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def metric(doc: dict[str, Any], name: str) -> float | None:
    """A metric's total in one EMF document (Powertools writes values as lists)."""
    value = doc.get(name)
    if value is None:
        return None
    return float(sum(value)) if isinstance(value, list) else float(value)


def call(event: dict[str, Any]) -> tuple[int, Any]:
    response = predict_handler.handler(event, CONTEXT)
    return response["statusCode"], response_json(response)


def test_predictions_are_logged_to_s3_exactly_as_answered(
    champion, predict_runtime, aws_stack, fresh_settings
):
    single_event, batch_event = load_event("predict_single.json"), load_event("predict_batch.json")

    status_single, single = call(single_event)
    status_batch, batch = call(batch_event)

    assert (status_single, status_batch) == (200, 200)
    answered = {p["prediction_id"]: (single_event, 0, p) for p in single["predictions"]}
    answered |= {p["prediction_id"]: (batch_event, i, p) for i, p in enumerate(batch["predictions"])}
    assert len(answered) == 3

    # when the log writer gets exactly what the function put on the queue
    failures = log_writer_handler.handler(sqs_event_from(drain_queue(aws_stack)), CONTEXT)

    assert failures == {"batchItemFailures": []}
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    keys = [o["Key"] for o in aws_stack.s3.list_objects_v2(Bucket=bucket, Prefix="predictions/")["Contents"]]
    logged: dict[str, dict[str, Any]] = {}
    for key in keys:
        for record in read_jsonl_gz(aws_stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()):
            ts = parse_time(record["timestamp"])
            assert key.startswith(f"predictions/model_version=1/dt={ts:%Y-%m-%d}/hour={ts:%H}/")
            # the id the function made names the hour partition that holds the prediction
            assert served_hour(record["prediction_id"]) == ts.replace(minute=0, second=0, microsecond=0)
            PredictionRecord.model_validate(record)
            logged[record["prediction_id"]] = record
    assert logged.keys() == answered.keys()
    for pid, (event, row_index, prediction) in answered.items():
        body = json.loads(event["body"])
        sent = body["features"] if "features" in body else body["instances"][row_index]
        record = logged[pid]
        assert record["features"] == sent
        assert record["request_id"] == event["requestContext"]["requestId"]
        assert (record["probability"], record["label"]) == (prediction["probability"], prediction["label"])
        assert record["model_version"] == 1
        expected_unseen = ["device"] if sent["device"] == "smart-tv" else []
        assert record["unseen_categories"] == expected_unseen


def test_a_retried_log_batch_overwrites_instead_of_duplicating(
    champion, predict_runtime, aws_stack, fresh_settings
):
    call(load_event("predict_batch.json"))
    event = sqs_event_from(drain_queue(aws_stack))
    bucket = aws_stack.env[LOG_BUCKET.env_var]

    log_writer_handler.handler(event, CONTEXT)
    first = aws_stack.s3.list_objects_v2(Bucket=bucket, Prefix="predictions/")["Contents"]
    log_writer_handler.handler(event, CONTEXT)
    second = aws_stack.s3.list_objects_v2(Bucket=bucket, Prefix="predictions/")["Contents"]

    assert [o["Key"] for o in first] == [o["Key"] for o in second]
    assert len(first) == 1


def test_answers_match_the_sklearn_pipeline_in_input_order(champion, predict_runtime, trained):
    rows = [
        GOOD_ROW,
        {**GOOD_ROW, "contract": "two-year", "tenure_months": 60},
        {**GOOD_ROW, "total_charges": None},
    ]
    status, body = call(with_body(load_event("predict_batch.json"), {"instances": rows}))

    assert status == 200
    PredictResponse.model_validate(body)
    expected = trained.pipeline.predict_proba(rows_frame(rows, trained.spec))[:, 1]
    got = np.array([p["probability"] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert [p["label"] for p in body["predictions"]] == [int(p >= 0.5) for p in got]


def test_metrics_count_predictions_and_unseen_categories_per_version(champion, predict_runtime, capsys):
    call(load_event("predict_batch.json"))

    docs = emf_metrics(capsys.readouterr().out)
    assert len(docs) == 1
    assert metric(docs[0], "Predictions") == 2.0
    assert metric(docs[0], "UnseenCategories") == 1.0
    assert docs[0]["ModelVersion"] == "1"
    assert docs[0]["ModelName"] == "churn"
    assert "PredictionLatency" in docs[0]


def test_get_model_describes_the_champion_and_the_latest_production_figures(
    champion, predict_runtime, aws_stack
):
    status, before = call(load_event("model_get.json"))
    assert status == 200
    ModelInfo.model_validate(before)
    assert before["model_version"] == 1
    assert before["test_metrics"] == champion.test_metrics
    assert [f["name"] for f in before["feature_schema"]["features"]] == list(GOOD_ROW)
    assert before["production"] is None

    summary = {"window_hours": 24, "metrics": {"roc_auc": 0.81}, "label_count": 512}
    aws_stack.s3.put_object(
        Bucket=aws_stack.env[REPORT_BUCKET.env_var],
        Key=latest_report_key(1),
        Body=json.dumps(summary).encode(),
    )
    _, after = call(load_event("model_get.json"))
    assert after["production"] == summary


def test_base64_encoded_bodies_are_accepted(champion, predict_runtime):
    status, body = call(load_event("predict_base64.json"))
    assert status == 200
    assert len(body["predictions"]) == 1


def _row(**changes: Any) -> dict[str, Any]:
    return {**GOOD_ROW, **changes}


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD_ROW.items() if k != name}


BAD_REQUESTS = [
    ("malformed JSON", load_event("predict_malformed_json.json"), 400, {(None, None)}),
    ("empty body", with_body(load_event("predict_single.json"), ""), 400, {(None, None)}),
    ("wrong content type", load_event("predict_wrong_content_type.json"), 415, {(None, "content-type")}),
    (
        "several bad rows",
        load_event("predict_invalid_rows.json"),
        422,
        # Only the last row carries the id column: the rows without it are named.
        {
            (1, "tenure_months"),
            (1, "satisfaction_score"),
            (2, "region"),
            (0, "customer_id"),
            (1, "customer_id"),
        },
    ),
    ("missing feature", {"features": _without("contract")}, 422, {(0, "contract")}),
    ("string for a number", {"features": _row(tenure_months="12")}, 422, {(0, "tenure_months")}),
    ("bool is not a number", {"features": _row(support_calls=True)}, 422, {(0, "support_calls")}),
    ("array for a category", {"features": _row(region=[3])}, 422, {(0, "region")}),
    ("NaN", json.dumps({"features": _row(monthly_charges=float("nan"))}), 422, {(0, "monthly_charges")}),
    ("Infinity", json.dumps({"features": _row(data_usage_gb=float("inf"))}), 422, {(0, "data_usage_gb")}),
    ("below declared min", {"features": _row(support_calls=-1)}, 422, {(0, "support_calls")}),
    ("above declared max", {"features": _row(satisfaction_score=10.5)}, 422, {(0, "satisfaction_score")}),
    ("unknown extra field", {"features": _row(customer_name="C-1")}, 422, {(0, "customer_name")}),
    ("over-long category", {"features": _row(device="x" * 300)}, 422, {(0, "device")}),
    ("row is not an object", {"instances": [GOOD_ROW, [1, 2]]}, 422, {(1, None)}),
    ("features not an object", {"features": [GOOD_ROW]}, 422, {(0, "features")}),
    ("empty batch", {"instances": []}, 422, {(None, "instances")}),
    ("too large batch", {"instances": [GOOD_ROW] * 1001}, 413, {(None, "instances")}),
    ("both envelopes", {"features": GOOD_ROW, "instances": [GOOD_ROW]}, 422, {(None, None)}),
    ("unknown envelope field", {"rows": [GOOD_ROW]}, 422, {(None, "rows"), (None, None)}),
    ("body is an array", [GOOD_ROW], 422, {(None, None)}),
    ("nested 100,000 deep", '{"features": ' + "[" * 100_000 + "]" * 100_000 + "}", 400, {(None, None)}),
    ("nested within the parser's guard", {"features": _row(region=[[[["north"]]]])}, 422, {(0, "region")}),
    (
        "lone surrogate category",
        json.dumps({"features": _row(region="\ud800")}),
        400,
        {(None, "features.region")},
    ),
    (
        "duplicate feature",
        json.dumps({"features": GOOD_ROW})[:-2] + ', "region": "south"}}',
        400,
        {(None, "region")},
    ),
]


def test_bad_requests_get_a_4xx_naming_every_offending_row_and_field(champion, predict_runtime, subtests):
    # One container for the whole table: registering a champion per case would dominate the run time.
    for name, case, status, problems in BAD_REQUESTS:
        with subtests.test(name):
            if isinstance(case, dict) and "requestContext" in case:
                event = case
            else:
                event = with_body(load_event("predict_single.json"), case)

            got_status, body = call(event)

            assert got_status == status
            ErrorBody.model_validate(body)
            assert {(p["row"], p["field"]) for p in body["problems"]} == problems


def _staged(event: dict[str, Any], raw_path: str, stage: str) -> dict[str, Any]:
    event["rawPath"] = event["requestContext"]["http"]["path"] = raw_path
    event["requestContext"]["stage"] = stage
    return event


def test_a_named_stage_routes_with_and_without_the_stage_in_the_path(champion, predict_runtime):
    # Behind a custom domain the stage is not in the raw path; on the API's own endpoint it is.
    for raw_path in ("/predict", "/prod/predict"):
        status, body = call(_staged(load_event("predict_single.json"), raw_path, "prod"))
        assert status == 200, body
        PredictResponse.model_validate(body)
    for raw_path in ("/model", "/prod/model"):
        status, body = call(_staged(load_event("model_get.json"), raw_path, "prod"))
        assert status == 200 and body["model_version"] == champion.version
    status, body = call(_staged(load_event("model_get.json"), "/production/model", "prod"))
    assert status == 404 and "/production/model" in body["error"]


def test_unknown_route_is_a_json_404(champion, predict_runtime):
    event = load_event("model_get.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/models"
    status, body = call(event)
    assert status == 404
    ErrorBody.model_validate(body)


def test_a_null_value_is_a_missing_value_and_is_served(champion, predict_runtime):
    status, body = call(
        with_body(load_event("predict_single.json"), {"features": _row(total_charges=None, region=None)})
    )
    assert status == 200
    assert 0.0 <= body["predictions"][0]["probability"] <= 1.0


def test_a_new_champion_is_served_after_the_refresh_interval(
    champion, predict_runtime, aws_stack, trained, churn_data, clock
):
    assert call(load_event("predict_single.json"))[1]["model_version"] == 1

    register_and_promote(aws_stack, trained, churn_data, reason="second champion")
    still = call(load_event("predict_single.json"))[1]["model_version"]
    clock.advance(predict_runtime.settings.champion_refresh_seconds)
    after = call(load_event("predict_single.json"))[1]["model_version"]

    assert (still, after) == (1, 2)
    assert call(load_event("model_get.json"))[1]["model_version"] == 2


def _tamper(aws_stack, version: int) -> None:
    key = f"{bundle.bundle_prefix('churn', version)}{bundle.MODEL_ONNX}"
    body = aws_stack.s3.get_object(Bucket=aws_stack.artifact_bucket, Key=key)["Body"].read()
    aws_stack.s3.put_object(Bucket=aws_stack.artifact_bucket, Key=key, Body=body + b"\x00")


def test_a_tampered_champion_is_refused_and_the_old_one_keeps_serving(
    champion, predict_runtime, aws_stack, trained, churn_data, clock, capsys, caplog
):
    assert call(load_event("predict_single.json"))[1]["model_version"] == 1
    register_and_promote(aws_stack, trained, churn_data, reason="tampered after registration")
    _tamper(aws_stack, 2)
    capsys.readouterr()

    clock.advance(predict_runtime.settings.champion_refresh_seconds)
    status, body = call(load_event("predict_single.json"))

    assert (status, body["model_version"]) == (200, 1)
    out = capsys.readouterr().out
    (refused,) = [doc for doc in emf_metrics(out) if "ChampionLoadFailures" in doc]
    assert metric(refused, "ChampionLoadFailures") == 1.0
    # In a document of its own with exactly the dimensions its alarm watches (no model version).
    assert [sorted(d) for d in refused["_aws"]["CloudWatchMetrics"][0]["Dimensions"]] == [
        sorted(FAILURE_DIMENSIONS)
    ]
    refusals = [r for r in caplog.records if r.levelname == "ERROR" and "champion refused" in r.getMessage()]
    assert len(refusals) == 1
    assert call(load_event("model_get.json"))[1]["model_version"] == 1


def test_a_tampered_first_champion_is_a_503_not_a_wrong_answer(champion, predict_runtime, aws_stack):
    _tamper(aws_stack, 1)
    status, body = call(load_event("predict_single.json"))
    assert status == 503
    ErrorBody.model_validate(body)


def test_no_champion_is_a_503(aws_stack, predict_runtime):
    status, body = call(load_event("predict_single.json"))
    assert status == 503
    assert "no champion" in body["error"]


def test_the_predict_function_imports_no_training_libraries_and_no_powertools_resolvers():
    # Powertools' event_handler package imports every resolver it ships, asyncio with them: about
    # 0.1 s of a cold start. The function routes with mlops.handlers.http instead. The model spec's
    # and the monitoring profile's pydantic models are built at import and no request reads them
    # (about 0.02 s of a cold start): serving takes the kinds it names from mlops.model.kinds.
    unwanted = (
        "sklearn",
        "scipy",
        "pandas",
        "skl2onnx",
        "joblib",
        "aws_lambda_powertools.event_handler",
        "asyncio",
        "mlops.model.spec",
        "mlops.monitoring",
    )
    code = f"import sys, mlops.handlers.predict; print(sorted(m for m in {unwanted!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_queue_that_is_gone_still_answers_and_counts_the_lost_log_records(
    champion, predict_runtime, aws_stack, capsys
):
    # Given the prediction queue has been deleted under a running container.
    aws_stack.sqs.delete_queue(QueueUrl=predict_runtime.settings.prediction_queue_url)
    capsys.readouterr()

    # When a client asks for two predictions.
    status, body = call(load_event("predict_batch.json"))

    # Then it gets its answer, and the two unlogged records are counted under exactly the
    # dimensions the PredictionLogFailures alarm watches.
    assert status == 200 and len(body["predictions"]) == 2
    (lost,) = [doc for doc in emf_metrics(capsys.readouterr().out) if "PredictionLogFailures" in doc]
    assert metric(lost, "PredictionLogFailures") == 2.0
    assert [sorted(d) for d in lost["_aws"]["CloudWatchMetrics"][0]["Dimensions"]] == [
        sorted(FAILURE_DIMENSIONS)
    ]
    assert (lost["ModelName"], lost["service"]) == ("churn", "serverless-mlops")
