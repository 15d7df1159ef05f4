"""The S3 layout of prediction logs, feedback and reports, documented and coded in one place.

Log bucket::

    predictions/model_version=<V>/dt=<YYYY-MM-DD>/hour=<HH>/<object-key>.jsonl.gz
    feedback/dt=<YYYY-MM-DD>/<HHMMSSffffff>-<object-key>.jsonl.gz   (names sort by arrival time)

Report bucket::

    reports/model_version=<V>/dt=<YYYY-MM-DD>/run=<run-id>/report.json | report.html
    reports/latest/model_version=<V>.json   (the latest summary; GET /model shows it)
    reports/history/<model>.json | <model>.html   (every run of the model: rows and the history page)
    gates/model_version=<V>/gate.json        (the gate report of a retraining candidate)
    reports/partials/model_version=<V>/dt=<YYYY-MM-DD>/day.json.gz | hours.json.gz
        (the day's roll-up: merged counts, each whole hour's manifest, rows and labels; and each
        hour's own profile, for a window that cuts the day)
    reports/partials/model_version=<V>/dt=<YYYY-MM-DD>/hour=<HH>/regression-hour.json.gz
        (the regression monitor's profile of one hour partition, with its rows)
    reports/partials/labels.json   (how far the monitor has read feedback; labels not yet matched)

Every log object is gzip JSON Lines (one record a line). The Hive-style partitions let the
monitor read only its window (prune by version, day and hour) and let Athena query the
logs with partition projection. The log writer derives a prediction object's key from the
prediction ids it holds, so a retried write overwrites instead of duplicating. A feedback
object's key leads with the time it was written (the monitor reads feedback by arrival); the
feedback index takes each (source, prediction) pair once, so readers keep one record of a pair.

A prediction is counted once. SQS delivers at least once, so a message redelivered with
other companions can put a prediction into a second object of its hour partition (never
another partition: the partition comes from the prediction's own version and time).
Every reader keeps the first copy of each prediction id in an hour partition, in S3 key
order (`FirstSeen`); the Athena view `predictions_unique` applies the same rule in SQL
(`unique_predictions_sql`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from mlops.cloud.storage import (
    aws_call,
    get_bytes,
    jsonl_gz,
    jsonl_gz_array,
    list_keys,
    list_objects,
    parse_time,
    put_bytes,
    read_jsonl_gz,
)
from mlops.model.kinds import FeatureKind, Task
from mlops.shared.errors import NotFoundError

if TYPE_CHECKING:
    from mlops.model.spec import ModelSpec

PREDICTIONS_PREFIX = "predictions/"
FEEDBACK_PREFIX = "feedback/"
REPORTS_PREFIX = "reports/"
# Gate reports of retraining candidates: the record of why a version was approved or rejected.
# Apart from `reports/` so they outlive the monitoring reports' expiry and so the readers of
# monitoring reports (predict, admin, monitor) are not granted them; the registry holds a copy.
GATES_PREFIX = "gates/"
LATEST_REPORTS_PREFIX = f"{REPORTS_PREFIX}latest/"
LOG_SUFFIX = ".jsonl.gz"
# Markers of late log objects (`late_marker_key`), in the log bucket beside what they point at.
LATE_PREFIX = "late/"
# The longest monitoring window: longer than any a Lambda can read in its 15 minutes, so a unit
# mistake (days for hours) is refused. Stored roll-ups must outlive it (infrastructure/config.py).
MAX_WINDOW_HOURS = 24 * 90
# A log object written this long after its hour ended is late: the writer leaves a marker first, so
# a monitor that no longer lists the hour (it settled, `mlops.monitoring.rollup`) is told to.
LATE_AFTER = timedelta(hours=1)


class PredictionRecord(BaseModel):
    """One logged prediction: what came in, what went out, which model answered."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    prediction_id: str
    request_id: str
    # When the event happened: the client's event time, else when it was served.
    timestamp: str
    model_name: str
    model_version: int
    features: dict[str, Any]
    probability: float
    label: int
    unseen_categories: list[str] = Field(default_factory=list)
    # When it was served (absent in logs written before event times existed).
    received_at: str | None = None


