"""The S3 layout of prediction logs, feedback and reports, documented and coded in one place.

Log bucket::

    predictions/model_version=<V>/dt=<YYYY-MM-DD>/hour=<HH>/<object-key>.jsonl.gz
    feedback/dt=<YYYY-MM-DD>/<object-key>.jsonl.gz

Report bucket::

    reports/model_version=<V>/dt=<YYYY-MM-DD>/run=<run-id>/report.json | report.html
    reports/latest/model_version=<V>.json   (the latest summary; GET /model shows it)

Every object is gzip JSON Lines (one record a line). The Hive-style partitions let the
monitor read only its window (prune by version, day and hour) and let Athena query the
logs with partition projection. Writers derive object keys from their input (message ids,
feedback ids), so a retried write overwrites instead of duplicating.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops.errors import NotFoundError
from mlops.storage import get_bytes, jsonl_gz, list_keys, parse_time, put_bytes, read_jsonl_gz

PREDICTIONS_PREFIX = "predictions/"
FEEDBACK_PREFIX = "feedback/"
REPORTS_PREFIX = "reports/"
LOG_SUFFIX = ".jsonl.gz"


class PredictionRecord(BaseModel):
    """One logged prediction: what came in, what went out, which model answered."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    prediction_id: str
    request_id: str
    timestamp: str
    model_name: str
    model_version: int
    features: dict[str, Any]
    probability: float
    label: int
    unseen_categories: list[str] = Field(default_factory=list)


class FeedbackRecord(BaseModel):
    """Ground truth for one prediction, explicit (a user said so) or implicit (behaviour showed it)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    prediction_id: str
    label: int
    source: Literal["explicit", "implicit"]
    observed_at: str
    received_at: str


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
    return f"{FEEDBACK_PREFIX}dt={ts:%Y-%m-%d}/{object_name(ids)}"


def report_prefix(version: int, ts: datetime, run_id: str) -> str:
    return f"{REPORTS_PREFIX}model_version={version}/dt={ts:%Y-%m-%d}/run={run_id}/"


def write_predictions(s3: Any, bucket: str, key: str, records: Iterable[PredictionRecord]) -> None:
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
    """Keys of the hour partitions that overlap [start, end) for one version."""
    for hour in _hours(start, end):
        yield from list_keys(s3, bucket, prediction_prefix(version, hour))


def iter_predictions(
    s3: Any, bucket: str, version: int, start: datetime, end: datetime
) -> Iterator[list[PredictionRecord]]:
    """Predictions of one version in [start, end), one list per S3 object (streamed)."""
    for key in prediction_objects(s3, bucket, version, start, end):
        rows = [PredictionRecord.model_validate(r) for r in read_jsonl_gz(get_bytes(s3, bucket, key))]
        yield [r for r in rows if start <= parse_time(r.timestamp) < end]


def iter_feedback(s3: Any, bucket: str, start: datetime, end: datetime) -> Iterator[FeedbackRecord]:
    """Feedback received in the days overlapping [start, end)."""
    for day in _days(start, end):
        for key in list_keys(s3, bucket, f"{FEEDBACK_PREFIX}dt={day:%Y-%m-%d}/"):
            for r in read_jsonl_gz(get_bytes(s3, bucket, key)):
                yield FeedbackRecord.model_validate(r)


def latest_labels(feedback: Iterable[FeedbackRecord]) -> dict[str, int]:
    """One label per prediction: explicit feedback wins over implicit, later over earlier."""
    best: dict[str, tuple[int, str, int]] = {}
    for fb in feedback:
        rank = (1 if fb.source == "explicit" else 0, fb.observed_at)
        held = best.get(fb.prediction_id)
        if held is None or rank >= held[:2]:
            best[fb.prediction_id] = (rank[0], rank[1], fb.label)
    return {pid: v[2] for pid, v in best.items()}


def latest_report_key(version: int) -> str:
    """The newest monitoring summary of a version, overwritten by each monitor run."""
    return f"{REPORTS_PREFIX}latest/model_version={version}.json"


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
