"""A window assembled from daily roll-ups: one listing and one read per day, however many hours.

A day's roll-up (`reports/partials/model_version=V/dt=D/day.json.gz`) holds, for each whole hour of
the day a run has profiled, the hour's partial (with the manifest of the log objects it covers), its
rows (id, probability, sensitive values: what the label join needs) and its labels (the performance
partial: which rows are labelled, with what). A run lists the window's log objects once, reads the
roll-up of each day the window touches, profiles again only the hours whose objects changed (as
`mlops.monitoring.partials` does hour by hour), joins the labels that arrived since the last run to
the rows of every hour, and rewrites the days that changed. A late label so changes the labels of the
hour of the prediction it labels, and a re-run applies nothing new. Hours cut by the window's edges are
profiled for their part and not stored; their labels come from the stored whole hour when there is one.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from mlops.errors import NotFoundError
from mlops.logstore import PARTIALS_PREFIX, prediction_objects_listed, prediction_prefix
from mlops.monitoring.labels import Label
from mlops.monitoring.partials import (
    HourEngine,
    HourPartial,
    HourRows,
    Manifest,
    PartialStore,
    ReadStats,
    hour_spans,
    merge_into,
    python_hour_profile,
)
from mlops.monitoring.window import WindowAccumulator
from mlops.profile import ReferenceProfile
from mlops.storage import get_bytes, iso, put_bytes

ROLLUP_FORMAT = 1
ROLLUP_NAME = "day.json.gz"


def rollup_key(version: int, day: datetime) -> str:
    return f"{PARTIALS_PREFIX}model_version={version}/dt={day:%Y-%m-%d}/{ROLLUP_NAME}"


@dataclass
class HourLabels:
    """The performance partial of an hour: for each labelled row (its position in the hour's rows),
    every feedback record received for it. The label that holds is the one that beats the others;
    keeping the records makes applying one twice a no-op and lets a window count its own feedback."""

    records: dict[int, list[Label]] = field(default_factory=dict)
    changed: bool = False

    def to_json(self) -> dict[str, Any]:
        flat = [(i, x) for i in sorted(self.records) for x in self.records[i]]
        return {
            "i": [i for i, _ in flat],
            "y": [x.label for _, x in flat],
            "s": [x.rank[0] for _, x in flat],
            "o": [x.rank[1] for _, x in flat],
            "r": [x.rank[2] for _, x in flat],
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any], ids: Sequence[str]) -> HourLabels:
        out = cls()
        for i, y, s, o, r in zip(body["i"], body["y"], body["s"], body["o"], body["r"], strict=True):
            out.records.setdefault(i, []).append(Label(ids[i], y, (s, o, r), r))
        return out

    def holding(self) -> dict[int, Label]:
        """The label that holds for each labelled row."""
        out = {}
        for i, held in self.records.items():
            best = held[0]
            for x in held[1:]:
                if x.beats(best):
                    best = x
            out[i] = best
        return out

    def by_id(self, rows: HourRows) -> dict[str, list[Label]]:
        return {rows.prediction_ids[i]: held for i, held in self.records.items()}

    def join(self, rows: HourRows, labels: Mapping[str, Sequence[Label]]) -> set[str]:
        """Add the records of `labels` (id -> records) to the rows they label; returns the ids matched."""
        matched: set[str] = set()
        if not labels:
            return matched
        for i, pid in enumerate(rows.prediction_ids):
            new = labels.get(pid)
            if not new:
                continue
            matched.add(pid)
            held = self.records.setdefault(i, [])
            for x in new:
                if x not in held:
                    held.append(x)
                    self.changed = True
        return matched

    def received_in(self, lo: str, hi: str) -> int:
        """Records received from minute `lo` to minute `hi`, both included."""
        return sum(lo <= x.received_at[:16] <= hi for held in self.records.values() for x in held)


@dataclass
class HourState:
    partial: HourPartial
    rows: HourRows
    labels: HourLabels


@dataclass
class DayRollup:
    version: int
    day: str
    hours: dict[str, HourState] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        body = {
            "format": ROLLUP_FORMAT,
            "version": self.version,
            "day": self.day,
            "hours": {
                hh: {
                    "partial": h.partial.model_dump(mode="json"),
                    "rows": {"id": h.rows.prediction_ids, "p": h.rows.probability, "g": h.rows.groups},
                    "labels": h.labels.to_json(),
                }
                for hh, h in sorted(self.hours.items())
            },
        }
        return gzip.compress(json.dumps(body, separators=(",", ":")).encode("utf-8"), 5, mtime=0)

    @classmethod
    def from_bytes(cls, data: bytes, sensitive: Sequence[str]) -> DayRollup | None:
        body = json.loads(gzip.decompress(data))
        if body.get("format") != ROLLUP_FORMAT:
            return None  # another format: its hours are profiled again
        hours = {}
        for hh, h in body["hours"].items():
            n = len(h["rows"]["id"])
            rows = HourRows(
                prediction_ids=h["rows"]["id"],
                probability=h["rows"]["p"],
                groups={a: h["rows"]["g"].get(a, [None] * n) for a in sensitive},
            )
            hours[hh] = HourState(
                HourPartial.model_validate(h["partial"]),
                rows,
                HourLabels.from_json(h["labels"], rows.prediction_ids),
            )
        return cls(version=int(body["version"]), day=body["day"], hours=hours)


@dataclass
class WindowLabels:
    """What the label join of one version's window found."""

    # ids whose labels a stored hour now holds (they wait no longer)
    matched_stored: set[str] = field(default_factory=set)
    # feedback records received in the window that label one of its predictions
    received_matched: int = 0


def _read_day(
    store_at: PartialStore, version: int, day: datetime, sensitive: Sequence[str], stats: ReadStats
) -> DayRollup:
    empty = DayRollup(version=version, day=f"{day:%Y-%m-%d}")
    try:
        data = get_bytes(store_at.s3, store_at.partial_bucket, rollup_key(version, day))
    except NotFoundError:
        return empty
    stats.partial_gets += 1
    stats.partial_bytes += len(data)
    try:
        held = DayRollup.from_bytes(data, sensitive)
    except (ValueError, KeyError, OSError):
        return empty
    return held if held is not None else empty


def _add_labelled(acc: WindowAccumulator, rows: HourRows, labels: Mapping[int, Label]) -> None:
    if not labels:
        return
    idx = sorted(labels)
    acc.labelled.probability.append(np.array([rows.probability[i] for i in idx], dtype=np.float64))
    acc.labelled.label.append(np.array([labels[i].label for i in idx], dtype=np.int64))
    for attribute in acc.sensitive:
        col = rows.groups.get(attribute)
        acc.labelled.groups[attribute].extend(col[i] if col is not None else None for i in idx)
    acc.matched_ids.update(rows.prediction_ids[i] for i in idx)


def window_from_rollups(
    store_at: PartialStore,
    reference: ReferenceProfile,
    sensitive: Sequence[str],
    numeric: Sequence[str],
    categorical: Sequence[str],
    version: int,
    start: datetime,
    end: datetime,
    labels: Mapping[str, Sequence[Label]],
    *,
    choose_engine: Callable[[int], HourEngine] | None = None,
    stats: ReadStats | None = None,
) -> tuple[WindowAccumulator, WindowLabels]:
    """One version's window [start, end) from its days' roll-ups, with `labels` (id -> the records
    that arrived since the last run and those still waiting) applied to the hours they label."""
    stats = stats if stats is not None else ReadStats()
    s3 = store_at.s3
    listed: dict[str, list[tuple[str, str, int]]] = {}
    for key, etag, size in prediction_objects_listed(s3, store_at.log_bucket, version, start, end):
        listed.setdefault(key.rsplit("/", 1)[0] + "/", []).append((key, etag, size))
    days: dict[str, DayRollup] = {}
    dirty: set[str] = set()
    acc = WindowAccumulator(reference, sensitive)
    found = WindowLabels()
    minutes = iso(start)[:16], iso(end)[:16]
    for hour, lo, hi in hour_spans(start, end):
        objects = listed.get(prediction_prefix(version, hour), [])
        covers: Manifest = [(key, etag) for key, etag, _ in objects]
        day_name, hh = f"{hour:%Y-%m-%d}", f"{hour:%H}"
        if day_name not in days:
            days[day_name] = _read_day(store_at, version, hour, sensitive, stats)
        day = days[day_name]
        held = day.hours.get(hh)
        current = held is not None and [tuple(c) for c in held.partial.covers] == covers
        whole = lo is None and hi is None
        if not covers:
            if held is not None and whole:
                del day.hours[hh]  # its objects are gone
                dirty.add(day_name)
            continue
        if current and held is not None:
            found.matched_stored |= held.labels.join(held.rows, labels)
            if held.labels.changed:
                dirty.add(day_name)
        if whole and current and held is not None:
            partial, rows, hour_labels = held.partial, held.rows, held.labels
            stats.hours_reused += 1
        else:
            size = sum(s for _, _, s in objects)
            engine = choose_engine(size) if choose_engine else python_hour_profile
            partial, rows = engine(
                s3,
                store_at.log_bucket,
                reference,
                sensitive,
                numeric,
                categorical,
                version,
                hour,
                covers,
                lo,
                hi,
            )
            stats.hours_computed += 1
            if partial.bytes_read:  # the function read the objects (Athena reads them itself)
                stats.log_gets += len(covers)
                stats.log_bytes += partial.bytes_read
            stats.engines[partial.engine] = stats.engines.get(partial.engine, 0) + 1
            # Labels already applied to this hour follow their predictions into the new rows.
            earlier = held.labels.by_id(held.rows) if held is not None else {}
            fresh = HourLabels()
            fresh.join(rows, earlier)
            matched = fresh.join(rows, labels)
            if whole:
                day.hours[hh] = HourState(partial, rows, fresh)
                dirty.add(day_name)
                found.matched_stored |= matched
            hour_labels = fresh
        merge_into(acc, partial)
        _add_labelled(acc, rows, hour_labels.holding())
        found.received_matched += hour_labels.received_in(*minutes)
    for name in sorted(dirty):
        day = days[name]
        put_bytes(
            s3,
            store_at.partial_bucket,
            rollup_key(version, datetime.fromisoformat(name)),
            day.to_bytes(),
            "application/gzip",
        )
    return acc, found
