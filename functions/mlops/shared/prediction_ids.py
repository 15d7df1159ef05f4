"""Prediction ids the predict function makes: the millisecond of serving (or of the row's event
time, when the client sent one) in 12 hex digits, the letter `p`, then 19 random hex digits.

The log writer files a prediction under the hour of its timestamp (`mlops.cloud.logstore.prediction_key`),
so the id of a prediction made here names the hour partition that holds it: the monitor joins a
label to the rows of that one hour instead of searching every hour of its window. The `p` keeps
the form apart from the ids clients send: no hex id (a UUID's hex, a digest) has it, so a client's
id never names an hour and is looked for in every hour (`mlops.monitoring.rollup`). A client that
sends back one of these ids as its own for a new prediction makes it name the first one's hour.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime

_HEX = frozenset("0123456789abcdef")
MARK = "p"
_STAMP = 12
_RANDOM = 19  # 76 bits
LENGTH = _STAMP + 1 + _RANDOM
_EARLIEST_MS = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)
_LATEST_MS = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)


def _random_parts(n: int) -> list[str]:
    raw = os.urandom(10 * n).hex()  # one call for the batch: 20 hex digits an id, 19 kept
    return [raw[i : i + _RANDOM] for i in range(0, 20 * n, 20)]


def stamp(at: datetime) -> str:
    """The first 13 characters of an id made for a prediction at `at`: its millisecond and the mark."""
    return f"{int(at.timestamp() * 1000):012x}{MARK}"


def new_prediction_ids(n: int, served: datetime) -> list[str]:
    """`n` ids for predictions served at `served`."""
    head = stamp(served)
    return [head + part for part in _random_parts(n)]


def prediction_ids_at(times: Sequence[datetime]) -> list[str]:
    """An id for each of `times`: a prediction logged under its event time (a replayed or
    backfilled row) gets an id naming that hour, as the log files it there."""
    return [stamp(t) + part for t, part in zip(times, _random_parts(len(times)), strict=True)]


def served_hour(prediction_id: str) -> datetime | None:
    """The hour named by an id of `new_prediction_ids`' form; None for any other id."""
    if (
        len(prediction_id) != LENGTH
        or prediction_id[_STAMP] != MARK
        or not _HEX.issuperset(prediction_id[:_STAMP])
        or not _HEX.issuperset(prediction_id[_STAMP + 1 :])
    ):
        return None
    ms = int(prediction_id[:_STAMP], 16)
    if not _EARLIEST_MS <= ms < _LATEST_MS:
        return None
    return datetime.fromtimestamp(ms // 3_600_000 * 3600, UTC)
