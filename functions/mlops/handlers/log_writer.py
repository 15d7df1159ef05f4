"""Log-writer Lambda: SQS batches of prediction and feedback records -> gzip JSON Lines objects in S3.

Reports partial batch failures: a malformed message, or one whose object could not be
written, is returned as a failed item so SQS retries it and, in the end, moves it to
the DLQ. Nothing is dropped silently. Returns the ``batchItemFailures`` answer SQS expects.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from mlops.cloud import aws
from mlops.cloud.logstore import AnyPredictionRecord, FeedbackRecord
from mlops.serving.log_queue import decode_message, is_feedback, parse_feedback, prediction_records
from mlops.serving.log_writer import (
    plan_feedback_object,
    plan_log_objects,
    write_feedback_object,
    write_log_objects,
)
from mlops.shared.observability import logger
from mlops.shared.settings import LogWriterSettings

# Raising on an all-failed batch would make SQS retry it the same way; reporting every
# item as failed does that too and keeps one answer shape.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@cache
def settings() -> LogWriterSettings:
    return LogWriterSettings()  # type: ignore[call-arg]  # read from the environment


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = settings()
    parsed: list[tuple[str, list[AnyPredictionRecord]]] = []
    feedback: list[tuple[str, list[FeedbackRecord]]] = []

    def record_handler(record: SQSRecord) -> None:
        data = decode_message(record.body)
        if is_feedback(data):
            feedback.append((record.message_id, parse_feedback(data)))
        else:
            parsed.append((record.message_id, prediction_records(data)))

    with processor(records=event["Records"], handler=record_handler, lambda_context=context):
        processor.process()
    s3 = aws.client("s3")
    objects = plan_log_objects(parsed)
    written, failed = write_log_objects(s3, config.log_bucket, objects)
    labels = plan_feedback_object(feedback)
    if labels is not None:
        feedback_written, feedback_failed = write_feedback_object(s3, config.log_bucket, labels)
        written += feedback_written
        failed += feedback_failed
    failures = list(processor.response()["batchItemFailures"])
    failures.extend({"itemIdentifier": message_id} for message_id in failed)
    logger.info(
        "logs written",
        extra={
            "objects": written,
            "records": sum(len(r) for _, r in parsed),
            "feedback_records": sum(len(r) for _, r in feedback),
            "failed_messages": len(failures),
        },
    )
    return {"batchItemFailures": failures}
