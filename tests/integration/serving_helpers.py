"""Helpers for calling the serving handlers in-process with the sample events of `events/`."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.cloud.storage import iso
from mlops.local.invoke import LocalLambdaContext

from tests.conftest import AwsStack

EVENTS = Path(__file__).resolve().parents[2] / "events"


# The context object the Lambda runtime passes; the local stack uses the same class.
CONTEXT = LocalLambdaContext("serverless-mlops-test")


def load_event(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EVENTS / name).read_text(encoding="utf-8")))


def scheduled(at: datetime) -> dict[str, Any]:
    """The monitor's scheduled event, for a run whose window ends at `at`."""
    event = load_event("monitor_schedule.json")
    event["time"] = iso(at)
    return event


def with_body(event: dict[str, Any], body: Any) -> dict[str, Any]:
    """The event with another JSON body (a string is sent as is)."""
    out = copy.deepcopy(event)
    out["body"] = body if isinstance(body, str) else json.dumps(body)
    out["isBase64Encoded"] = False
    return out


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def drain_queue(stack: AwsStack) -> list[dict[str, Any]]:
    """Every message on the prediction queue, as SQS delivers them to the log writer."""
    from mlops.shared.resources import PREDICTION_QUEUE

    url = stack.env[PREDICTION_QUEUE.env_var]
    messages: list[dict[str, Any]] = []
    while True:
        out = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        batch = out.get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        stack.sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def deliver_queued(stack: AwsStack) -> dict[str, Any]:
    """Deliver every queued message to the log writer in one batch, as the event source mapping does;
    returns its answer (the batch item failures)."""
    from mlops.handlers import log_writer as log_writer_handler

    messages = drain_queue(stack)
    if not messages:
        return {"batchItemFailures": []}
    answer: dict[str, Any] = log_writer_handler.handler(sqs_event_from(messages), CONTEXT)
    return answer


def sqs_event_from(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """An SQS event for the log writer carrying `messages` as received from the queue."""
    template = load_event("log_writer_batch.json")["Records"][0]
    records = []
    for m in messages:
        record = copy.deepcopy(template)
        record.update(
            messageId=m["MessageId"],
            receiptHandle=m["ReceiptHandle"],
            body=m["Body"],
            md5OfBody=m["MD5OfBody"],
        )
        records.append(record)
    return {"Records": records}
