"""Turn a batch of queue messages into prediction log objects in S3.

One gzip JSON Lines object per (model version, hour) group of a batch. Its key is derived
from the prediction ids it holds (`mlops.cloud.logstore.prediction_key`), so a retried batch, or
a message the predict function sent twice, writes the same key again. A message that SQS
delivers twice within one batch, or a prediction that two messages carry, is written once.

An object written `LATE_AFTER` or more after its hour ended (a retried or redriven message) is
announced first by an empty marker object (`mlops.cloud.logstore.late_marker_key`): the monitor no
longer lists an hour once it settled, and reads the markers instead.

Redelivery with other batch companions still lands a prediction in a second object: SQS
is at-least-once, and object keys cannot know the other batches. Readers therefore count
a prediction id once per hour partition (`mlops.cloud.logstore.FirstSeen`).

The feedback messages of a batch become one feedback object, named by the time it is written
(`mlops.cloud.logstore.feedback_key`), so the monitor's reading by arrival time finds it. The
feedback index stores each (source, prediction) pair once, so two records of one pair in the log
are copies of one message; the object holds the first, and readers keep one of copies that
redelivery put into two objects (`mlops.cloud.logstore.iter_feedback`, the monitor's label state).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mlops.cloud.logstore import (
    AnyPredictionRecord,
    FeedbackRecord,
    feedback_key,
    is_late,
    late_marker_key,
    prediction_key,
    write_feedback,
    write_predictions,
)
from mlops.cloud.storage import parse_time, put_bytes, utcnow
from mlops.shared.errors import MlopsError


@dataclass
class LogObject:
    key: str
    version: int
    hour: datetime
    records: list[AnyPredictionRecord] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)


def plan_log_objects(messages: Sequence[tuple[str, Sequence[AnyPredictionRecord]]]) -> list[LogObject]:
    """Group the records of (message id, records) pairs by version and hour, in arrival order.

    Each prediction id is kept once (the first time it appears); a message id seen again
    adds nothing.
    """
    groups: dict[tuple[int, str], tuple[datetime, list[AnyPredictionRecord], list[str]]] = {}
    seen_messages: set[str] = set()
    seen_predictions: set[str] = set()
    for message_id, records in messages:
        if message_id in seen_messages:
            continue
        seen_messages.add(message_id)
        for record in records:
            if record.prediction_id in seen_predictions:
                continue
            seen_predictions.add(record.prediction_id)
            ts = parse_time(record.timestamp)
            group_id = (record.model_version, f"{ts:%Y-%m-%dT%H}")
            if group_id not in groups:
                groups[group_id] = (ts, [], [])
            _, held, ids = groups[group_id]
            held.append(record)
            if not ids or ids[-1] != message_id:
                ids.append(message_id)
    return [
        LogObject(
            key=prediction_key(version, ts, [r.prediction_id for r in held]),
            version=version,
            hour=ts.replace(minute=0, second=0, microsecond=0),
            records=held,
            message_ids=ids,
        )
        for (version, _), (ts, held, ids) in groups.items()
    ]


def write_log_object(s3: object, bucket: str, obj: LogObject, now: datetime | None = None) -> None:
    """Write one object, after its marker if it is late at `now` (default: the clock); raises
    `MlopsError` when a write fails (an object is never left late without its marker)."""
    stamp = now or utcnow()
    if is_late(obj.hour, stamp):
        put_bytes(s3, bucket, late_marker_key(stamp, obj.version, obj.hour), b"")
    write_predictions(s3, bucket, obj.key, obj.records)


def write_log_objects(
    s3: object, bucket: str, objects: Sequence[LogObject], now: datetime | None = None
) -> tuple[list[str], list[str]]:
    """Write each object; return (keys written, ids of messages whose object could not be written)."""
    written: list[str] = []
    failed: list[str] = []
    for obj in objects:
        try:
            write_log_object(s3, bucket, obj, now)
        except MlopsError:
            failed.extend(obj.message_ids)
            continue
        written.append(obj.key)
    return written, failed


@dataclass
class FeedbackObject:
    records: list[FeedbackRecord]
    message_ids: list[str]

    def key(self, now: datetime) -> str:
        return feedback_key(now, [r.key for r in self.records])


def plan_feedback_object(messages: Sequence[tuple[str, Sequence[FeedbackRecord]]]) -> FeedbackObject | None:
    """The feedback of a batch's (message id, records) pairs as one object, each (source, prediction)
    pair once; None when the batch holds no feedback."""
    held: dict[str, FeedbackRecord] = {}
    ids: dict[str, None] = {}  # in arrival order; a message id seen again adds nothing
    for message_id, records in messages:
        if message_id in ids:
            continue
        ids[message_id] = None
        for record in records:
            held.setdefault(record.key, record)
    return FeedbackObject(list(held.values()), list(ids)) if held else None


def write_feedback_object(
    s3: object, bucket: str, obj: FeedbackObject, now: datetime | None = None
) -> tuple[list[str], list[str]]:
    """Write the object, keyed by the time of writing (default: the clock); returns (keys written,
    ids of messages that could not be written), as `write_log_objects` does."""
    key = obj.key(now or utcnow())
    try:
        write_feedback(s3, bucket, key, obj.records)
    except MlopsError:
        return [], list(obj.message_ids)
    return [key], []
