"""The log queue: how predictions and feedback are packed into SQS messages, sent, and read back.

One message carries the rows of one request, column by column, the features too::

    {"v": 2, "request_id": ..., "timestamp": ..., "model_name": ..., "model_version": ...,
     "prediction_id": [...], "probability": [...], "label": [...],
     "unseen_categories": [[...], ...], "features": {"tenure_months": [...], ...}, "event_time": [...]}

Format 1 carried the features row by row (``"features": [{...}, ...]``); messages of that format
still queued are read the same way.

``timestamp`` is when the request was served; the optional ``event_time`` column holds the
times the client sent (backfill and replay). A record's ``timestamp`` is its event time
(what partitions the log and what monitoring windows select on), and ``received_at``
is when it was served.

Request-level fields are written once, and feature names once per message rather than once per
row, which makes messages about a third of their row-wise size (SQS bills per 64 KiB) and three
times cheaper to encode on the predict path. A large request is cut into
several messages. Bodies stay under the SQS limit of 256 KiB per message and per
SendMessageBatch call (at most 10 entries); entries SQS rejects are sent again.
`parse_message` turns a message back into `PredictionRecord`s for the log writer.

Feedback travels on the same queue, so the log writer gathers the labels of many requests into one
object (one per batch, not one per request)::

    {"feedback": 1, "records": [{"prediction_id": ..., "label": ..., "source": ...,
     "observed_at": ..., "received_at": ...}, ...]}

`feedback_bodies` cuts a request's records into such messages and `parse_feedback` reads one back;
`decode_message` tells the two kinds apart.

Sending has a time budget: the client waits at most `SEND_CALL_SECONDS` per call (no
botocore retries) and no call starts that could end after the deadline, so a hanging or
missing queue costs the predict function a bounded time. What could not be sent is cut
into `fallback_pieces`, each small enough for one CloudWatch Logs event, which the
function logs and `mlops logs replay` writes into the prediction log later.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from botocore.config import Config
from pydantic import ValidationError

from mlops.cloud.logstore import (
    AnyPredictionRecord,
    FeedbackRecord,
    PredictionRecord,
    RegressionPredictionRecord,
)
from mlops.cloud.storage import aws_call, parse_time
from mlops.shared.errors import StorageError
from mlops.shared.resources import SEND_CALL_SECONDS, SEND_CONNECT_TIMEOUT, SEND_READ_TIMEOUT

MESSAGE_FORMAT = 2
# Format 1 (features as row objects) is what earlier releases queued; the log writer still reads it.
READABLE_FORMATS = (1, 2)
# A feedback message is the object {"feedback": FEEDBACK_FORMAT, "records": [...]}.
FEEDBACK_FORMAT = 1
SQS_MAX_BYTES = 256 * 1024
# Headroom under the hard limit for the request envelope SQS counts against it.
MAX_BODY_BYTES = SQS_MAX_BYTES - 2048
MAX_BATCH_ENTRIES = 10
SEND_ATTEMPTS = 3
# The client of the predict path: our loop retries within the deadline, botocore does not.
SEND_CLIENT_CONFIG = Config(
    connect_timeout=SEND_CONNECT_TIMEOUT,
    read_timeout=SEND_READ_TIMEOUT,
    retries={"total_max_attempts": 1, "mode": "standard"},
)
# CloudWatch Logs takes events of up to 256 KiB; the logger's own fields (function, request id,
# message, ...) come on top of a piece, so pieces stay well under.
LOG_EVENT_MAX_BYTES = 256 * 1024
FALLBACK_PIECE_BYTES = 200 * 1024
# The field of a log line that holds a piece; `pieces_in_log_event` looks for it.
FALLBACK_FIELD = "prediction_log_piece"
_COLUMNS = ("prediction_id", "probability", "label", "unseen_categories", "features")
# A regression model's message carries the predicted number instead of a probability and a class.
_REGRESSION_COLUMNS = ("prediction_id", "value", "unseen_categories", "features")


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
    # The client's event times (canonical ISO UTC), one per row; None: the time of serving.
    event_times: Sequence[str] | None = None
    # A regression model's predicted numbers; then `probabilities` and `labels` are empty.
    values: Sequence[float] | None = None
    # The same features as one column per feature (what a message carries); when None, they are
    # taken from `features`. The predict path has them at hand and passes them.
    feature_columns: Mapping[str, Sequence[Any]] | None = None

    def __len__(self) -> int:
        return len(self.prediction_ids)

    def columns(self) -> Mapping[str, Sequence[Any]]:
        """The features as one column per feature, in the order of the first row's features."""
        if self.feature_columns is not None:
            return self.feature_columns
        rows = self.features
        if not rows:
            return {}
        names = rows[0].keys()
        if any(row.keys() != names for row in rows):
            raise ValueError("the rows of one request must have the same features")
        return {name: [row[name] for row in rows] for name in names}

    def records(self) -> list[dict[str, Any]]:
        """One `PredictionRecord`-shaped dict per row (for logs and tests, not the hot path)."""
        times = self.event_times if self.event_times is not None else [self.timestamp] * len(self)
        if self.values is not None:
            return [
                {
                    "prediction_id": pid,
                    "request_id": self.request_id,
                    "timestamp": ts,
                    "received_at": self.timestamp,
                    "model_name": self.model_name,
                    "model_version": self.model_version,
                    "features": row,
                    "value": value,
                    "unseen_categories": unseen,
                }
                for pid, value, unseen, row, ts in zip(
                    self.prediction_ids,
                    self.values,
                    self.unseen_categories,
                    self.features,
                    times,
                    strict=True,
                )
            ]
        return [
            {
                "prediction_id": pid,
                "request_id": self.request_id,
                "timestamp": ts,
                "received_at": self.timestamp,
                "model_name": self.model_name,
                "model_version": self.model_version,
                "features": row,
                "probability": p,
                "label": label,
                "unseen_categories": unseen,
            }
            for pid, p, label, unseen, row, ts in zip(
                self.prediction_ids,
                self.probabilities,
                self.labels,
                self.unseen_categories,
                self.features,
                times,
                strict=True,
            )
        ]


