"""Labels as they arrive: which feedback a run has read, and labels still waiting for their prediction.

Feedback objects are named by arrival time (`mlops.cloud.logstore.feedback_key`), so a run lists and reads
only what arrived since the previous run. The state of that reading is one object,
`reports/partials/labels.json`: how far feedback was read, the keys read near that point (an object
stamped just before a run can land just after it, so each run lists `LANDING_MARGIN` back and skips
what it already read), feedback received per minute (for the report's counts), and the labels no
stored hour of predictions holds yet (`pending`: ids logged later, in an hour cut by the window, or
never). Applying a label twice gives the same hour labels, so a repeated or overlapping read is harmless.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.cloud.logstore import (
    PARTIALS_PREFIX,
    FeedbackRecord,
    feedback_key_at,
    feedback_objects_between,
    read_feedback,
)
from mlops.cloud.storage import get_bytes, get_versioned, iso, put_if_unchanged

LABEL_STATE_KEY = f"{PARTIALS_PREFIX}labels.json"
LABEL_STATE_FORMAT = 1
# Longer than a feedback request takes from stamping its arrival time to its S3 write.
LANDING_MARGIN = timedelta(minutes=15)
# Counts and waiting labels older than the longest window a run may ask for are dropped.
RETAIN = timedelta(days=90)

# Which of two labels of a prediction holds: explicit over implicit, then the later observation,
# then the later arrival, then the higher label (so the choice never depends on reading order).
Rank = tuple[int, str, str]


class Label(NamedTuple):
    """One feedback record of a prediction. A tuple: a window's roll-ups build one per labelled row
    they hold on every run, at about half the cost of a frozen dataclass."""

    prediction_id: str
    label: int
    rank: Rank
    received_at: str

    @classmethod
    def of(cls, fb: FeedbackRecord) -> Label:
        rank = (1 if fb.source == "explicit" else 0, fb.observed_at, fb.received_at)
        return cls(fb.prediction_id, int(fb.label), rank, fb.received_at)

    def beats(self, other: Label) -> bool:
        return (self.rank, self.label) > (other.rank, other.label)


class FeedbackCursor(BaseModel):
    """How far a stored state has read the feedback objects (`new_feedback` moves it)."""

    model_config = ConfigDict(extra="forbid")

    # Feedback received up to this time has been read (None: never; the first run reads its window's).
    read_until: str | None = None
    # Keys read that arrived within LANDING_MARGIN before read_until.
    seen: list[str] = Field(default_factory=list)


class LabelState(FeedbackCursor):
    format: int = LABEL_STATE_FORMAT
    # Minute (YYYY-MM-DDTHH:MM) -> feedback records received in it.
    received: dict[str, int] = Field(default_factory=dict)
    # Labels no stored hour holds yet: [prediction_id, label, source rank, observed_at, received_at].
    pending: list[tuple[str, int, int, str, str]] = Field(default_factory=list)

    def pending_labels(self) -> list[Label]:
        return [Label(p, y, (s, o, r), r) for p, y, s, o, r in self.pending]

    def received_between(self, start: datetime, end: datetime) -> int:
        """Feedback received from the minute of `start` to the minute of `end`, both included."""
        lo, hi = iso(start)[:16], iso(end)[:16]
        return sum(n for minute, n in self.received.items() if lo <= minute <= hi)


@dataclass
class FeedbackReads:
    gets: int = 0
    bytes: int = 0


def read_label_state(s3: Any, bucket: str) -> tuple[LabelState, str | None]:
    """The stored state and its ETag (for the conditional rewrite); a fresh state when there is none."""
    held = get_versioned(s3, bucket, LABEL_STATE_KEY)
    if held is None:
        return LabelState(), None
    try:
        state = LabelState.model_validate_json(held[0])
    except ValidationError:
        return LabelState(), held[1]  # another format: read the window's feedback again
    return (state if state.format == LABEL_STATE_FORMAT else LabelState()), held[1]


def new_feedback(
    s3: Any, bucket: str, state: FeedbackCursor, first_start: datetime, now: datetime, reads: FeedbackReads
) -> tuple[list[FeedbackRecord], list[str]]:
    """Feedback that arrived since the state's point (from `first_start` on a first run) up to `now`.

    Returns the records and every key listed from LANDING_MARGIN before `now` (the next `seen`).
    """
    held = datetime.fromisoformat(state.read_until.replace("Z", "+00:00")) if state.read_until else None
    after = held - LANDING_MARGIN if held is not None else first_start
    seen = set(state.seen)
    near = feedback_key_at(max(now, held or now) - LANDING_MARGIN)
    records: list[FeedbackRecord] = []
    keep: list[str] = [k for k in state.seen if k >= near]
    if after <= now:
        for key, _, _ in feedback_objects_between(s3, bucket, after, now):
            if key in seen:
                continue
            data = get_bytes(s3, bucket, key)
            reads.gets += 1
            reads.bytes += len(data)
            records.extend(read_feedback(data))
            if key >= near:
                keep.append(key)
    return records, sorted(set(keep))


def unique_feedback(records: Iterable[FeedbackRecord], pending: Iterable[Label]) -> list[FeedbackRecord]:
    """`records` without copies: the feedback index takes each (source, prediction) pair once, so a
    pair read twice, or a label that already waits, is a message SQS delivered twice."""
    seen = {(x.rank[0], x.prediction_id) for x in pending}
    out = []
    for fb in records:
        pair = (1 if fb.source == "explicit" else 0, fb.prediction_id)
        if pair not in seen:
            seen.add(pair)
            out.append(fb)
    return out


def advanced(
    state: LabelState,
    records: list[FeedbackRecord],
    seen: list[str],
    matched: Collection[str],
    now: datetime,
) -> LabelState:
    """The state after a run that read `records` and stored the labels of the ids `matched`:
    read up to `now`, the records counted, the labels of no stored prediction waiting."""
    received = dict(state.received)
    for fb in records:
        minute = fb.received_at[:16]
        received[minute] = received.get(minute, 0) + 1
    horizon = iso(now - RETAIN)
    waiting = [*state.pending_labels(), *labels_of(records)]
    kept = [p for p in waiting if p.prediction_id not in matched and p.received_at >= horizon]
    return LabelState(
        read_until=max(iso(now), state.read_until or ""),
        seen=seen,
        received={m: n for m, n in sorted(received.items()) if m >= horizon[:16]},
        pending=[(p.prediction_id, p.label, p.rank[0], p.rank[1], p.rank[2]) for p in kept],
    )


def write_label_state(s3: Any, bucket: str, state: LabelState, etag: str | None) -> bool:
    """False when another run rewrote the state meanwhile (the next run reads from the older point)."""
    return put_if_unchanged(s3, bucket, LABEL_STATE_KEY, state.model_dump_json().encode("utf-8"), etag)


def labels_of(records: Iterable[FeedbackRecord]) -> Iterator[Label]:
    return (Label.of(fb) for fb in records)
