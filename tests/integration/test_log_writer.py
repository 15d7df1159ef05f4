"""Log-writer function on moto: one object per (version, hour), a batch's feedback as one object,
partial batch failures reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError
from mlops.cloud import aws
from mlops.cloud.logstore import FEEDBACK_PREFIX, LATE_PREFIX, FeedbackRecord, late_hours_since
from mlops.cloud.storage import iso, list_keys, read_jsonl_gz
from mlops.handlers import log_writer as log_writer_handler
from mlops.serving.log_queue import feedback_bodies
from mlops.shared.resources import LOG_BUCKET

from tests.integration.serving_helpers import CONTEXT, load_event


def _objects(aws_stack) -> dict[str, list[dict]]:
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    listing = aws_stack.s3.list_objects_v2(Bucket=bucket, Prefix="predictions/").get("Contents", [])
    return {
        o["Key"]: read_jsonl_gz(aws_stack.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
        for o in listing
    }


def test_a_batch_is_written_as_one_object_per_version_and_hour(aws_stack, fresh_settings):
    event = load_event("log_writer_batch.json")

    answer = log_writer_handler.handler(event, CONTEXT)

    assert answer == {"batchItemFailures": []}
    objects = _objects(aws_stack)
    prefixes = sorted(key.rsplit("/", 1)[0] for key in objects)
    assert prefixes == [
        "predictions/model_version=1/dt=2025-11-27/hour=10",
        "predictions/model_version=1/dt=2025-11-27/hour=11",
    ]
    sent = {pid for record in event["Records"] for pid in json.loads(record["body"])["prediction_id"]}
    written = [r for records in objects.values() for r in records]
    assert sorted(r["prediction_id"] for r in written) == sorted(sent)
    by_id = {r["prediction_id"]: r for r in written}
    assert by_id["5f0c6d1e2a3b4c5d6e7f809112233446"]["unseen_categories"] == ["device"]
    assert by_id["5f0c6d1e2a3b4c5d6e7f809112233446"]["features"]["total_charges"] is None


def test_a_malformed_message_is_reported_failed_and_the_rest_is_written(aws_stack, fresh_settings):
    event = load_event("log_writer_malformed.json")
    good, bad = event["Records"]

    answer = log_writer_handler.handler(event, CONTEXT)

    assert answer == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    written = [r["prediction_id"] for records in _objects(aws_stack).values() for r in records]
    assert written == json.loads(good["body"])["prediction_id"]


def test_a_batch_of_only_malformed_messages_fails_every_item_and_writes_nothing(aws_stack, fresh_settings):
    event = load_event("log_writer_malformed.json")
    event["Records"] = [event["Records"][1], {**event["Records"][1], "messageId": "m-2", "body": "not json"}]

    answer = log_writer_handler.handler(event, CONTEXT)

    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == sorted(
        r["messageId"] for r in event["Records"]
    )
    assert _objects(aws_stack) == {}


def test_messages_whose_object_cannot_be_written_are_reported_failed(aws_stack, fresh_settings, monkeypatch):
    aws_stack.s3.delete_bucket(Bucket=aws_stack.env[LOG_BUCKET.env_var])
    event = load_event("log_writer_batch.json")

    answer = log_writer_handler.handler(event, CONTEXT)

    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == sorted(
        r["messageId"] for r in event["Records"]
    )


def _column_wise(body: str) -> str:
    """A format-1 message (features as row objects) rewritten as format 2 (one list per feature)."""
    message = json.loads(body)
    rows = message["features"]
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    return json.dumps({**message, "v": 2, "features": columns})


def test_column_wise_messages_store_the_same_rows_as_row_wise_ones(aws_stack, fresh_settings):
    # Given the sample batch as queued by earlier releases (row-wise), written once
    row_wise = load_event("log_writer_batch.json")
    assert all(json.loads(r["body"])["v"] == 1 for r in row_wise["Records"])
    assert log_writer_handler.handler(row_wise, CONTEXT) == {"batchItemFailures": []}
    stored_from_rows = _objects(aws_stack)
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    for key in stored_from_rows:
        aws_stack.s3.delete_object(Bucket=bucket, Key=key)
    # When the same predictions arrive column-wise, as the predict function now sends them
    column_wise = load_event("log_writer_batch.json")
    for record in column_wise["Records"]:
        record["body"] = _column_wise(record["body"])

    answer = log_writer_handler.handler(column_wise, CONTEXT)

    # Then the same objects hold the same rows, feature values included
    assert answer == {"batchItemFailures": []}
    stored_from_columns = _objects(aws_stack)
    assert stored_from_columns == stored_from_rows
    assert sum(len(rows) for rows in stored_from_columns.values()) == sum(
        len(json.loads(r["body"])["prediction_id"]) for r in row_wise["Records"]
    )


def _late_markers(aws_stack) -> list[str]:
    return list(list_keys(aws_stack.s3, aws_stack.env[LOG_BUCKET.env_var], LATE_PREFIX))


def test_a_batch_of_hours_long_past_is_marked_late_before_it_is_written(aws_stack, fresh_settings):
    # The sample batch's predictions are of two hours that ended long before this write.
    answer = log_writer_handler.handler(load_event("log_writer_batch.json"), CONTEXT)

    assert answer == {"batchItemFailures": []}
    assert len(_late_markers(aws_stack)) == 2
    # A key no writer made (an operator's note) is passed over by the monitor's reading of the markers.
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    aws_stack.s3.put_object(Bucket=bucket, Key=f"{LATE_PREFIX}zz/README.txt", Body=b"")
    since = datetime.now(UTC) - timedelta(minutes=5)
    marked = late_hours_since(aws_stack.s3, bucket, since)
    assert marked == {
        (1, datetime(2025, 11, 27, 10, tzinfo=UTC)),
        (1, datetime(2025, 11, 27, 11, tzinfo=UTC)),
    }


def test_a_batch_in_time_leaves_no_marker(aws_stack, fresh_settings):
    event = load_event("log_writer_batch.json")
    for record in event["Records"]:
        body = json.loads(record["body"])
        body["timestamp"] = iso(datetime.now(UTC))
        record["body"] = json.dumps(body)

    assert log_writer_handler.handler(event, CONTEXT) == {"batchItemFailures": []}
    assert _objects(aws_stack) and _late_markers(aws_stack) == []


def test_a_late_object_whose_marker_cannot_be_written_is_not_written_and_its_messages_fail(
    aws_stack, fresh_settings
):
    # S3 refuses the markers' prefix (as a role without the grant would be refused).
    def refuse_markers(params, **_):
        if params["Key"].startswith(LATE_PREFIX):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "PutObject")

    s3 = aws.client("s3")
    s3.meta.events.register("before-parameter-build.s3.PutObject", refuse_markers)
    try:
        event = load_event("log_writer_batch.json")
        answer = log_writer_handler.handler(event, CONTEXT)
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.PutObject", refuse_markers)

    # Every message is retried, and no object exists that a monitor would not be told of.
    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == sorted(
        r["messageId"] for r in event["Records"]
    )
    assert _objects(aws_stack) == {}


def test_feedback_in_a_batch_of_predictions_is_one_object_and_a_malformed_one_fails_alone(
    aws_stack, fresh_settings
):
    # Given the sample batch of predictions, two feedback messages and a feedback message that is not
    event = load_event("log_writer_batch.json")
    template = event["Records"][0]
    records = [
        FeedbackRecord(
            prediction_id=f"p-{i}",
            label=i % 2,
            source="explicit",
            observed_at="2025-11-27T10:30:00.000000Z",
            received_at="2025-11-27T10:30:00.000000Z",
        )
        for i in range(6)
    ]
    bodies = [body for body, _ in feedback_bodies(records, max_bytes=500)]
    assert len(bodies) >= 2
    bad = '{"feedback": 1, "records": [{"prediction_id": "p-9"}]}'
    extra = [{**template, "messageId": f"fb-{i}", "body": b} for i, b in enumerate([*bodies, bad])]
    event["Records"] = [*event["Records"], *extra]

    # When the log writer takes the batch
    answer = log_writer_handler.handler(event, CONTEXT)

    # Then the bad message fails alone, the predictions are written as before and the feedback as one object
    assert answer == {"batchItemFailures": [{"itemIdentifier": f"fb-{len(bodies)}"}]}
    assert len(_objects(aws_stack)) == 2
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    (key,) = list_keys(aws_stack.s3, bucket, FEEDBACK_PREFIX)
    stored = read_jsonl_gz(aws_stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert [FeedbackRecord.model_validate(r) for r in stored] == records