def _body(batch: PredictionBatch, columns: Mapping[str, Sequence[Any]], start: int, stop: int) -> str:
    body = {
        "v": MESSAGE_FORMAT,
        "request_id": batch.request_id,
        "timestamp": batch.timestamp,
        "model_name": batch.model_name,
        "model_version": batch.model_version,
        "prediction_id": batch.prediction_ids[start:stop],
        **(
            {"value": batch.values[start:stop]}
            if batch.values is not None
            else {"probability": batch.probabilities[start:stop], "label": batch.labels[start:stop]}
        ),
        "unseen_categories": batch.unseen_categories[start:stop],
        "features": {name: column[start:stop] for name, column in columns.items()},
    }
    if batch.event_times is not None:
        body["event_time"] = batch.event_times[start:stop]
    outputs = batch.values if batch.values is not None else batch.probabilities
    return encode_body(body, outputs[start:stop])


def encode_body(body: dict[str, Any], outputs: Sequence[float]) -> str:
    """`body` as compact JSON of ASCII characters only, as the standard library writes it.

    orjson writes it in about a tenth of the time. Its text is used when it is what the standard
    library would accept and say (the same values; a float may be spelled differently, 1e-05 as
    0.00001): only ASCII, so that SQS takes every character and the length in characters is the
    length in bytes, and finite model outputs, which orjson would write as null. Anything else (a
    non-ASCII category, an integer beyond 64 bits, a non-finite output) is encoded by the standard
    library, which escapes what is not ASCII and refuses what is not finite.
    """
    try:
        fast = orjson.dumps(body)
    except orjson.JSONEncodeError:
        fast = None
    # The sum of finite outputs is finite unless it overflows, which only sends the body the slow way.
    if fast is not None and fast.isascii() and math.isfinite(sum(outputs)):
        return fast.decode("ascii")
    # ensure_ascii (the default) makes the length in characters the length in bytes.
    return json.dumps(
        body,
        separators=(",", ":"),
        allow_nan=False,
        # Rows parsed from JSON cannot hold a cycle; the check costs a sixth of the encoding.
        check_circular=False,
    )


