"""SQS redelivers: each prediction and each label still counts once for the monitor, retraining and Athena."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from mlops.cloud.logstore import FeedbackRecord, feedback_key, unique_predictions_sql, write_feedback
from mlops.cloud.storage import iso, read_jsonl_gz
from mlops.handlers import feedback as feedback_handler
from mlops.handlers import log_writer as log_writer_handler
from mlops.handlers import monitor
from mlops.handlers import predict as predict_handler
from mlops.model.spec import ModelSpec
from mlops.retraining.data import labelled_production_rows
from mlops.shared import clock
from mlops.shared.resources import LOG_BUCKET, REPORT_BUCKET

from tests.integration.serving_helpers import (
    CONTEXT,
    drain_queue,
    load_event,
    response_json,
    sqs_event_from,
    with_body,
)

SERVED_AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
MONITORED_AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
GOOD_ROW: dict[str, Any] = json.loads(load_event("predict_single.json")["body"])["features"]


@pytest.fixture
def served_at() -> Iterator[None]:
    clock.use(lambda: SERVED_AT)
    yield
    clock.use(None)


def serve(requests: int, rows: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Answer `requests` predict calls of `rows` rows each; the ids answered, in order, and the rows sent."""
    ids, sent = [], []
    for r in range(requests):
        instances = [dict(GOOD_ROW, tenure_months=r, support_calls=i) for i in range(rows)]
        response = predict_handler.handler(
            with_body(load_event("predict_batch.json"), {"instances": instances}), CONTEXT
        )
        assert response["statusCode"] == 200
        ids.extend(p["prediction_id"] for p in response_json(response)["predictions"])
        sent.extend(instances)
    return ids, sent


