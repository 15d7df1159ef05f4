"""Feedback function on moto: stored once however often it is sent, validated like predict, queued
with the prediction logs and written by the log writer, many requests to one object."""

from __future__ import annotations

import json
from datetime import timedelta

from mlops.cloud.logstore import iter_feedback
from mlops.cloud.storage import utcnow
from mlops.handlers import feedback as feedback_handler
from mlops.serving.contract import ErrorBody, FeedbackResponse
from mlops.shared.resources import LOG_BUCKET, PREDICTION_QUEUE

from tests.integration.serving_helpers import (
    CONTEXT,
    deliver_queued,
    drain_queue,
    load_event,
    response_json,
    with_body,
)


def call(event):
    response = feedback_handler.handler(event, CONTEXT)
    return response["statusCode"], response_json(response)


def stored(aws_stack):
    """The feedback in S3 once the log writer has taken what is queued."""
    assert deliver_queued(aws_stack) == {"batchItemFailures": []}
    # Feedback is partitioned by the day it was received: today, give or take a midnight.
    now = utcnow()
    return list(
        iter_feedback(
            aws_stack.s3, aws_stack.env[LOG_BUCKET.env_var], now - timedelta(days=1), now + timedelta(days=1)
        )
    )


def _feedback_keys(aws_stack):
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    return [
        o["Key"] for o in aws_stack.s3.list_objects_v2(Bucket=bucket, Prefix="feedback/").get("Contents", [])
    ]


def test_the_same_feedback_sent_twice_is_stored_once(aws_stack, fresh_settings):
    event = load_event("feedback_single.json")

    first_status, first = call(event)
    second_status, second = call(event)

    assert (first_status, second_status) == (200, 200)
    FeedbackResponse.model_validate(first)
    assert first["items"][0]["status"] == "stored"
    assert second["items"][0]["status"] == "duplicate"
    records = stored(aws_stack)
    assert [(r.prediction_id, r.label, r.source) for r in records] == [
        ("5f0c6d1e2a3b4c5d6e7f809112233445", 1, "explicit")
    ]
    assert all(
        key.startswith("feedback/dt=") and key.endswith(".jsonl.gz") for key in _feedback_keys(aws_stack)
    )


def test_a_batch_stores_new_items_and_reports_duplicates(aws_stack, fresh_settings):
    call(load_event("feedback_single.json"))
    batch = json.loads(load_event("feedback_batch.json")["body"])
    batch["items"].append(
        {"prediction_id": "5f0c6d1e2a3b4c5d6e7f809112233445", "label": 1, "source": "explicit"}
    )
    batch["items"].append(dict(batch["items"][1]))

    status, body = call(with_body(load_event("feedback_batch.json"), batch))

    assert status == 200
    assert [i["status"] for i in body["items"]] == ["stored", "stored", "duplicate", "duplicate"]
    assert (body["stored"], body["duplicates"], body["conflicts"]) == (2, 2, 0)
    records = {(r.prediction_id, r.source): r for r in stored(aws_stack)}
    assert len(records) == 3
    implicit = records[("5f0c6d1e2a3b4c5d6e7f809112233445", "implicit")]
    assert implicit.observed_at == "2025-11-28T08:00:00.000000Z"


def test_feedback_for_an_unknown_prediction_is_accepted(aws_stack, fresh_settings):
    status, body = call(
        with_body(
            load_event("feedback_single.json"),
            {"prediction_id": "never-seen", "label": 0, "source": "implicit"},
        )
    )
    assert (status, body["stored"]) == (200, 1)


def test_another_label_for_stored_feedback_is_a_conflict(aws_stack, fresh_settings):
    call(load_event("feedback_single.json"))
    changed = json.loads(load_event("feedback_single.json")["body"]) | {"label": 0}

    status, body = call(with_body(load_event("feedback_single.json"), changed))

    assert status == 409
    ErrorBody.model_validate(body)
    assert [r.label for r in stored(aws_stack)] == [1]


def test_invalid_feedback_names_every_field(aws_stack, fresh_settings):
    status, body = call(load_event("feedback_invalid.json"))

    assert status == 422
    assert {(p["row"], p["field"]) for p in body["problems"]} == {
        (0, "prediction_id"),
        (0, "label"),
        (0, "source"),
    }
    assert stored(aws_stack) == []


