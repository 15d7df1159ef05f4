"""The time every part of the system reads: real UTC time on AWS, a controllable clock locally.

The local stack plays days of traffic in minutes. Predictions, feedback, monitoring
windows, metric timestamps and registry history must then agree on one simulated
time, so they all ask this module instead of `datetime.now`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_source: Callable[[], datetime] | None = None


def now() -> datetime:
    return _source() if _source is not None else datetime.now(UTC)


def use(source: Callable[[], datetime] | None) -> None:
    """Route `now()` to `source` (None restores real time)."""
    global _source
    _source = source


class SimulatedClock:
    """Starts at `start` and runs `factor` times faster than real time; `set` moves it."""

    def __init__(self, start: datetime, factor: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._base = start
        self._real = time.monotonic()
        self.factor = factor

    def __call__(self) -> datetime:
        with self._lock:
            return self._base + timedelta(seconds=(time.monotonic() - self._real) * self.factor)

    def set(self, when: datetime) -> None:
        with self._lock:
            self._base, self._real = when, time.monotonic()
