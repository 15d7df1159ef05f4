"""Turn a batch of queue messages into prediction log objects in S3.

One gzip JSON Lines object per (model version, hour) group of a batch, named from the
ids of the messages it holds (`mlops.logstore.prediction_key`): a retried batch writes
the same keys again instead of adding copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import MlopsError
from mlops.logstore import PredictionRecord, prediction_key, write_predictions
from mlops.storage import parse_time


@dataclass
class LogObject:
    key: str
    records: list[PredictionRecord] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)


def plan_log_objects(messages: Sequence[tuple[str, Sequence[PredictionRecord]]]) -> list[LogObject]:
    """Group the records of (message id, records) pairs by version and hour, in arrival order."""
    groups: dict[tuple[int, str], tuple[Any, list[PredictionRecord], list[str]]] = {}
    for message_id, records in messages:
        for record in records:
            ts = parse_time(record.timestamp)
            group_id = (record.model_version, f"{ts:%Y-%m-%dT%H}")
            if group_id not in groups:
                groups[group_id] = (ts, [], [])
            _, held, ids = groups[group_id]
            held.append(record)
            if not ids or ids[-1] != message_id:
                ids.append(message_id)
    return [
        LogObject(key=prediction_key(version, ts, ids), records=held, message_ids=ids)
        for (version, _), (ts, held, ids) in groups.items()
    ]


def write_log_objects(s3: Any, bucket: str, objects: Sequence[LogObject]) -> tuple[list[str], list[str]]:
    """Write each object; return (keys written, ids of messages whose object could not be written)."""
    written: list[str] = []
    failed: list[str] = []
    for obj in objects:
        try:
            write_predictions(s3, bucket, obj.key, obj.records)
        except MlopsError:
            failed.extend(obj.message_ids)
            continue
        written.append(obj.key)
    return written, failed
