"""Log-writer Lambda: SQS batches of prediction records -> gzip JSON Lines objects in S3.

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
from mlops.cloud.logstore import AnyPredictionRecord
from mlops.serving.log_queue import parse_message
from mlops.serving.log_writer import plan_log_objects, write_log_objects
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

    def record_handler(record: SQSRecord) -> None:
        parsed.append((record.message_id, parse_message(record.body)))

    with processor(records=event["Records"], handler=record_handler, lambda_context=context):
        processor.process()
    objects = plan_log_objects(parsed)
    written, failed = write_log_objects(aws.client("s3"), config.log_bucket, objects)
    failures = list(processor.response()["batchItemFailures"])
    failures.extend({"itemIdentifier": message_id} for message_id in failed)
    logger.info(
        "prediction logs written",
        extra={
            "objects": written,
            "records": sum(len(r) for _, r in parsed),
            "failed_messages": len(failures),
        },
    )
    return {"batchItemFailures": failures}
