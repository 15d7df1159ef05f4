"""One monitor run at a time per model: a lease object next to the stored partials.

A run reads the day roll-ups and the label cursor, merges what arrived, and rewrites them. Two runs
at once (the schedule and a monitor request, or an event retried while its first attempt still
runs) would each rewrite a day from what it read, and the later write would drop the labels the
earlier one added. A run therefore takes the lease first, with a conditional write (If-None-Match
on a new lease, If-Match on an expired one), so of two runs starting together exactly one wins; the
other is skipped and says why (runs are incremental: the next one catches up). The lease expires
after LEASE_TTL, longer than the function's timeout, so a run that died holding it delays the next
run at most once. Times are the wall clock, not the window's end: a replayed event's time is old.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlops.cloud.logstore import PARTIALS_PREFIX
from mlops.cloud.storage import get_versioned, iso, parse_time, put_if_unchanged, utcnow

LEASE_KEY = f"{PARTIALS_PREFIX}monitor-lease.json"
# The monitor function's timeout is 300 s (infrastructure/lambdas.py); twice that and more.
LEASE_TTL = timedelta(minutes=10)


class Lease(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str
    expires_at: str


def _held(s3: Any, bucket: str) -> tuple[Lease | None, str | None]:
    """The stored lease (None if missing or unreadable) and the object's ETag (None if missing)."""
    stored = get_versioned(s3, bucket, LEASE_KEY)
    if stored is None:
        return None, None
    data, etag = stored
    try:
        return Lease.model_validate_json(data), etag
    except ValueError:
        return None, etag  # unreadable: as good as expired, and replaced only if still the same


def take_lease(s3: Any, bucket: str, owner: str, clock: Callable[[], datetime] = utcnow) -> str | None:
    """Take the lease for `owner`: None when taken, else why not (who holds it, until when)."""
    now = clock()
    lease, etag = _held(s3, bucket)
    if lease is not None and lease.owner != owner and parse_time(lease.expires_at) > now:
        return f"another monitor run ({lease.owner}) holds the lease until {lease.expires_at}"
    body = Lease(owner=owner, expires_at=iso(now + LEASE_TTL)).model_dump_json().encode("utf-8")
    if not put_if_unchanged(s3, bucket, LEASE_KEY, body, etag):
        return "another monitor run took the lease at the same moment"
    return None


def release_lease(s3: Any, bucket: str, owner: str, clock: Callable[[], datetime] = utcnow) -> None:
    """End the lease now if `owner` still holds it (after expiry another run may have taken it)."""
    lease, etag = _held(s3, bucket)
    if lease is None or lease.owner != owner:
        return
    body = Lease(owner=owner, expires_at=iso(clock())).model_dump_json().encode("utf-8")
    put_if_unchanged(s3, bucket, LEASE_KEY, body, etag)  # changed meanwhile: it is not ours to end
