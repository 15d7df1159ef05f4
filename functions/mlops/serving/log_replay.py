"""Put prediction records the predict function kept in its log back into the prediction log.

When the log queue does not take a request's records in time, the predict function logs
them as pieces (`mlops.serving.log_queue.fallback_pieces`). Replay reads those pieces from
the function's CloudWatch Logs group (or from saved log lines) and writes each as one log
object keyed by its prediction ids (`mlops.serving.log_writer.write_log_object`, so a late
one is marked for the monitor): replaying twice writes the same keys, and a record that
also reached the queue is counted once by every reader (`mlops.cloud.logstore.FirstSeen`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops.cloud.storage import aws_call
from mlops.serving.log_queue import FALLBACK_FIELD, MalformedMessage, parse_message, pieces_in_log_event
from mlops.serving.log_writer import plan_log_objects, write_log_object


@dataclass
class ReplayResult:
    events: int = 0
    pieces: int = 0
    records: int = 0
    objects: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "log_events_read": self.events,
            "pieces": self.pieces,
            "records": self.records,
            "objects_written": self.objects,
            "malformed_pieces": self.malformed,
        }


def log_group_events(logs: Any, group: str, start: datetime, end: datetime) -> Iterator[str]:
    """Messages of the group's events in [start, end) that mention a fallback piece."""
    with aws_call(f"read log group {group}"):
        paginator = logs.get_paginator("filter_log_events")
        for page in paginator.paginate(
            logGroupName=group,
            startTime=int(start.timestamp() * 1000),
            endTime=int(end.timestamp() * 1000),
            filterPattern=f'"{FALLBACK_FIELD}"',
        ):
            for event in page.get("events", []):
                yield str(event.get("message", ""))


def replay(s3: Any, log_bucket: str, events: Iterable[str]) -> ReplayResult:
    """Write the records of every piece in `events` into the prediction log, one object per piece."""
    result = ReplayResult()
    for event in events:
        result.events += 1
        for body in pieces_in_log_event(event):
            result.pieces += 1
            try:
                records = parse_message(body)
            except MalformedMessage as err:
                result.malformed.append(str(err))
                continue
            (obj,) = plan_log_objects([("piece", records)])
            # A failed write raises: what came before is written, the pieces stay in the log,
            # and running replay again writes the same keys. A replayed hour is usually late:
            # its marker tells the monitor to read the hour again.
            write_log_object(s3, log_bucket, obj)
            result.records += len(obj.records)
            result.objects.append(obj.key)
    return result