def test_feedback_bad_requests(aws_stack, fresh_settings, subtests):
    good = json.loads(load_event("feedback_single.json")["body"])
    cases = [
        ("malformed JSON", "{", 400, {(None, None)}),
        ("bool label", good | {"label": True}, 422, {(0, "label")}),
        ("bad timestamp", good | {"observed_at": "yesterday"}, 422, {(0, "observed_at")}),
        ("unknown field", good | {"score": 0.3}, 422, {(0, "score")}),
        ("empty batch", {"items": []}, 422, {(None, "items")}),
        ("too large batch", {"items": [good] * 1001}, 413, {(None, "items")}),
        ("second item bad", {"items": [good, {"label": 1}]}, 422, {(1, "prediction_id"), (1, "source")}),
        (
            "lone surrogate id",
            json.dumps(good).replace(good["prediction_id"], "\\ud800"),
            400,
            {(None, "prediction_id")},
        ),
        ("duplicate label", json.dumps(good)[:-1] + ', "label": 0}', 400, {(None, "label")}),
        ("nested 100,000 deep", "[" * 100_000 + "]" * 100_000, 400, {(None, None)}),
        (
            "after year 9999 in UTC",
            good | {"observed_at": "9999-12-31T23:59:59-01:00"},
            422,
            {(0, "observed_at")},
        ),
        (
            "before year 1 in UTC",
            good | {"observed_at": "0001-01-01T00:00:00+01:00"},
            422,
            {(0, "observed_at")},
        ),
    ]
    for name, body, expected_status, problems in cases:
        with subtests.test(name):
            status, answer = call(with_body(load_event("feedback_single.json"), body))
            assert status == expected_status
            ErrorBody.model_validate(answer)
            assert {(p["row"], p["field"]) for p in answer["problems"]} == problems
    assert stored(aws_stack) == []
    wrong_type = load_event("feedback_single.json")
    wrong_type["headers"]["content-type"] = "application/x-www-form-urlencoded"
    assert call(wrong_type)[0] == 415


def test_many_requests_make_one_object_and_nothing_is_written_before_the_log_writer(
    aws_stack, fresh_settings
):
    ids = [f"pred-{i:03d}" for i in range(40)]
    for pid in ids:
        status, _ = call(
            with_body(
                load_event("feedback_single.json"), {"prediction_id": pid, "label": 1, "source": "implicit"}
            )
        )
        assert status == 200
    assert _feedback_keys(aws_stack) == []

    records = stored(aws_stack)

    assert sorted(r.prediction_id for r in records) == ids
    assert len(_feedback_keys(aws_stack)) == 1


def test_a_feedback_message_delivered_twice_is_read_once(aws_stack, fresh_settings):
    call(load_event("feedback_batch.json"))
    messages = drain_queue(aws_stack)
    # SQS is at-least-once: the log writer can get a message again in a later batch.
    from mlops.handlers import log_writer as log_writer_handler

    from tests.integration.serving_helpers import sqs_event_from

    for _ in range(2):
        assert log_writer_handler.handler(sqs_event_from(messages), CONTEXT) == {"batchItemFailures": []}

    assert len(_feedback_keys(aws_stack)) == 2
    records = stored(aws_stack)
    assert sorted((r.prediction_id, r.source) for r in records) == sorted(
        (i["prediction_id"], i["source"])
        for i in json.loads(load_event("feedback_batch.json")["body"])["items"]
    )


def test_feedback_the_queue_refuses_is_not_kept_and_a_retry_stores_it(aws_stack, fresh_settings, monkeypatch):
    url = aws_stack.env[PREDICTION_QUEUE.env_var]
    monkeypatch.setenv(PREDICTION_QUEUE.env_var, url + "-missing")
    feedback_handler.settings.cache_clear()

    status, body = call(load_event("feedback_batch.json"))

    assert status == 503
    ErrorBody.model_validate(body)
    assert "could not be queued" in body["error"]
    monkeypatch.setenv(PREDICTION_QUEUE.env_var, url)
    feedback_handler.settings.cache_clear()
    status, body = call(load_event("feedback_batch.json"))
    assert (status, body["duplicates"]) == (200, 0)
    assert body["stored"] == len(stored(aws_stack)) > 0