def raw_rows(stack: Any) -> list[tuple[str, dict[str, Any]]]:
    """(object key, row) for every row stored under predictions/, copies included."""
    bucket = stack.env[LOG_BUCKET.env_var]
    listing = stack.s3.list_objects_v2(Bucket=bucket, Prefix="predictions/").get("Contents", [])
    return [
        (o["Key"], row)
        for o in listing
        for row in read_jsonl_gz(stack.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
    ]


def redeliver(messages: list[dict[str, Any]]) -> None:
    """Deliver as an SQS standard queue may: overlapping batches, a batch retried, a copy within a batch."""
    batches = [
        messages[0:20],  # written, then the function timed out: SQS delivers all 20 again
        [*messages[10:35], messages[12]],  # again, with other companions and one twice in the batch
        messages[30:50],
        messages[30:50],  # the same batch retried as is
        [messages[5], *messages[40:45]],
    ]
    # And a message the predict function sent twice (its first send timed out after SQS took it).
    resent = {**messages[7], "MessageId": "resent-after-a-timeout"}
    batches.append([resent, messages[8]])
    for batch in batches:
        answer = log_writer_handler.handler(sqs_event_from(batch), CONTEXT)
        assert answer == {"batchItemFailures": []}


def test_redelivered_predictions_count_once_for_monitor_retraining_and_sql(
    champion, predict_runtime, aws_stack, fresh_settings, served_at, trained
):
    # Given 150 predictions answered in 50 requests, on the queue as 50 messages
    ids, _ = serve(requests=50, rows=3)
    messages = drain_queue(aws_stack)
    assert (len(set(ids)), len(messages)) == (150, 50)
    # and ground truth for each of them
    labels = np.arange(150) % 2
    feedback = [
        FeedbackRecord(
            prediction_id=pid,
            label=int(y),
            source="explicit",
            observed_at=iso(SERVED_AT),
            received_at=iso(SERVED_AT),
        )
        for pid, y in zip(ids, labels, strict=True)
    ]
    write_feedback(aws_stack.s3, aws_stack.env[LOG_BUCKET.env_var], feedback_key(SERVED_AT, ids), feedback)

    # When SQS delivers the messages more than once, in different batches
    redeliver(messages)

    # Then storage holds copies (the fault really happened), all in the predictions' own partition
    stored = raw_rows(aws_stack)
    assert len(stored) > 150
    assert {row["prediction_id"] for _, row in stored} == set(ids)
    assert {key.rsplit("/", 1)[0] for key, _ in stored} == {
        "predictions/model_version=1/dt=2026-11-20/hour=09"
    }
    # and the monitor counts each prediction and each label once
    monitor.settings.cache_clear()
    event = {**load_event("monitor_schedule.json"), "time": "2026-11-20T12:00:00Z"}
    summary = monitor.handler(event, CONTEXT)
    (version,) = summary["versions"]
    assert (version["prediction_count"], version["label_count"]) == (150, 150)
    # and retraining reads 150 labelled rows, one per prediction
    frame = labelled_production_rows(
        aws_stack.s3,
        aws_stack.env[LOG_BUCKET.env_var],
        trained.spec,
        SERVED_AT - timedelta(hours=1),
        MONITORED_AT,
    )
    assert len(frame) == 150
    # and the SQL the Athena view runs returns each prediction once
    assert sorted(unique_by_sql(trained.spec, stored)) == sorted(ids)


def unique_by_sql(spec: ModelSpec, stored: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Run `unique_predictions_sql` on SQLite over the stored rows, with Athena's "$path" and partitions."""
    db = sqlite3.connect(":memory:")
    db.execute(
        'CREATE TABLE predictions (prediction_id, request_id, "timestamp", received_at, model_name, features,'
        ' probability, label, unseen_categories, model_version, dt, hour, "$path")'
    )
    for key, row in stored:
        parts = dict(p.split("=", 1) for p in key.split("/")[1:-1])
        db.execute(
            "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["prediction_id"],
                row["request_id"],
                row["timestamp"],
                row.get("received_at"),
                row["model_name"],
                json.dumps(row["features"]),
                row["probability"],
                row["label"],
                json.dumps(row["unseen_categories"]),
                parts["model_version"],
                parts["dt"],
                int(parts["hour"]),
                f"s3://bucket/{key}",
            ),
        )
    return [r[0] for r in db.execute(unique_predictions_sql(spec, "predictions"))]


def test_first_copy_in_key_order_wins_and_memory_is_one_partition(aws_stack):
    # Given copies of one prediction in two objects of an hour, and the same id in the next hour
    from mlops.cloud.logstore import FirstSeen

    first = FirstSeen()
    hour = "predictions/model_version=1/dt=2026-11-20/hour=09/"
    # Then the first object keeps it, the second drops only the copy (and a copy within an object)
    assert first.keep(hour + "a.jsonl.gz", ["p1", "p2"]) is None
    assert first.keep(hour + "b.jsonl.gz", ["p3", "p1", "p3"]) == [True, False, False]
    # and a new partition starts afresh
    assert first.keep("predictions/model_version=1/dt=2026-11-20/hour=10/c.jsonl.gz", ["p1"]) is None


def run_monitor_at(stack: Any, at: datetime) -> dict[str, Any]:
    """The scheduled run at `at`, and the report of its one version."""
    monitor.settings.cache_clear()
    clock.use(lambda: at)
    event = {**load_event("monitor_schedule.json"), "time": iso(at)}
    (version,) = monitor.handler(event, CONTEXT)["versions"]
    body = stack.s3.get_object(Bucket=stack.env[REPORT_BUCKET.env_var], Key=version["report_key"])["Body"]
    return dict(json.loads(body.read()))


def test_a_feedback_message_redelivered_after_a_run_counts_once_in_the_next(
    champion, predict_runtime, aws_stack, fresh_settings, served_at
):
    # Given 30 predictions logged at 09:30
    ids, _ = serve(requests=10, rows=3)
    assert log_writer_handler.handler(sqs_event_from(drain_queue(aws_stack)), CONTEXT) == {
        "batchItemFailures": []
    }
    # and, at 09:40, one request of feedback for them and for 5 predictions never logged
    clock.use(lambda: SERVED_AT + timedelta(minutes=10))
    items = [{"prediction_id": pid, "label": i % 2, "source": "explicit"} for i, pid in enumerate(ids)]
    items += [{"prediction_id": f"never-logged-{i}", "label": 1, "source": "implicit"} for i in range(5)]
    response = feedback_handler.handler(
        with_body(load_event("feedback_batch.json"), {"items": items}), CONTEXT
    )
    assert response_json(response)["stored"] == 35
    (message,) = drain_queue(aws_stack)
    assert log_writer_handler.handler(sqs_event_from([message]), CONTEXT) == {"batchItemFailures": []}
    first = run_monitor_at(aws_stack, datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    assert first["labels"]["label_count"] == 30
    assert (first["labels"]["feedback_received"], first["labels"]["unmatched_feedback"]) == (35, 5)

    # When SQS delivers the feedback message again after that run (the writer timed out after writing)
    clock.use(lambda: datetime(2026, 11, 20, 10, 30, tzinfo=UTC))
    assert log_writer_handler.handler(sqs_event_from([message]), CONTEXT) == {"batchItemFailures": []}
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    assert len(aws_stack.s3.list_objects_v2(Bucket=bucket, Prefix="feedback/")["Contents"]) == 2

    # Then the next run reads the copy and counts every label and feedback record once
    second = run_monitor_at(aws_stack, datetime(2026, 11, 20, 11, 0, tzinfo=UTC))
    assert second["labels"]["label_count"] == 30
    assert (second["labels"]["feedback_received"], second["labels"]["unmatched_feedback"]) == (35, 5)
    assert second["performance"]["value"] == first["performance"]["value"]
