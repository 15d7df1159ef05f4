"""Prediction ids the predict function makes: 32 hex digits, the first 12 the millisecond of serving
(or of the row's event time, when the client sent one).

The log writer files a prediction under the hour of its timestamp (`mlops.cloud.logstore.prediction_key`),
so the id of a prediction made here names the hour partition that holds it: the monitor joins a
label to the rows of that one hour instead of searching every hour of its window. The other 80 bits
are random. A client that sends its own ids keeps them; `served_hour` then gives None, or an hour
that does not hold the id, and the monitor searches the window for it (`mlops.monitoring.rollup`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime

_HEX = frozenset("0123456789abcdef")
# Milliseconds that can be a serving time: a random hex id lands in this range rarely (about 1 in
# 110), and the monitor then only searches further, as it does for a client's id.
_EARLIEST_MS = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)
_LATEST_MS = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)


def new_prediction_ids(n: int, served: datetime) -> list[str]:
    """`n` ids for predictions served at `served`: its millisecond, then 80 random bits each."""
    stamp = f"{int(served.timestamp() * 1000):012x}"
    raw = os.urandom(10 * n).hex()
    return [stamp + raw[i : i + 20] for i in range(0, 20 * n, 20)]


def prediction_ids_at(times: Sequence[datetime]) -> list[str]:
    """An id for each of `times`: a prediction logged under its event time (a replayed or
    backfilled row) gets an id naming that hour, as the log files it there."""
    raw = os.urandom(10 * len(times)).hex()
    return [f"{int(t.timestamp() * 1000):012x}{raw[20 * i : 20 * i + 20]}" for i, t in enumerate(times)]


def served_hour(prediction_id: str) -> datetime | None:
    """The hour a prediction with this id was served in, if it is an id of `new_prediction_ids`' form."""
    if len(prediction_id) != 32 or not _HEX.issuperset(prediction_id):
        return None
    ms = int(prediction_id[:12], 16)
    if not _EARLIEST_MS <= ms < _LATEST_MS:
        return None
    return datetime.fromtimestamp(ms // 3_600_000 * 3600, UTC)
