"""The prediction log queue: how records are packed into SQS messages, sent, and read back.

A message body is ``{"v": 1, "records": [<PredictionRecord as JSON>, ...]}``; one message
carries many rows. Bodies stay under the SQS limit of 256 KiB per message and per
SendMessageBatch call (at most 10 entries); entries SQS rejects are sent again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from mlops.errors import StorageError
from mlops.logstore import PredictionRecord
from mlops.storage import aws_call

MESSAGE_FORMAT = 1
SQS_MAX_BYTES = 256 * 1024
# Headroom under the hard limit for the request envelope SQS counts against it.
MAX_BODY_BYTES = SQS_MAX_BYTES - 2048
MAX_BATCH_ENTRIES = 10
SEND_ATTEMPTS = 3


class MalformedMessage(ValueError):
    """A queue message that is not a prediction-log message; it must reach the DLQ, not vanish."""


def _body(records: Sequence[dict[str, Any]]) -> str:
    # ensure_ascii (the default) makes the length in characters the length in bytes.
    return json.dumps({"v": MESSAGE_FORMAT, "records": records}, separators=(",", ":"), allow_nan=False)


def message_bodies(records: Sequence[dict[str, Any]], max_bytes: int = MAX_BODY_BYTES) -> list[str]:
    """Pack records into as few bodies of at most `max_bytes` as a split-in-proportion finds.

    Encodes the whole list once; only when it is too big is it cut into the number of
    pieces its size asks for, and each piece checked again (so the common case costs
    one `json.dumps`, not one per record).
    """
    if not records:
        return []
    body = _body(records)
    if len(body) <= max_bytes:
        return [body]
    if len(records) == 1:
        raise ValueError(f"one prediction record encodes to {len(body)} bytes, over the {max_bytes} limit")
    pieces = min(len(records), -(-len(body) // max_bytes) + 1)
    step = -(-len(records) // pieces)
    out: list[str] = []
    for start in range(0, len(records), step):
        out.extend(message_bodies(records[start : start + step], max_bytes))
    return out


def send_batches(bodies: Sequence[str]) -> list[list[str]]:
    """Group bodies into SendMessageBatch calls: at most 10 entries and 256 KiB in total each."""
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for body in bodies:
        if current and (len(current) == MAX_BATCH_ENTRIES or size + len(body) > MAX_BODY_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(body)
        size += len(body)
    if current:
        batches.append(current)
    return batches


def send_records(
    sqs: Any,
    queue_url: str,
    records: Sequence[dict[str, Any]],
    attempts: int = SEND_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send records to the log queue; entries SQS fails are retried with a short backoff.

    Raises StorageError naming how many messages could not be sent after every attempt.
    """
    undelivered: list[str] = []
    for batch in send_batches(message_bodies(records)):
        pending = dict(enumerate(batch))
        for attempt in range(attempts):
            if attempt:
                sleep(0.05 * 2 ** (attempt - 1))
            entries = [{"Id": str(i), "MessageBody": body} for i, body in pending.items()]
            with aws_call(f"send {len(entries)} prediction log message(s) to {queue_url}"):
                out = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            failed = out.get("Failed") or []
            # A sender fault (bad entry) will fail the same way again: only retry the others.
            retry = {int(f["Id"]) for f in failed if not f.get("SenderFault")}
            undelivered.extend(pending[int(f["Id"])] for f in failed if f.get("SenderFault"))
            pending = {i: pending[i] for i in retry}
            if not pending:
                break
        undelivered.extend(pending.values())
    if undelivered:
        raise StorageError(f"{len(undelivered)} prediction log message(s) could not be sent to {queue_url}")


def parse_message(body: str) -> list[PredictionRecord]:
    """The records of one queue message; MalformedMessage says what is wrong with it."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError) as err:
        raise MalformedMessage(f"not JSON: {err}") from None
    if (
        not isinstance(data, dict)
        or data.get("v") != MESSAGE_FORMAT
        or not isinstance(data.get("records"), list)
    ):
        raise MalformedMessage(f"not a prediction log message (format {MESSAGE_FORMAT} with 'records')")
    if not data["records"]:
        raise MalformedMessage("a prediction log message with no records")
    try:
        return [PredictionRecord.model_validate(r, strict=False) for r in data["records"]]
    except ValidationError as err:
        raise MalformedMessage(f"invalid prediction record: {err.errors()[0]['msg']}") from None