class RegressionPredictionRecord(BaseModel):
    """One logged prediction of a regression model: the predicted `value` instead of a class."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    prediction_id: str
    request_id: str
    timestamp: str
    model_name: str
    model_version: int
    features: dict[str, Any]
    value: float
    unseen_categories: list[str] = Field(default_factory=list)
    received_at: str | None = None


AnyPredictionRecord = PredictionRecord | RegressionPredictionRecord


class FeedbackRecord(BaseModel):
    """Ground truth for one prediction, explicit (a user said so) or implicit (behaviour showed it)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    prediction_id: str
    # 0/1 for classification; the true number for regression.
    label: int | float
    source: Literal["explicit", "implicit"]
    observed_at: str
    received_at: str

    @property
    def key(self) -> str:
        """The feedback index's key of this record: the index takes each key once."""
        return feedback_index_key(self.source, self.prediction_id)


@functools.cache
def _feedback_records() -> TypeAdapter[list[FeedbackRecord]]:
    return TypeAdapter(list[FeedbackRecord])  # built on first use: the predict function never reads feedback


def read_feedback(data: bytes) -> list[FeedbackRecord]:
    """The records of a feedback object, parsed and validated in one pass of pydantic's core: half
    the time of one record at a time (0.9 s against 1.7 s for the 180,000 labels of an hour at 1,000
    requests/s)."""
    return _feedback_records().validate_json(jsonl_gz_array(data))


def feedback_index_key(source: str, prediction_id: str) -> str:
    """`<source>#<prediction_id>`: the source has no '#', so the key is unambiguous whatever the id holds."""
    return f"{source}#{prediction_id}"


# The Athena (Glue) tables over these logs, as (column, Hive type, comment); the stack creates the
# tables from them. Partition keys follow the key layout above. `model_version` is projected by
# injection (a query names the versions it reads, as strings), so Athena never enumerates
# versions that do not exist.
Column = tuple[str, str, str]
PREDICTION_PARTITION_KEYS: tuple[Column, ...] = (
    ("model_version", "string", "registry version; name the versions you read (WHERE ... IN ('1', '2'))"),
    ("dt", "string", "UTC day, yyyy-MM-dd"),
    ("hour", "int", "UTC hour, 0-23"),
)
FEEDBACK_PARTITION_KEYS: tuple[Column, ...] = (("dt", "string", "UTC day the feedback arrived"),)
FEEDBACK_COLUMNS: tuple[Column, ...] = (
    ("prediction_id", "string", ""),
    ("label", "int", ""),
    ("source", "string", "explicit or implicit"),
    ("observed_at", "string", ""),
    ("received_at", "string", ""),
)


def feedback_columns(spec: ModelSpec) -> tuple[Column, ...]:
    """The feedback columns of a model: a regression model's label is the true number."""
    if spec.task is not Task.REGRESSION:
        return FEEDBACK_COLUMNS
    return tuple(("label", "double", "the true number") if c[0] == "label" else c for c in FEEDBACK_COLUMNS)


