"""The prediction log queue: how predictions are packed into SQS messages, sent, and read back.

One message carries the rows of one request, column by column::

    {"v": 1, "request_id": ..., "timestamp": ..., "model_name": ..., "model_version": ...,
     "prediction_id": [...], "probability": [...], "label": [...],
     "unseen_categories": [[...], ...], "features": [{...}, ...]}

Request-level fields are written once, not per row, which makes messages smaller (SQS
bills per 64 KiB) and cheaper to encode on the predict path. A large request is cut into
several messages. Bodies stay under the SQS limit of 256 KiB per message and per
SendMessageBatch call (at most 10 entries); entries SQS rejects are sent again.
`parse_message` turns a message back into `PredictionRecord`s for the log writer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
# Rows encoded to estimate the size of a large request before cutting it into messages.
_SIZE_SAMPLE = 64
_COLUMNS = ("prediction_id", "probability", "label", "unseen_categories", "features")


class MalformedMessage(ValueError):
    """A queue message that is not a prediction-log message; it must reach the DLQ, not vanish."""


@dataclass(frozen=True)
class PredictionBatch:
    """The predictions of one request, as columns (what the predict path has at hand)."""

    request_id: str
    timestamp: str
    model_name: str
    model_version: int
    prediction_ids: Sequence[str]
    probabilities: Sequence[float]
    labels: Sequence[int]
    unseen_categories: Sequence[list[str]]
    features: Sequence[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.prediction_ids)

    def records(self) -> list[dict[str, Any]]:
        """One `PredictionRecord`-shaped dict per row (for logs and tests, not the hot path)."""
        return [
            {
                "prediction_id": pid,
                "request_id": self.request_id,
                "timestamp": self.timestamp,
                "model_name": self.model_name,
                "model_version": self.model_version,
                "features": row,
                "probability": p,
                "label": label,
                "unseen_categories": unseen,
            }
            for pid, p, label, unseen, row in zip(
                self.prediction_ids,
                self.probabilities,
                self.labels,
                self.unseen_categories,
                self.features,
                strict=True,
            )
        ]


def _body(batch: PredictionBatch, start: int, stop: int) -> str:
    # ensure_ascii (the default) makes the length in characters the length in bytes.
    return json.dumps(
        {
            "v": MESSAGE_FORMAT,
            "request_id": batch.request_id,
            "timestamp": batch.timestamp,
            "model_name": batch.model_name,
            "model_version": batch.model_version,
            "prediction_id": batch.prediction_ids[start:stop],
            "probability": batch.probabilities[start:stop],
            "label": batch.labels[start:stop],
            "unseen_categories": batch.unseen_categories[start:stop],
            "features": batch.features[start:stop],
        },
        separators=(",", ":"),
        allow_nan=False,
        # Rows parsed from JSON cannot hold a cycle; the check costs a sixth of the encoding.
        check_circular=False,
    )


def _bodies(batch: PredictionBatch, start: int, stop: int, max_bytes: int) -> list[str]:
    body = _body(batch, start, stop)
    if len(body) <= max_bytes:
        return [body]
    if stop - start == 1:
        raise ValueError(f"one prediction encodes to {len(body)} bytes, over the {max_bytes} limit")
    middle = (start + stop) // 2
    return _bodies(batch, start, middle, max_bytes) + _bodies(batch, middle, stop, max_bytes)


def message_bodies(batch: PredictionBatch, max_bytes: int = MAX_BODY_BYTES) -> list[str]:
    """Cut a request's predictions into message bodies of at most `max_bytes` each, in row order.

    A large request is cut at a row count estimated from a sample, so nearly every row is
    encoded once; a piece that still comes out too big is halved.
    """
    n = len(batch)
    if n == 0:
        return []
    if n <= _SIZE_SAMPLE:
        return _bodies(batch, 0, n, max_bytes)
    per_row = len(_body(batch, 0, _SIZE_SAMPLE)) / _SIZE_SAMPLE
    step = max(1, int(max_bytes * 0.9 / per_row))
    out: list[str] = []
    for start in range(0, n, step):
        out.extend(_bodies(batch, start, min(n, start + step), max_bytes))
    return out


def send_batches(bodies: Sequence[str], max_bytes: int = MAX_BODY_BYTES) -> list[list[str]]:
    """Group bodies into SendMessageBatch calls: at most 10 entries and 256 KiB in total each."""
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for body in bodies:
        if current and (len(current) == MAX_BATCH_ENTRIES or size + len(body) > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(body)
        size += len(body)
    if current:
        batches.append(current)
    return batches


def send_predictions(
    sqs: Any,
    queue_url: str,
    batch: PredictionBatch,
    attempts: int = SEND_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send a request's predictions to the log queue (see `send_bodies`)."""
    send_bodies(sqs, queue_url, message_bodies(batch), attempts, sleep)


def send_bodies(
    sqs: Any,
    queue_url: str,
    bodies: Sequence[str],
    attempts: int = SEND_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send message bodies with SendMessageBatch; failed entries are retried with a short backoff.

    Raises StorageError naming how many messages could not be sent after every attempt.
    """
    undelivered: list[str] = []
    for group in send_batches(bodies):
        pending = dict(enumerate(group))
        for attempt in range(attempts):
            if attempt:
                sleep(0.05 * 2 ** (attempt - 1))
            entries = [{"Id": str(i), "MessageBody": body} for i, body in pending.items()]
            with aws_call(f"send {len(entries)} prediction log message(s) to {queue_url}"):
                out = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            failed = out.get("Failed") or []
            # A sender fault (a bad entry) fails the same way again: only retry the others.
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
    if not isinstance(data, dict) or data.get("v") != MESSAGE_FORMAT:
        raise MalformedMessage(f"not a prediction log message of format {MESSAGE_FORMAT}")
    columns = [data.get(c) for c in _COLUMNS]
    if not all(isinstance(c, list) for c in columns):
        raise MalformedMessage(f"a prediction log message needs the lists {', '.join(_COLUMNS)}")
    lengths = {len(c) for c in columns if isinstance(c, list)}
    if len(lengths) != 1 or 0 in lengths:
        raise MalformedMessage("the columns of a prediction log message differ in length or are empty")
    shared = {k: data.get(k) for k in ("request_id", "timestamp", "model_name", "model_version")}
    try:
        return [
            PredictionRecord.model_validate(
                {**shared, **dict(zip(_COLUMNS, values, strict=True))},
            )
            for values in zip(*columns, strict=True)
        ]
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedMessage(f"invalid prediction record: {where}: {first['msg']}") from None