def _bodies(
    batch: PredictionBatch, columns: Mapping[str, Sequence[Any]], start: int, stop: int, max_bytes: int
) -> list[str]:
    body = _body(batch, columns, start, stop)
    if len(body) <= max_bytes:
        return [body]
    if stop - start == 1:
        raise ValueError(f"one prediction encodes to {len(body)} bytes, over the {max_bytes} limit")
    middle = (start + stop) // 2
    return _bodies(batch, columns, start, middle, max_bytes) + _bodies(
        batch, columns, middle, stop, max_bytes
    )


def message_bodies(batch: PredictionBatch, max_bytes: int = MAX_BODY_BYTES) -> list[str]:
    """Cut a request's predictions into message bodies of at most `max_bytes` each, in row order.

    A request is encoded whole; one too big for a message is cut at a row count estimated from
    that encoding, so a row is encoded at most twice (a piece still too big is halved).
    """
    n = len(batch)
    if n == 0:
        return []
    columns = batch.columns()
    whole = _body(batch, columns, 0, n)
    if len(whole) <= max_bytes:
        return [whole]
    if n == 1:
        raise ValueError(f"one prediction encodes to {len(whole)} bytes, over the {max_bytes} limit")
    step = max(1, int(max_bytes * 0.9 / (len(whole) / n)))
    out: list[str] = []
    for start in range(0, n, step):
        out.extend(_bodies(batch, columns, start, min(n, start + step), max_bytes))
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
    deadline: float | None = None,
    attempts: int = SEND_ATTEMPTS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Send a request's predictions to the log queue; the bodies not sent (see `send_bodies`)."""
    return send_bodies(sqs, queue_url, message_bodies(batch), deadline, attempts, clock, sleep)


