"""Accept ground truth for predictions, store each (prediction, source) pair once.

Idempotency is a conditional put of ``<source>#<prediction_id>`` into the feedback
index table before the records are queued. They go to the log queue, and the log writer gathers
the feedback of many requests into one object (`mlops.serving.log_writer`): one S3 write per
batch, and one read for the monitor, instead of one per request. A message SQS did not take has
its claims released again, so a retried request stores what the failed one did not. Feedback for
a prediction id we never logged is accepted: monitoring counts it as unmatched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from mlops.cloud.logstore import FeedbackRecord, feedback_index_key
from mlops.cloud.storage import aws_call, error_code, iso, parse_time, utcnow
from mlops.serving.log_queue import feedback_bodies, send_bodies
from mlops.serving.validation import Problem, problem
from mlops.shared.errors import ConflictError, MlopsError, StorageError, UnavailableError, ValidationFailed

SOURCES = ("explicit", "implicit")
MAX_ID_LENGTH = 128
ITEM_FIELDS = frozenset({"prediction_id", "label", "source", "observed_at"})
# Long enough to cover any realistic label delay; the row is only a duplicate guard.
CLAIM_TTL = timedelta(days=400)
# How long a request may spend queueing its records (the function's timeout is 10 s).
SEND_SECONDS = 5.0

Status = Literal["stored", "duplicate", "conflict"]


# Says what is wrong with a label, or None when it is a valid one.
LabelCheck = Callable[[Any], str | None]


def binary_label(label: Any) -> str | None:
    return None if type(label) is int and label in (0, 1) else "expected 0 or 1"


@dataclass(frozen=True)
class FeedbackItem:
    prediction_id: str
    # 0/1, or the true number for a regression model.
    label: int | float
    source: Literal["explicit", "implicit"]
    observed_at: str | None

    @property
    def key(self) -> str:
        return feedback_index_key(self.source, self.prediction_id)


def _item_problems(i: int, item: Any, check_label: LabelCheck) -> list[Problem]:
    if not isinstance(item, dict):
        return [problem(i, None, "a feedback item must be a JSON object")]
    found = []
    pid = item.get("prediction_id")
    if "prediction_id" not in item:
        found.append(problem(i, "prediction_id", "missing"))
    elif not isinstance(pid, str) or not 0 < len(pid) <= MAX_ID_LENGTH:
        found.append(problem(i, "prediction_id", f"expected a string of 1 to {MAX_ID_LENGTH} characters"))
    label = item.get("label")
    if "label" not in item:
        found.append(problem(i, "label", "missing"))
    elif (wrong := check_label(label)) is not None:
        found.append(problem(i, "label", wrong))
    if "source" not in item:
        found.append(problem(i, "source", "missing"))
    elif item["source"] not in SOURCES:
        found.append(problem(i, "source", "expected 'explicit' or 'implicit'"))
    observed = item.get("observed_at")
    if observed is not None:
        try:
            if not isinstance(observed, str):
                raise ValueError
            parse_time(observed)
        except ValueError:
            found.append(
                problem(i, "observed_at", "expected an ISO 8601 timestamp within the years 1 to 9999 in UTC")
            )
    for name in sorted(str(k) for k in item if k not in ITEM_FIELDS):
        found.append(problem(i, name, "unknown field"))
    return found


def feedback_items(
    payload: Any, max_items: int, check_label: LabelCheck = binary_label
) -> tuple[list[FeedbackItem], bool]:
    """Validated items of a request, and whether it was the single-item form."""
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "the body must be a JSON object",
            [problem(None, None, "expected a feedback item or {'items': [...]}")],
        )
    single = "items" not in payload
    if single:
        raw: Any = [payload]
    else:
        extra = [problem(None, str(k), "unknown field next to 'items'") for k in payload if k != "items"]
        if extra:
            raise ValidationFailed("the request envelope is malformed", extra)
        raw = payload["items"]
        if not isinstance(raw, list):
            raise ValidationFailed("'items' must be an array", [problem(None, "items", "expected an array")])
        if not raw:
            raise ValidationFailed("the batch is empty", [problem(None, "items", "send at least one item")])
        if len(raw) > max_items:
            raise ValidationFailed(
                "the batch is too large",
                [problem(None, "items", f"{len(raw)} items; at most {max_items} are accepted per request")],
                status=413,
            )
    found = [p for i, item in enumerate(raw) for p in _item_problems(i, item, check_label)]
    if found:
        raise ValidationFailed("the feedback does not match the expected shape", found)
    items = [
        FeedbackItem(
            prediction_id=r["prediction_id"],
            label=r["label"],
            source=r["source"],
            observed_at=iso(parse_time(r["observed_at"])) if r.get("observed_at") is not None else None,
        )
        for r in raw
    ]
    return items, single


def _claim(dynamodb: Any, table: str, item: FeedbackItem, received_at: datetime) -> Status:
    """Record that this feedback is stored; say whether it already was (and with which label)."""
    try:
        dynamodb.put_item(
            TableName=table,
            Item={
                "pk": {"S": item.key},
                "label": {"N": str(item.label)},
                "received_at": {"S": iso(received_at)},
                "expires_at": {"N": str(int((received_at + CLAIM_TTL).timestamp()))},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return "stored"
    except ClientError as err:
        if error_code(err) != "ConditionalCheckFailedException":
            raise StorageError(f"claim feedback {item.key} in {table}: {error_code(err)}") from err
    except BotoCoreError as err:
        raise StorageError(f"claim feedback {item.key} in {table}: {err}") from err
    with aws_call(f"read feedback {item.key} from {table}"):
        held = dynamodb.get_item(TableName=table, Key={"pk": {"S": item.key}}, ConsistentRead=True)
    stored_label = held.get("Item", {}).get("label", {}).get("N")
    # Compared as numbers: DynamoDB gives a stored 100.0 back as "100".
    same = stored_label is None or float(stored_label) == float(item.label)
    return "duplicate" if same else "conflict"


def _release(dynamodb: Any, table: str, items: list[FeedbackItem]) -> None:
    for item in items:
        try:
            dynamodb.delete_item(TableName=table, Key={"pk": {"S": item.key}})
        except (ClientError, BotoCoreError):
            # Nothing more to do here: the caller reports the failure and the client retries.
            continue


def submit_feedback(
    dynamodb: Any,
    table: str,
    sqs: Any,
    queue_url: str,
    payload: Any,
    max_items: int,
    now: Callable[[], datetime] = utcnow,
    check_label: LabelCheck = binary_label,
) -> dict[str, Any]:
    """Validate, deduplicate and queue feedback; the answer gives each item's status."""
    items, single = feedback_items(payload, max_items, check_label)
    received = now()
    statuses: dict[str, Status] = {}
    first: dict[str, FeedbackItem] = {}
    claimed: list[FeedbackItem] = []
    try:
        for item in items:
            if item.key in first:
                # The same pair twice in one request: store it once, like across requests.
                continue
            first[item.key] = item
            statuses[item.key] = _claim(dynamodb, table, item, received)
            if statuses[item.key] == "stored":
                claimed.append(item)
    except MlopsError as err:
        _release(dynamodb, table, claimed)
        raise UnavailableError(f"feedback could not be stored, nothing was kept; retry: {err}") from err
    if claimed:
        records = [
            FeedbackRecord(
                prediction_id=c.prediction_id,
                label=c.label,
                source=c.source,
                observed_at=c.observed_at or iso(received),
                received_at=iso(received),
            )
            for c in claimed
        ]
        bodies = dict(feedback_bodies(records))
        unsent = send_bodies(sqs, queue_url, list(bodies), deadline=time.monotonic() + SEND_SECONDS)
        if unsent:
            lost = {r.key for body in unsent for r in bodies[body]}
            _release(dynamodb, table, [c for c in claimed if c.key in lost])
            raise UnavailableError(
                f"{len(lost)} of {len(claimed)} feedback item(s) could not be queued and were not kept; "
                "retry the request (items already kept answer 'duplicate')"
            )
    answers = []
    for item in items:
        status = statuses[item.key]
        if first[item.key] is not item:
            status = "duplicate" if first[item.key].label == item.label else "conflict"
        answers.append({"prediction_id": item.prediction_id, "source": item.source, "status": status})
    if single and answers[0]["status"] == "conflict":
        raise ConflictError(
            f"feedback for {items[0].prediction_id} ({items[0].source}) was already stored with another label"
        )
    return {
        "stored": sum(a["status"] == "stored" for a in answers),
        "duplicates": sum(a["status"] == "duplicate" for a in answers),
        "conflicts": sum(a["status"] == "conflict" for a in answers),
        "items": answers,
    }
