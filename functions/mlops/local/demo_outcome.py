"""What a demo run records as it goes and how it ended: read by the story and by its report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops.shared.alarm_specs import Metric

PERFORMANCE_METRICS = frozenset(
    {Metric.METRIC_GAP, Metric.METRIC_GAP_Z, Metric.PRODUCTION_METRIC, Metric.ESTIMATED_METRIC_GAP}
)


@dataclass
class Timeline:
    entries: list[tuple[datetime, str]] = field(default_factory=list)

    def add(self, at: datetime, text: str) -> None:
        self.entries.append((at, text))
        print(f"  {at:%a %d %b %H:%M}  {text}", flush=True)


@dataclass
class Recovery:
    """Production performance against the level before the shift and against the oracle."""

    pre_shift: float | None
    final_production: float | None
    champion_fresh: float
    oracle: float
    metric: str

    @property
    def oracle_gap(self) -> float:
        return self.oracle - self.champion_fresh


@dataclass
class Outcome:
    alarm_fired: bool = False
    promoted_version: int | None = None
    serving_version: int | None = None
    final_gap: float | None = None
    threshold: float = 0.0
    quiet_expected: bool = False
    shift_at: datetime | None = None
    ended_at: datetime | None = None
    alarms: list[tuple[datetime, str, str]] = field(default_factory=list)  # (when, alarm, metric)
    final_states: dict[str, str] = field(default_factory=dict)
    promotions: list[tuple[datetime, int]] = field(default_factory=list)
    retrain_runs: list[dict[str, Any]] = field(default_factory=list)
    recovery: Recovery | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def performance_alarms(self) -> list[tuple[datetime, str, str]]:
        return [a for a in self.alarms if a[2] in PERFORMANCE_METRICS]