def hive_field_name(name: str) -> str:
    """A struct field name as Hive reads it: plain names as they are, others in backticks."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return "`" + name.replace("`", "``") + "`"


def features_type(spec: ModelSpec) -> str:
    """The Hive struct of a logged feature row, typed from the spec (the one feature schema).

    Booleans are logged as the categories "true"/"false", hence string.
    """
    fields = [
        f"{hive_field_name(f.name)}:{'double' if f.kind is FeatureKind.NUMERIC else 'string'}"
        for f in spec.features
    ]
    return f"struct<{','.join(fields)}>"


def prediction_columns(spec: ModelSpec) -> tuple[Column, ...]:
    """The columns of a logged prediction (`PredictionRecord` without its partition key)."""
    return (
        ("prediction_id", "string", ""),
        ("request_id", "string", ""),
        ("timestamp", "string", "event time (the client's, else when served), ISO 8601 UTC"),
        ("received_at", "string", "when it was served, ISO 8601 UTC"),
        ("model_name", "string", ""),
        ("features", features_type(spec), "the request row, canonical form"),
        *(
            (("value", "double", "the predicted number"),)
            if spec.task is Task.REGRESSION
            else (("probability", "double", ""), ("label", "int", ""))
        ),
        ("unseen_categories", "array<string>", ""),
    )


def hour_partition(ts: datetime) -> str:
    return f"dt={ts:%Y-%m-%d}/hour={ts:%H}"


def prediction_prefix(version: int, ts: datetime | None = None) -> str:
    base = f"{PREDICTIONS_PREFIX}model_version={version}/"
    return base if ts is None else f"{base}{hour_partition(ts)}/"


def object_name(parts: Iterable[str]) -> str:
    """A stable object name from the ids of what it holds (same input -> same key)."""
    digest = hashlib.sha256("\n".join(sorted(parts)).encode("utf-8")).hexdigest()[:32]
    return digest + LOG_SUFFIX


def prediction_key(version: int, ts: datetime, ids: Iterable[str]) -> str:
    return prediction_prefix(version, ts) + object_name(ids)


def feedback_key(ts: datetime, ids: Iterable[str]) -> str:
    """The arrival time leads the name, so a listing from a key on gives what arrived after it."""
    return f"{feedback_key_at(ts)}-{object_name(ids)}"


def feedback_key_at(ts: datetime) -> str:
    """The key every feedback object received from `ts` on sorts after (a listing's StartAfter)."""
    return arrival_key_at(FEEDBACK_PREFIX, ts)


def arrival_key_at(prefix: str, ts: datetime) -> str:
    """The start of the name of what arrived at `ts` under `prefix`, where arrival time leads the
    name (feedback, late-write markers): every key of what arrived from `ts` on sorts after it."""
    return f"{prefix}dt={ts:%Y-%m-%d}/{ts:%H%M%S%f}"


def report_prefix(version: int, ts: datetime, run_id: str) -> str:
    return f"{REPORTS_PREFIX}model_version={version}/dt={ts:%Y-%m-%d}/run={run_id}/"


PARTIALS_PREFIX = f"{REPORTS_PREFIX}partials/"


def partial_prefix(version: int, hour: datetime) -> str:
    """Where the monitor keeps its profile of one hour partition of a version's predictions."""
    return f"{PARTIALS_PREFIX}model_version={version}/{hour_partition(hour)}/"


def history_keys(model_name: str) -> tuple[str, str]:
    """The model's run history (JSON rows) and its history page, next to the per-run reports."""
    base = f"{REPORTS_PREFIX}history/{model_name}"
    return base + ".json", base + ".html"


def write_predictions(s3: Any, bucket: str, key: str, records: Iterable[AnyPredictionRecord]) -> None:
    put_bytes(s3, bucket, key, jsonl_gz(r.model_dump(mode="json") for r in records), "application/gzip")


def write_feedback(s3: Any, bucket: str, key: str, records: Iterable[FeedbackRecord]) -> None:
    put_bytes(s3, bucket, key, jsonl_gz(r.model_dump(mode="json") for r in records), "application/gzip")


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    t = start.replace(minute=0, second=0, microsecond=0)
    while t < end:
        yield t
        t += timedelta(hours=1)


def _days(start: datetime, end: datetime) -> Iterator[datetime]:
    t = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while t < end:
        yield t
        t += timedelta(days=1)


def model_versions_logged(s3: Any, bucket: str) -> list[int]:
    """Versions with any prediction log (one listing level, not every object)."""
    versions = set()
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(
        Bucket=bucket, Prefix=f"{PREDICTIONS_PREFIX}model_version=", Delimiter="/"
    ):
        for cp in page.get("CommonPrefixes", []):
            versions.add(int(cp["Prefix"].rstrip("/").split("=", 1)[1]))
    return sorted(versions)


def prediction_objects(s3: Any, bucket: str, version: int, start: datetime, end: datetime) -> Iterator[str]:
    """Keys of the hour partitions that overlap [start, end) for one version, hour by hour in key order.

    Partitions sort by time (dt=YYYY-MM-DD/hour=HH), so one listing from the first hour on, ended
    past the last, gives the keys that listing each hour would: one request per 1,000 keys, not per hour.
    """
    hours = [prediction_prefix(version, hour) for hour in _hours(start, end)]
    if not hours:
        return
    wanted, width, last = set(hours), len(hours[0]), hours[-1]
    for key in list_keys(s3, bucket, prediction_prefix(version), start_after=hours[0]):
        if key[:width] in wanted:
            yield key
        elif key > last:
            return


def is_late(hour: datetime, now: datetime) -> bool:
    """Whether a log object of `hour` written at `now` is late (`LATE_AFTER` past the hour's end)."""
    return now >= hour.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) + LATE_AFTER


def late_marker_key(now: datetime, version: int, hour: datetime) -> str:
    """A late write's marker: its arrival time leads the name (a listing from a key on gives what
    arrived after it), the version and hour it wrote to follow; the object is empty."""
    return f"{arrival_key_at(LATE_PREFIX, now)}-{version}-{hour:%Y%m%d%H}"


def late_hours_since(s3: Any, bucket: str, after: datetime) -> set[tuple[int, datetime]]:
    """(version, hour) of every late write marked from `after` on: one listing, no object read.
    A key under the prefix that no writer of this project made is passed over."""
    out: set[tuple[int, datetime]] = set()
    for key, _, _ in list_objects(s3, bucket, LATE_PREFIX, start_after=arrival_key_at(LATE_PREFIX, after)):
        parts = key.rsplit("/", 1)[-1].split("-")
        try:
            (_, version, hour) = parts
            out.add((int(version), datetime.strptime(hour, "%Y%m%d%H").replace(tzinfo=UTC)))
        except ValueError:
            continue
    return out