def send_bodies(
    sqs: Any,
    queue_url: str,
    bodies: Sequence[str],
    deadline: float | None = None,
    attempts: int = SEND_ATTEMPTS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Send message bodies with SendMessageBatch; failed entries are retried with a short backoff.

    No call starts unless it can end by `deadline` (monotonic seconds of `clock`, each call
    bounded by `SEND_CALL_SECONDS`). Returns the bodies that were not delivered for sure, in
    order: rejected entries, and every entry of a call that failed or timed out (SQS may have
    taken those; readers count a prediction once, so sending them again is harmless).
    """
    undelivered: list[str] = []
    out_of_time = False
    for group in send_batches(bodies):
        pending = dict(enumerate(group))
        for attempt in range(attempts):
            if out_of_time:
                break
            if attempt:
                pause = 0.05 * 2 ** (attempt - 1)
                if deadline is not None and clock() + pause + SEND_CALL_SECONDS > deadline:
                    out_of_time = True
                    break
                sleep(pause)
            if deadline is not None and clock() + SEND_CALL_SECONDS > deadline:
                out_of_time = True
                break
            entries = [{"Id": str(i), "MessageBody": body} for i, body in pending.items()]
            try:
                with aws_call(f"send {len(entries)} log message(s) to {queue_url}"):
                    out = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            except StorageError:
                continue
            failed = out.get("Failed") or []
            # A sender fault (a bad entry) fails the same way again: only retry the others.
            retry = {int(f["Id"]) for f in failed if not f.get("SenderFault")}
            undelivered.extend(pending[int(f["Id"])] for f in failed if f.get("SenderFault"))
            pending = {i: pending[i] for i in retry}
            if not pending:
                break
        undelivered.extend(pending.values())
    return undelivered


def fallback_pieces(bodies: Sequence[str], max_bytes: int = FALLBACK_PIECE_BYTES) -> list[dict[str, Any]]:
    """Undelivered message bodies as pieces of at most `max_bytes` encoded, each a message (as a dict).

    A piece is a valid queue message, so replay reads it with `parse_message`.
    """
    pieces: list[dict[str, Any]] = []
    for body in bodies:
        if len(body) <= max_bytes:
            pieces.append(json.loads(body))
            continue
        data = json.loads(body)
        features = data["features"]
        columns = features if isinstance(features, dict) else None
        batch = PredictionBatch(
            request_id=data["request_id"],
            timestamp=data["timestamp"],
            model_name=data["model_name"],
            model_version=data["model_version"],
            prediction_ids=data["prediction_id"],
            probabilities=data.get("probability", []),
            labels=data.get("label", []),
            unseen_categories=data["unseen_categories"],
            features=[] if columns is not None else features,
            event_times=data.get("event_time"),
            values=data.get("value"),
            feature_columns=columns,
        )
        pieces.extend(json.loads(b) for b in message_bodies(batch, max_bytes))
    return pieces


def pieces_in_log_event(message: str) -> list[str]:
    """The fallback pieces in one CloudWatch Logs event, as message bodies.

    The event is the function's JSON log line, or (with Lambda's JSON log format) a record
    whose ``message`` holds that line; anything else holds no piece.
    """
    found: list[str] = []

    def visit(value: Any, depth: int) -> None:
        if depth > 3:
            return
        if isinstance(value, str) and FALLBACK_FIELD in value:
            try:
                visit(json.loads(value), depth + 1)
            except ValueError:
                return
        elif isinstance(value, dict):
            piece = value.get(FALLBACK_FIELD)
            if isinstance(piece, dict):
                found.append(json.dumps(piece, separators=(",", ":"), allow_nan=False))
            else:
                visit(value.get("message"), depth + 1)

    visit(message, 0)
    return found


def feedback_bodies(
    records: Sequence[FeedbackRecord], max_bytes: int = MAX_BODY_BYTES
) -> list[tuple[str, list[FeedbackRecord]]]:
    """Feedback records as message bodies of at most `max_bytes` each, with the records of each."""
    out: list[tuple[str, list[FeedbackRecord]]] = []
    current: list[FeedbackRecord] = []
    current_rows: list[str] = []
    size = 0
    envelope = len(_feedback_body([]))
    for record in records:
        row = json.dumps(record.model_dump(mode="json"), separators=(",", ":"), allow_nan=False)
        if envelope + len(row) > max_bytes:
            raise ValueError(f"one feedback record encodes to {len(row)} bytes, over the {max_bytes} limit")
        if current and envelope + size + len(current_rows) + len(row) > max_bytes:
            out.append((_feedback_body(current_rows), current))
            current, current_rows, size = [], [], 0
        current.append(record)
        current_rows.append(row)
        size += len(row)
    if current:
        out.append((_feedback_body(current_rows), current))
    return out


def _feedback_body(rows: Sequence[str]) -> str:
    # ensure_ascii (json.dumps' default) keeps the length in characters the length in bytes.
    return f'{{"feedback":{FEEDBACK_FORMAT},"records":[{",".join(rows)}]}}'


def decode_message(body: str) -> dict[str, Any]:
    """A queue message as JSON; MalformedMessage when it is not a JSON object."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError) as err:
        raise MalformedMessage(f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise MalformedMessage("not a JSON object")
    return data


def is_feedback(data: Mapping[str, Any]) -> bool:
    return "feedback" in data


def parse_feedback(data: Mapping[str, Any]) -> list[FeedbackRecord]:
    """The records of a decoded feedback message; MalformedMessage says what is wrong with it."""
    if data.get("feedback") != FEEDBACK_FORMAT:
        raise MalformedMessage(f"not a feedback message of format {FEEDBACK_FORMAT}")
    rows = data.get("records")
    if not isinstance(rows, list) or not rows:
        raise MalformedMessage("a feedback message needs a non-empty list of records")
    try:
        records = [FeedbackRecord.model_validate(r) for r in rows]
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedMessage(f"invalid feedback record: {where}: {first['msg']}") from None
    for i, record in enumerate(records):
        if not record.prediction_id:
            raise MalformedMessage(f"record {i}: empty prediction_id")
        try:
            parse_time(record.received_at)
        except (ValueError, OverflowError):
            raise MalformedMessage(f"record {i}: received_at is not an ISO 8601 time") from None
    return records


def parse_message(body: str) -> list[AnyPredictionRecord]:
    """The records of one prediction message; MalformedMessage says what is wrong with it."""
    return prediction_records(decode_message(body))


def prediction_records(data: dict[str, Any]) -> list[AnyPredictionRecord]:
    """The records of a decoded prediction message; MalformedMessage says what is wrong with it."""
    if data.get("v") not in READABLE_FORMATS:
        raise MalformedMessage(
            f"not a prediction log message of format {' or '.join(map(str, READABLE_FORMATS))}"
        )
    if data["v"] != 1:
        data["features"] = _feature_rows(data.get("features"), data.get("prediction_id"))
    regression = "value" in data
    names, record_type = (
        (_REGRESSION_COLUMNS, RegressionPredictionRecord) if regression else (_COLUMNS, PredictionRecord)
    )
    columns = [data.get(c) for c in names]
    if not all(isinstance(c, list) for c in columns):
        raise MalformedMessage(f"a prediction log message needs the lists {', '.join(names)}")
    lengths = {len(c) for c in columns if isinstance(c, list)}
    if len(lengths) != 1 or 0 in lengths:
        raise MalformedMessage("the columns of a prediction log message differ in length or are empty")
    shared = {k: data.get(k) for k in ("request_id", "model_name", "model_version")}
    served = data.get("timestamp")
    times = data.get("event_time")
    rows = next(iter(lengths))
    if times is None:
        times = [served] * rows
    elif not isinstance(times, list) or len(times) != rows:
        raise MalformedMessage("the event_time column of a prediction log message differs in length")
    try:
        records: list[AnyPredictionRecord] = [
            record_type.model_validate(
                {
                    **shared,
                    "timestamp": ts,
                    "received_at": served,
                    **dict(zip(names, values, strict=True)),
                },
            )
            for ts, values in zip(times, zip(*columns, strict=True), strict=True)
        ]
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedMessage(f"invalid prediction record: {where}: {first['msg']}") from None
    _check_values(records)
    return records


def _feature_rows(columns: Any, ids: Any) -> list[dict[str, Any]]:
    """The row objects of a message's feature columns, one per prediction id."""
    if not isinstance(columns, dict) or not all(isinstance(c, list) for c in columns.values()):
        raise MalformedMessage("the features of a prediction log message must be an object of columns")
    if not isinstance(ids, list):
        raise MalformedMessage("a prediction log message needs the list prediction_id")
    if any(len(column) != len(ids) for column in columns.values()):
        raise MalformedMessage("a feature column of a prediction log message differs in length")
    if not columns:
        return [{} for _ in ids]
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _check_values(records: Sequence[AnyPredictionRecord]) -> None:
    """What the log layout and its readers rely on beyond the types: a real time, a probability, a class."""
    stamp = records[0].timestamp
    try:
        # The hour partition of the object is derived from it; a year-9999 time with an offset overflows.
        parse_time(stamp)
    except (ValueError, OverflowError):
        raise MalformedMessage(f"timestamp {stamp[:64]!r} is not an ISO 8601 time") from None
    if records[0].model_version < 1:
        raise MalformedMessage(f"model_version {records[0].model_version} is not a version number")
    for i, record in enumerate(records):
        if isinstance(record, RegressionPredictionRecord):
            # json.loads accepts NaN and Infinity; no reader of the logs (Athena included) does.
            if not math.isfinite(record.value):
                raise MalformedMessage(f"row {i}: value {record.value} is not a finite number")
            if not record.prediction_id:
                raise MalformedMessage(f"row {i}: empty prediction_id")
            continue
        # json.loads accepts NaN and Infinity; no reader of the logs (Athena included) does.
        if not 0.0 <= record.probability <= 1.0:
            raise MalformedMessage(f"row {i}: probability {record.probability} is not in [0, 1]")
        if record.label not in (0, 1):
            raise MalformedMessage(f"row {i}: label {record.label} is not 0 or 1")
        if not record.prediction_id:
            raise MalformedMessage(f"row {i}: empty prediction_id")
