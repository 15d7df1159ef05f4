"""The true values a regression window joins, kept between runs so each run reads only new feedback.

A regression window joins every label received since its start to the rows its hours' partials
hold. Reading those labels from the feedback objects on every run costs a GET per object of the
window: one per log-writer batch, some 8,640 for a 24-hour window at 1,000 requests/s. So they are
kept in one object, `reports/partials/truths.json.gz`: the feedback records received from
`kept_from` on, one per (source, prediction) pair, and how far the feedback objects were read (the
cursor `mlops.monitoring.labels.new_feedback` moves). A run reads that object and the feedback
objects that arrived since, drops the records received before its window, and writes it back.

A run whose window starts before `kept_from` (a longer window than the runs before), or that comes
before the point already read, reads its window's feedback again, as a first run does. A
second record of a pair is a copy (the feedback index takes each pair once; SQS delivered a message
twice) and is left out, whether the first was read in this run or an earlier one.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import Field, ValidationError

from mlops.cloud.logstore import PARTIALS_PREFIX, FeedbackRecord, latest_values
from mlops.cloud.storage import get_versioned, iso, put_if_unchanged
from mlops.monitoring.labels import FeedbackCursor, FeedbackReads, new_feedback
from mlops.shared.observability import logger

TRUTH_STATE_KEY = f"{PARTIALS_PREFIX}truths.json.gz"
TRUTH_STATE_FORMAT = 1


class TruthState(FeedbackCursor):
    format: int = TRUTH_STATE_FORMAT
    # Every record received from this time on is held (None: none read yet).
    kept_from: str | None = None
    # The records, a column each: prediction id, source (1 explicit, 0 implicit), true value,
    # observed and received time.
    prediction_id: list[str] = Field(default_factory=list)
    explicit: list[int] = Field(default_factory=list)
    label: list[float] = Field(default_factory=list)
    observed_at: list[str] = Field(default_factory=list)
    received_at: list[str] = Field(default_factory=list)

    def records(self) -> list[FeedbackRecord]:
        columns = zip(
            self.prediction_id, self.explicit, self.label, self.observed_at, self.received_at, strict=True
        )
        return [
            FeedbackRecord(
                prediction_id=pid,
                label=y,
                source="explicit" if explicit else "implicit",
                observed_at=observed,
                received_at=received,
            )
            for pid, explicit, y, observed, received in columns
        ]

    def covers(self, start: datetime, now: datetime) -> bool:
        """Whether this state holds every record a window from `start`, read up to `now`, needs."""
        return (
            self.kept_from is not None
            and self.kept_from <= iso(start)
            and (self.read_until is None or self.read_until <= iso(now))
        )


def state_of(
    records: Iterable[FeedbackRecord], kept_from: str, read_until: str, seen: list[str]
) -> TruthState:
    held = list(records)
    return TruthState(
        read_until=read_until,
        seen=seen,
        kept_from=kept_from,
        prediction_id=[r.prediction_id for r in held],
        explicit=[int(r.source == "explicit") for r in held],
        label=[float(r.label) for r in held],
        observed_at=[r.observed_at for r in held],
        received_at=[r.received_at for r in held],
    )


def read_truth_state(s3: Any, bucket: str) -> tuple[TruthState, str | None]:
    """The stored state and its ETag (for the conditional rewrite); an empty state when there is none
    or it cannot be read (the run then reads its window's feedback again)."""
    held = get_versioned(s3, bucket, TRUTH_STATE_KEY)
    if held is None:
        return TruthState(), None
    try:
        state = TruthState.model_validate_json(gzip.decompress(held[0]))
    except (ValidationError, OSError, EOFError):
        return TruthState(), held[1]
    return (state if state.format == TRUTH_STATE_FORMAT else TruthState()), held[1]


def window_truths(
    s3: Any,
    log_bucket: str,
    report_bucket: str,
    start: datetime,
    now: datetime,
    reads: FeedbackReads,
) -> dict[str, float]:
    """The true value of each prediction labelled by feedback received from `start` to `now`: the
    stored records and the feedback objects that arrived since the last run. Stores the state."""
    state, etag = read_truth_state(s3, report_bucket)
    cursor = state if state.covers(start, now) else TruthState()
    records, seen = new_feedback(s3, log_bucket, cursor, start, now, reads)
    since = iso(start)
    kept: dict[tuple[str, str], FeedbackRecord] = {}
    for record in [*(cursor.records() if cursor is state else ()), *records]:
        if record.received_at >= since:
            kept.setdefault((record.source, record.prediction_id), record)
    after = state_of(kept.values(), since, max(iso(now), cursor.read_until or ""), seen)
    body = gzip.compress(after.model_dump_json().encode("utf-8"), 5, mtime=0)
    if not put_if_unchanged(s3, report_bucket, TRUTH_STATE_KEY, body, etag, "application/gzip"):
        logger.warning("another run moved the stored truths; the next run reads from the older point")
    return latest_values(kept.values())
