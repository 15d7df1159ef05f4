"""Shared helpers for the storage layer: the only code that talks to boto3.

Clients are always passed in (tests pass moto clients); errors become domain errors
that say which resource and what was attempted.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.shared import clock
from mlops.shared.errors import NotFoundError, StorageError


def utcnow() -> datetime:
    return clock.now()


def iso(ts: datetime) -> str:
    """Timestamps are stored as ISO 8601 in UTC with microseconds, so they sort as text."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse ISO 8601 (a trailing Z or an offset); a naive time is taken as UTC.

    Raises ValueError for text that is no time, and for a time whose UTC equivalent falls
    outside the years 1 to 9999 (``9999-12-31T23:59:59-01:00`` is in year 10000 in UTC).
    """
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    ts = datetime.fromisoformat(value)
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is outside the years 1 to 9999 in UTC") from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_call(what: str) -> Iterator[None]:
    """Turn botocore failures inside the block into a StorageError naming `what`."""
    try:
        yield
    except ClientError as err:
        code = error_code(err)
        if code in ("NoSuchKey", "404", "NoSuchBucket", "ResourceNotFoundException"):
            raise NotFoundError(f"{what}: not found ({code})") from err
        raise StorageError(f"{what}: {code or 'error'}: {err}") from err
    except BotoCoreError as err:
        raise StorageError(f"{what}: {err}") from err


def get_bytes(s3: Any, bucket: str, key: str) -> bytes:
    with aws_call(f"read s3://{bucket}/{key}"):
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def put_bytes(
    s3: Any, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream"
) -> None:
    with aws_call(f"write s3://{bucket}/{key}"):
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def get_versioned(s3: Any, bucket: str, key: str) -> tuple[bytes, str] | None:
    """An object's bytes and ETag (for a conditional rewrite), or None when it does not exist."""
    try:
        with aws_call(f"read s3://{bucket}/{key}"):
            out = s3.get_object(Bucket=bucket, Key=key)
            return bytes(out["Body"].read()), str(out["ETag"])
    except NotFoundError:
        return None


def put_if_unchanged(
    s3: Any, bucket: str, key: str, body: bytes, etag: str | None, content_type: str = "application/json"
) -> bool:
    """Write only if the object still has `etag` (or, with None, does not exist yet); False if it changed."""
    condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
    try:
        with aws_call(f"write s3://{bucket}/{key}"):
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, **condition)
    except StorageError as err:
        cause = err.__cause__
        if isinstance(cause, ClientError) and error_code(cause) in (
            "PreconditionFailed",
            "ConditionalRequestConflict",
        ):
            return False
        raise
    return True


def put_new_bytes(
    s3: Any, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream"
) -> bool:
    """Write `key` only if it does not exist yet; False if it does.

    A conditional write (If-None-Match: *) instead of a look first: no race between two writers,
    and no read of a missing key, which S3 answers 403, not 404, to a caller that may not list
    the bucket.
    """
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*")
        return True
    except ClientError as err:
        if error_code(err) in ("PreconditionFailed", "412"):
            return False
        raise StorageError(f"write s3://{bucket}/{key}: {error_code(err) or 'error'}: {err}") from err
    except BotoCoreError as err:
        raise StorageError(f"write s3://{bucket}/{key}: {err}") from err


def list_keys(s3: Any, bucket: str, prefix: str, start_after: str | None = None) -> Iterator[str]:
    """Keys under `prefix` in key order; with `start_after`, only the keys sorting after it."""
    with aws_call(f"list s3://{bucket}/{prefix}"):
        paginator = s3.get_paginator("list_objects_v2")
        extra = {} if start_after is None else {"StartAfter": start_after}
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, **extra):
            for obj in page.get("Contents", []):
                yield obj["Key"]


def list_objects(
    s3: Any, bucket: str, prefix: str, start_after: str | None = None
) -> Iterator[tuple[str, str, int]]:
    """(key, ETag, size) of each object under `prefix`, in key order: what a manifest records."""
    with aws_call(f"list s3://{bucket}/{prefix}"):
        paginator = s3.get_paginator("list_objects_v2")
        extra = {} if start_after is None else {"StartAfter": start_after}
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, **extra):
            for obj in page.get("Contents", []):
                yield obj["Key"], str(obj.get("ETag", "")), int(obj.get("Size", 0))


def jsonl_gz(records: Iterable[dict[str, Any]]) -> bytes:
    """gzip JSON Lines, one record a line: the format of every log object."""
    text = "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n" for r in records)
    return gzip.compress(text.encode("utf-8"), mtime=0)


def read_jsonl_gz(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(data).decode("utf-8").splitlines() if line]


def jsonl_gz_array(data: bytes) -> bytes:
    """A gzip JSON Lines object's records as the text of one JSON array, for one validation pass."""
    return b"[" + b",".join(line for line in gzip.decompress(data).split(b"\n") if line.strip()) + b"]"