def has_predictions(s3: Any, bucket: str, version: int, start: datetime, end: datetime) -> bool:
    """Whether any hour partition overlapping [start, end) holds an object: one request of one key
    (every partition between the first and the last hour of the window is one of its hours)."""
    hours = [prediction_prefix(version, hour) for hour in _hours(start, end)]
    if not hours:
        return False
    with aws_call(f"list s3://{bucket}/{prediction_prefix(version)}"):
        page = s3.list_objects_v2(
            Bucket=bucket, Prefix=prediction_prefix(version), StartAfter=hours[0], MaxKeys=1
        )
    first = [o["Key"] for o in page.get("Contents", [])]
    return bool(first) and first[0][: len(hours[-1])] <= hours[-1]


def prediction_objects_by_hour(
    s3: Any, bucket: str, version: int, start: datetime, end: datetime
) -> dict[str, list[tuple[str, str, int]]]:
    """(key, ETag, size) of the objects of `prediction_objects`, from the same one listing, by hour
    partition (its `prediction_prefix`); an hour without objects is absent.

    The listing's prefix is the one its first and last hour partitions share (the hour's own for one
    hour, the day's for hours of one day): a page S3 returns holds no keys beyond it."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    hours = [prediction_prefix(version, hour) for hour in _hours(start, end)]
    if not hours:
        return out
    wanted, width, last = set(hours), len(hours[0]), hours[-1]
    shared = hours[0]
    while not last.startswith(shared):  # drop a partition level: hour, then day
        shared = shared[: shared.rstrip("/").rfind("/") + 1]
    for key, etag, size in list_objects(s3, bucket, shared, start_after=hours[0]):
        if key[:width] in wanted:
            out.setdefault(key[:width], []).append((key, etag, size))
        elif key > last:
            break
    return out


def feedback_objects_between(
    s3: Any, bucket: str, after: datetime, until: datetime
) -> Iterator[tuple[str, str, int]]:
    """(key, ETag, size) of the feedback objects received in [after, until], in arrival order.

    One listing from `after` on (a request per 1,000 keys), not one per day of the window.
    """
    start, stop = feedback_key_at(after), feedback_key_at(until + timedelta(microseconds=1))
    for key, etag, size in list_objects(s3, bucket, FEEDBACK_PREFIX, start_after=start):
        if key >= stop:
            return
        yield key, etag, size


class FirstSeen:
    """Keeps the first copy of each prediction id of an hour partition, objects read in key order.

    Feed it the objects of `prediction_objects` in the order given. Memory holds the ids of
    one hour partition at a time: copies of a prediction never cross partitions.
    """

    def __init__(self) -> None:
        self._partition: str | None = None
        self._ids: set[str] = set()

    def keep(self, key: str, prediction_ids: Sequence[str]) -> list[bool] | None:
        """Which rows of the object at `key` are first copies; None when all are (the usual case)."""
        partition = key.rsplit("/", 1)[0]
        if partition != self._partition:
            self._partition = partition
            self._ids = set()
        fresh = set(prediction_ids)
        if len(fresh) == len(prediction_ids) and self._ids.isdisjoint(fresh):
            self._ids |= fresh
            return None
        mask = []
        for pid in prediction_ids:
            mask.append(pid not in self._ids)
            self._ids.add(pid)
        return mask


# The Athena view of unique_predictions_sql in the stack's Glue database, and the feedback table.
UNIQUE_PREDICTIONS_VIEW = "predictions_unique"
FEEDBACK_TABLE = "feedback"


# Which copy of a prediction counts: the first by object key, in its hour partition (SQS may deliver
# a message twice, and the log writer may then write a prediction into two objects).
COPY_RANK = 'row_number() OVER (PARTITION BY model_version, dt, hour, prediction_id ORDER BY "$path")'


# The rule of `FirstSeen` in SQL, for Athena (a view over the `predictions` table): one row per
# prediction id, the copy in the first object of its partition by path, the first line within it.
def unique_predictions_sql(spec: ModelSpec, table: str) -> str:
    """The SELECT behind `predictions_unique`: the first copy of each prediction in its partition.

    Its columns are the table's for the spec's task (`prediction_columns`) and the partition keys,
    in the table's order, so the Athena view's declared columns match what the query returns.
    """
    names = [name for name, _, _ in (*prediction_columns(spec), *PREDICTION_PARTITION_KEYS)]
    select = ", ".join(f'"{n}"' if n == "timestamp" else n for n in names)
    return (
        f"SELECT {select}\n"
        "FROM (\n"
        f"    SELECT p.*, {COPY_RANK} AS copy_rank\n"
        f"    FROM {table} p\n"
        ")\n"
        "WHERE copy_rank = 1"
    )


def later_copies_sql(table: str) -> str:
    """DuckDB: delete from `table` (a copy of the predictions table with its rowids) every copy of a
    prediction the view `predictions_unique` leaves out. Ranking the copies by the keys alone, not
    whole rows, takes about a third of the view's time on a full hour (3.6 million rows)."""
    return (
        f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM (SELECT rowid, {COPY_RANK} AS copy_rank "
        f"FROM {table}) WHERE copy_rank > 1)"
    )


def iter_predictions(
    s3: Any, bucket: str, version: int, start: datetime, end: datetime
) -> Iterator[list[PredictionRecord]]:
    """Predictions of one version in [start, end), one list per S3 object, each prediction once."""
    first = FirstSeen()
    for key in prediction_objects(s3, bucket, version, start, end):
        rows = [PredictionRecord.model_validate(r) for r in read_jsonl_gz(get_bytes(s3, bucket, key))]
        keep = first.keep(key, [r.prediction_id for r in rows])
        if keep is not None:
            rows = [r for r, k in zip(rows, keep, strict=True) if k]
        yield [r for r in rows if start <= parse_time(r.timestamp) < end]


def iter_feedback(s3: Any, bucket: str, start: datetime, end: datetime) -> Iterator[FeedbackRecord]:
    """Feedback received in the days overlapping [start, end), each (source, prediction) pair once.

    The feedback index takes each pair once, so a second record of one is a copy (a message SQS
    delivered twice, written into two objects): the first read is kept.
    """
    seen: set[str] = set()
    for day in _days(start, end):
        for key in list_keys(s3, bucket, f"{FEEDBACK_PREFIX}dt={day:%Y-%m-%d}/"):
            for record in read_feedback(get_bytes(s3, bucket, key)):
                if record.key not in seen:
                    seen.add(record.key)
                    yield record


def _latest(feedback: Iterable[FeedbackRecord]) -> dict[str, int | float]:
    best: dict[str, tuple[int, str, int | float]] = {}
    for fb in feedback:
        rank = (1 if fb.source == "explicit" else 0, fb.observed_at)
        held = best.get(fb.prediction_id)
        if held is None or rank >= held[:2]:
            best[fb.prediction_id] = (rank[0], rank[1], fb.label)
    return {pid: v[2] for pid, v in best.items()}


def latest_labels(feedback: Iterable[FeedbackRecord]) -> dict[str, int]:
    """One label per prediction: explicit feedback wins over implicit, later over earlier."""
    return {pid: int(label) for pid, label in _latest(feedback).items()}


def latest_values(feedback: Iterable[FeedbackRecord]) -> dict[str, float]:
    """The true numbers of a regression model's predictions, chosen as `latest_labels` chooses."""
    return {pid: float(label) for pid, label in _latest(feedback).items()}


def gate_report_key(version: int) -> str:
    return f"{GATES_PREFIX}model_version={version}/gate.json"


def latest_report_key(version: int) -> str:
    """The newest monitoring summary of a version, overwritten by each monitor run."""
    return f"{LATEST_REPORTS_PREFIX}model_version={version}.json"


def read_latest_report(s3: Any, bucket: str, version: int) -> dict[str, Any] | None:
    """The latest monitoring summary of a version, or None before the monitor has run for it."""
    try:
        data = json.loads(get_bytes(s3, bucket, latest_report_key(version)))
    except NotFoundError:
        return None
    return data if isinstance(data, dict) else None


def report_runs(s3: Any, bucket: str, version: int, limit: int = 200) -> list[dict[str, str]]:
    """The monitoring runs of a version (newest first): where each run's JSON and HTML report is."""
    runs = []
    for key in list_keys(s3, bucket, f"{REPORTS_PREFIX}model_version={version}/"):
        if key.endswith("/report.json"):
            parts = dict(p.split("=", 1) for p in key.split("/")[1:-1] if "=" in p)
            runs.append(
                {
                    "dt": parts.get("dt", ""),
                    "run": parts.get("run", ""),
                    "json": key,
                    "html": key[: -len("report.json")] + "report.html",
                }
            )
    runs.sort(key=lambda r: (r["dt"], r["run"]), reverse=True)
    return runs[:limit]
