"""The monitor finds a window's prediction logs with one listing, and exactly the keys of its hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.cloud.logstore import prediction_objects
from mlops.shared.resources import LOG_BUCKET

from tests.conftest import AwsStack, s3_requests

START = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)


def _per_hour_reference(s3: Any, bucket: str, version: int, start: datetime, end: datetime) -> list[str]:
    """What a listing of every hour partition of [start, end) returns, written out independently."""
    keys: list[str] = []
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        prefix = f"predictions/model_version={version}/dt={hour:%Y-%m-%d}/hour={hour:%H}/"
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        keys += sorted(o["Key"] for o in listed)
        hour += timedelta(hours=1)
    return keys


def test_a_window_is_listed_in_one_request_with_the_keys_of_its_hours_only(aws_stack: AwsStack) -> None:
    # Given logs of two versions over 30 hours across midnight, two objects an hour, and keys that
    # sort among the partitions without being one (a stray object, a partition-like folder)
    s3, bucket = aws_stack.s3, aws_stack.env[LOG_BUCKET.env_var]
    for version in (1, 2):
        for h in range(-3, 27):
            at = START + timedelta(hours=h)
            for name in ("a", "b"):
                key = f"predictions/model_version={version}/dt={at:%Y-%m-%d}/hour={at:%H}/{name}{h}.jsonl.gz"
                s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    s3.put_object(Bucket=bucket, Key="predictions/model_version=1/dt=2026-03-01/notes.txt", Body=b"x")
    s3.put_object(
        Bucket=bucket, Key="predictions/model_version=1/dt=2026-03-02/hour=7x/c.jsonl.gz", Body=b"x"
    )
    end = START + timedelta(hours=20, minutes=15)
    calls = s3_requests(s3, "ListObjectsV2")

    # When the objects of version 1 in [START, end) are listed
    keys = list(prediction_objects(s3, bucket, 1, START, end))
    requests = [c["Prefix"] for c in calls]

    # Then they are the hour partitions' keys in key order, from one request
    assert keys == _per_hour_reference(s3, bucket, 1, START, end)
    assert len(keys) == 2 * 21  # 22:00 on the first day to 18:00 on the next, inclusive
    assert requests == ["predictions/model_version=1/"]


def test_an_empty_window_and_a_window_without_logs_list_nothing(aws_stack: AwsStack) -> None:
    # Given one object an hour before the window
    s3, bucket = aws_stack.s3, aws_stack.env[LOG_BUCKET.env_var]
    before = START - timedelta(hours=2)
    key = f"predictions/model_version=3/dt={before:%Y-%m-%d}/hour={before:%H}/a.jsonl.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    # When a window after it, and an empty window, are listed
    # Then neither holds a key
    assert list(prediction_objects(s3, bucket, 3, START, START + timedelta(hours=5))) == []
    assert list(prediction_objects(s3, bucket, 3, START, START)) == []
