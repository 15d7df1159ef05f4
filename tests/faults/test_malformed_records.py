"""Records and events that do not parse fail alone: the rest of a batch is written, nothing else runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mlops.handlers import log_writer as log_writer_handler
from mlops.handlers import monitor

from tests.faults.test_redelivery import raw_rows
from tests.integration.serving_helpers import CONTEXT, load_event


def _with_body_changes(record: dict[str, Any], message_id: str, **changes: Any) -> dict[str, Any]:
    body = {**json.loads(record["body"]), **changes}
    return {**record, "messageId": message_id, "body": json.dumps(body)}


@pytest.mark.parametrize(
    "changes",
    [
        {"timestamp": "27/11/2025 10:15"},
        {"timestamp": "9999-12-31T23:59:59-01:00"},
        {"timestamp": "0001-01-01T00:00:00+01:00"},
        {"model_version": "one"},
        {"label": [1, 7]},
    ],
    ids=[
        "unparsable-time",
        "time-past-year-9999",
        "time-before-year-1",
        "version-not-a-number",
        "label-not-0-1",
    ],
)
def test_a_record_that_does_not_parse_fails_alone_and_the_rest_is_written(aws_stack, fresh_settings, changes):
    # Given a batch of two good messages and one whose field does not parse
    good = load_event("log_writer_malformed.json")["Records"][0]
    other = _with_body_changes(good, "good-2", prediction_id=["p-a", "p-b"], request_id="r2")
    bad = _with_body_changes(good, "bad-1", prediction_id=["p-x", "p-y"], **changes)
    # When the log writer gets it
    answer = log_writer_handler.handler({"Records": [good, bad, other]}, CONTEXT)
    # Then only that message is reported failed (SQS retries it, then moves it to the DLQ)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    # and the good ones are written, each prediction once
    written = sorted(row["prediction_id"] for _, row in raw_rows(aws_stack))
    assert written == sorted([*json.loads(good["body"])["prediction_id"], "p-a", "p-b"])


def test_a_message_twice_in_a_batch_and_a_resent_message_are_stored_once(aws_stack, fresh_settings):
    # Given a batch holding a message twice and a copy of it sent under another message id
    good = load_event("log_writer_malformed.json")["Records"][0]
    resent = {**good, "messageId": "resent"}
    # When the log writer gets it, and later the resent copy alone
    assert log_writer_handler.handler({"Records": [good, good, resent]}, CONTEXT) == {"batchItemFailures": []}
    assert log_writer_handler.handler({"Records": [resent]}, CONTEXT) == {"batchItemFailures": []}
    # Then storage holds each prediction once, in one object (keys follow the predictions, not the messages)
    stored = raw_rows(aws_stack)
    assert sorted(row["prediction_id"] for _, row in stored) == sorted(
        json.loads(good["body"])["prediction_id"]
    )
    assert len({key for key, _ in stored}) == 1


def _schedule(**changes: Any) -> dict[str, Any]:
    return {**load_event("monitor_schedule.json"), **changes}


def _sns_message() -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "Sns": {"Type": "Notification", "Message": "hello", "TopicArn": "arn:aws:sns:us-east-1:1:t"},
            }
        ]
    }


def _ec2_state_change() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "time": "2026-11-20T12:00:00Z",
        "detail": {"instance-id": "i-0123456789abcdef0", "state": "running"},
    }


REFUSED = {
    "ec2-state-change": (_ec2_state_change(), "not a monitor schedule or request"),
    "sns-message": (_sns_message(), "not a monitor schedule or request"),
    "not-an-object": ([1, 2], "not a monitor schedule or request"),
    "negative-window": (_schedule(detail={"window_hours": -24}), "window_hours"),
    "zero-window": (_schedule(detail={"window_hours": 0}), "window_hours"),
    "window-as-text": (_schedule(detail={"window_hours": "24h"}), "window_hours"),
    "window-of-centuries": (_schedule(detail={"window_hours": 1e12}), "window_hours"),
    "version-not-a-number": (_schedule(detail={"versions": ["latest"]}), "versions"),
    "version-zero": (_schedule(detail={"versions": [0]}), "versions"),
    "unknown-parameter": (_schedule(detail={"window": "24h"}), "window"),
    "bad-time": (_schedule(time="noon"), "time"),
    "time-past-year-9999": (_schedule(time="9999-12-31T23:59:59-01:00"), "time"),
    "detail-not-an-object": (_schedule(detail="24h"), "detail"),
}


@pytest.mark.parametrize(("event", "named"), REFUSED.values(), ids=REFUSED.keys())
def test_the_monitor_refuses_other_events_and_bad_parameters_and_runs_nothing(
    aws_stack, champion, event, named
):
    monitor.settings.cache_clear()
    # When the monitor function receives an event that is not its schedule or a valid request
    answer = monitor.handler(event, CONTEXT)
    # Then it answers with the reason, naming the problem
    assert answer["outcome"] == "refused"
    assert named in answer["error"]
    # and nothing ran: no metric, no report
    assert aws_stack.cloudwatch.list_metrics(Namespace="ServerlessMLOps")["Metrics"] == []
    listing = aws_stack.s3.list_objects_v2(Bucket=aws_stack.env["MLOPS_REPORT_BUCKET"])
    assert listing.get("KeyCount", 0) == 0


def test_an_explicit_monitor_request_runs_its_window(aws_stack, champion):
    monitor.settings.cache_clear()
    # Given an explicit request for version 1 over the last 6 hours
    event = load_event("monitor_request.json")
    # When the monitor receives it
    answer = monitor.handler(event, CONTEXT)
    # Then it runs that window for that version
    assert (answer["window_start"], answer["window_end"]) == (
        "2026-11-20T06:00:00.000000Z",
        "2026-11-20T12:00:00.000000Z",
    )
    assert [v["version"] for v in answer["versions"]] == [1]
    assert aws_stack.cloudwatch.list_metrics(Namespace="ServerlessMLOps")["Metrics"] != []
