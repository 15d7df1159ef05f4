"""A window assembled from daily roll-ups: one listing and one read per day, however many hours.

A day's roll-up (`reports/partials/model_version=V/dt=D/day.json.gz`) holds, for each whole hour of
the day a run has profiled, the hour's partial (with the manifest of the log objects it covers) and
a summary of its labels (`LabelSummary`: each labelled row's holding label, probability and
sensitive values, which is all the window's performance needs). Two objects per hour hold what only
the label join needs: its rows (id, probability, sensitive values of every prediction),
`rows-HH-<digest>.json.gz`, written once per manifest, and its label records (every feedback record
joined to a row), `labels-HH-<digest>.json.gz`, written when they change. Both are read only when a
label that arrived since the last run may be one of that hour's: the hour an id made by the predict
function names (`mlops.shared.prediction_ids`), or every stored hour for an id a client sent. So a
run reads the summaries of the window's labelled rows, not its rows nor its records. A run reads the
roll-up of each day the window touches, lists the log objects of the hours that may have changed
(below), profiles again only the hours whose objects changed (as `mlops.monitoring.partials` does
hour by hour), joins the labels that arrived since the last run to the hours that may hold their
predictions, and labels still waiting to the hours it profiled, and rewrites the days that changed.
A late label so changes the labels of the hour of the prediction it labels, and a re-run applies
nothing new. Hours cut by the window's edges are profiled for their part and not stored; their
labels come from the stored whole hour when there is one.

An hour settles once a listing made `SETTLE_AFTER` past its end found its objects: the log writer marks
every object it writes to an hour later than `mlops.cloud.logstore.LATE_AFTER` past its end, so a
settled hour is listed again only when a marker names it, when its hour of the day comes round (once a
day, so a deleted object is seen within a day), or when its day roll-up is missing. A run's listing so
follows the traffic since the last run, not the length of the window.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mlops.cloud.logstore import LATE_AFTER, PARTIALS_PREFIX, prediction_objects_by_hour, prediction_prefix
from mlops.cloud.storage import get_bytes, iso, put_bytes
from mlops.monitoring.labels import (
    LANDING_MARGIN,
    FeedbackCursor,
    FeedbackReads,
    Label,
    labels_of,
    new_feedback,
)
from mlops.monitoring.partials import (
    HourEngine,
    HourPartial,
    HourRows,
    Manifest,
    PartialStore,
    ReadStats,
    hour_spans,
    merge_into,
    partial_of,
    python_hour_profile,
)
from mlops.monitoring.profile import ReferenceProfile
from mlops.monitoring.window import WindowAccumulator
from mlops.shared.errors import NotFoundError
from mlops.shared.prediction_ids import served_hour

ROLLUP_FORMAT = 4
# Day roll-ups that held their hours' label records inline: still read, and written anew when next written.
RECORDS_INLINE_FORMAT = 3
# Day roll-ups that held their hours' rows inline: still read (their labels kept).
ROWS_INLINE_FORMAT = 2
ROLLUP_NAME = "day.json.gz"
# A write stamped in time (not late) lands within LANDING_MARGIN of its stamp.
SETTLE_AFTER = LATE_AFTER + LANDING_MARGIN
HOURS_NAME = "hours.json.gz"
# A day object is written on every run that changes the day. At 1,000 req/s its label summaries are
# some 50 MB of JSON: level 1 writes it in 60% of level 5's time, 9% larger.
DAY_GZIP_LEVEL = 1


def rollup_key(version: int, day: datetime, name: str = ROLLUP_NAME) -> str:
    return f"{PARTIALS_PREFIX}model_version={version}/dt={day:%Y-%m-%d}/{name}"


# An hour's stored labels, a column each: row position, label, source rank, observed and received
# time, and the labelled row's prediction id and probability (its sensitive values under "g").
STORED_LABEL_COLUMNS = ("i", "y", "s", "o", "r", "id", "p")

# What a labelled row brings to the window's performance: its probability and sensitive values.
RowFacts = tuple[float, dict[str, Any]]


class HourLabels:
    """The performance partial of an hour: for each labelled row (its position in the hour's rows),
    every feedback record received for it, and the row's probability and sensitive values. The
    label that holds is the one that beats the others; keeping the records makes applying one twice
    a no-op and lets a window count its own feedback. The window's performance is computed from
    these alone: an hour's rows are read only when a new label may be one of theirs.

    An hour read back holds its summary only (`summary_json`: each labelled row's holding label,
    probability and sensitive values, and the records received per minute), which is all the
    window's performance and counts need; its records (`to_json`, an object of their own) are read
    when a new label reaches the hour, and kept as stored columns until then too: most hours of a
    window get none in a run, so neither a record is built nor the records read."""

    def __init__(
        self, records: dict[int, list[Label]] | None = None, facts: dict[int, RowFacts] | None = None
    ) -> None:
        self._records = records if records is not None else {}
        self._facts = facts if facts is not None else {}
        self._stored: dict[str, Any] | None = None
        # A summary read back (its JSON and its decoded columns), and what reads the records.
        self._summary: tuple[dict[str, Any], LabelSummary] | None = None
        self._load: Callable[[], Mapping[str, Any]] | None = None
        self._rows = 0
        self.changed = False

    @classmethod
    def from_summary(
        cls, body: Mapping[str, Any], rows: int, load: Callable[[], Mapping[str, Any]]
    ) -> HourLabels:
        """An hour's labels as a day object holds them: the summary, and `load` reading the records
        (of the hour's `rows` rows) when they are needed. Raises ValueError on a summary that cannot
        be read."""
        out = cls()
        out._summary = (dict(body), LabelSummary.of_json(body))
        out._load, out._rows = load, rows
        return out

    def _read_records(self) -> None:
        """The stored records in place of the summary (reading them; raises when they cannot be
        the hour's, and the summary stays)."""
        if self._summary is None or self._load is None:
            return
        self._stored = _label_columns(self._load(), self._rows)
        self._summary, self._load = None, None

    def _unpack(self) -> None:
        self._read_records()
        if self._stored is None:
            return
        body = self._stored
        records: dict[int, list[Label]] = {}
        facts: dict[int, RowFacts] = {}
        groups = body["g"]
        names = list(groups)
        row_groups = (
            (dict(zip(names, values, strict=True)) for values in zip(*groups.values(), strict=True))
            if names
            else ({} for _ in body["i"])
        )
        ranks = zip(body["s"], body["o"], body["r"], strict=True)
        labels = map(Label, body["id"], body["y"], ranks, body["r"])
        row_facts = zip(body["p"], row_groups, strict=True)
        if self._one_record_per_row():
            # The common case in C loops: each row its one record, its facts as stored.
            records = {i: [x] for i, x in zip(body["i"], labels, strict=True)}
            facts = dict(zip(body["i"], row_facts, strict=True))
        else:
            for i, x, f in zip(body["i"], labels, row_facts, strict=True):
                records.setdefault(i, []).append(x)
                if i not in facts:
                    facts[i] = f
        self._records, self._facts, self._stored = records, facts, None

    @property
    def records(self) -> dict[int, list[Label]]:
        self._unpack()
        return self._records

    def to_json(self) -> dict[str, Any]:
        """The records, a column each (STORED_LABEL_COLUMNS, and the sensitive values under "g")."""
        self._read_records()
        if self._stored is not None:
            return self._stored
        flat = [(i, x) for i in sorted(self._records) for x in self._records[i]]
        attributes = sorted({a for _, g in self._facts.values() for a in g})
        return {
            "i": [i for i, _ in flat],
            "y": [x.label for _, x in flat],
            "s": [x.rank[0] for _, x in flat],
            "o": [x.rank[1] for _, x in flat],
            "r": [x.rank[2] for _, x in flat],
            "id": [x.prediction_id for _, x in flat],
            "p": [self._facts.get(i, _NO_FACTS)[0] for i, _ in flat],
            "g": {a: [self._facts.get(i, _NO_FACTS)[1].get(a) for i, _ in flat] for a in attributes},
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any], rows: int) -> HourLabels:
        """An hour's stored labels (of its `rows` rows). Raises ValueError when the columns cannot
        be this hour's."""
        out = cls()
        out._stored = _label_columns(body, rows)
        return out

    @classmethod
    def of_rows(cls, body: Mapping[str, Any], rows: HourRows) -> HourLabels:
        """Labels stored as positions into rows held beside them (the day roll-ups of format 2)."""
        columns = {k: list(body[k]) for k in ("i", "y", "s", "o", "r")}
        if len({len(c) for c in columns.values()}) != 1:
            raise ValueError("label columns of different lengths")
        positions = columns["i"]
        if positions and (min(positions) < 0 or max(positions) >= len(rows.prediction_ids)):
            raise ValueError("a label names a row the hour does not hold")
        out = cls()
        for i, y, s, o, r in zip(*columns.values(), strict=True):
            out._records.setdefault(i, []).append(Label(rows.prediction_ids[i], y, (s, o, r), r))
            out._facts.setdefault(i, _facts_of(rows, i))
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

    def _one_record_per_row(self) -> bool:
        """Whether the stored columns hold one record per labelled row (ascending positions, as
        `to_json` writes them): the common case, one label per prediction, needs no choosing."""
        if self._stored is None or self._summary is not None:
            return False
        positions = self._stored["i"]
        return len(positions) < 2 or bool(np.all(np.diff(np.asarray(positions, dtype=np.int64)) > 0))

    def holding_values(self) -> dict[int, int]:
        """The value of the label that holds for each labelled row (as `holding`, from the columns)."""
        if self._stored is None:
            return {i: x.label for i, x in self.holding().items()}
        if self._one_record_per_row():
            return dict(zip(self._stored["i"], self._stored["y"], strict=True))
        best: dict[int, tuple[tuple[int, str, str], int]] = {}
        for i, y, s, o, r in zip(*(self._stored[k] for k in ("i", "y", "s", "o", "r")), strict=True):
            key = ((s, o, r), y)  # as `Label.beats` orders them
            held = best.get(i)
            if held is None or key > held:
                best[i] = key
        return {i: key[1] for i, key in best.items()}

    def labelled(self, sensitive: Sequence[str]) -> tuple[Any, Any, dict[str, list[Any]]]:
        """Each labelled row, in row order: its probability, holding label and sensitive values
        (lists, or arrays from a summary)."""
        if self._summary is not None:
            summary = self._summary[1]
            none = [None] * summary.rows
            return summary.probability, summary.label, {a: summary.groups.get(a, none) for a in sensitive}
        if self._one_record_per_row():
            # Row order already, each record its row's holding label: the columns as stored.
            body = self._stored
            assert body is not None
            groups = body["g"]
            none = [None] * len(body["i"])
            return body["p"], body["y"], {a: groups.get(a, none) for a in sensitive}
        values = self.holding_values()
        order = sorted(values)
        if self._stored is not None:
            body = self._stored
            first: dict[int, int] = {}
            for k, i in enumerate(body["i"]):
                first.setdefault(i, k)
            at = [first[i] for i in order]
            groups = body["g"]
            return (
                [body["p"][k] for k in at],
                [values[i] for i in order],
                {a: [groups[a][k] if a in groups else None for k in at] for a in sensitive},
            )
        return (
            [self._facts[i][0] for i in order],
            [values[i] for i in order],
            {a: [self._facts[i][1].get(a) for i in order] for a in sensitive},
        )

    def received_per_minute(self) -> dict[str, int]:
        """Records by the minute they were received ("YYYY-MM-DDTHH:MM")."""
        if self._summary is not None:
            return dict(self._summary[1].received)
        if self._stored is not None:
            return dict(Counter(r[:16] for r in self._stored["r"]))
        return dict(Counter(x.received_at[:16] for held in self._records.values() for x in held))

    def summary_json(self, sensitive: Sequence[str]) -> dict[str, Any]:
        """What a day object keeps of the hour's labels (`LabelSummary`)."""
        if self._summary is not None:
            return self._summary[0]
        p, y, groups = self.labelled(sensitive)
        return LabelSummary.to_json(p, y, groups, self.received_per_minute())

    def by_id(self) -> dict[str, list[Label]]:
        return {held[0].prediction_id: held for held in self.records.values()}

    def join(
        self, rows: HourRows, labels: Mapping[str, Sequence[Label]], held_already: set[Label] | None = None
    ) -> set[str]:
        """Add the records of `labels` (id -> records) to the rows they label; returns the ids matched.
        Records the rows held already are added to `held_already`."""
        matched: set[str] = set()
        if not labels:
            return matched
        ids = rows.prediction_ids
        # The smaller side is walked: the labels, each found among the hour's ids (`HourRows.finder`,
        # built once per hour), when they are fewer, as they are in a steady run, else the hour's rows.
        # An id the hour holds twice labels each of its rows.
        find = rows.finder() if len(labels) < len(ids) else None
        if find is not None:
            found = ((i, pid, new) for pid, new in labels.items() for i in find(pid))
        else:
            found = ((i, pid, labels[pid]) for i, pid in enumerate(ids) if pid in labels)
        for i, pid, new in found:
            if not new:
                continue
            matched.add(pid)
            held = self.records.setdefault(i, [])
            if i not in self._facts:
                self._facts[i] = _facts_of(rows, i)
            for x in new:
                if x not in held:
                    held.append(x)
                    self.changed = True
                elif held_already is not None:
                    held_already.add(x)
        return matched

    def received_in(self, lo: str, hi: str) -> int:
        """Records received from minute `lo` to minute `hi`, both included."""
        return sum(n for minute, n in self.received_per_minute().items() if lo <= minute <= hi)


_NO_FACTS: RowFacts = (float("nan"), {})


def _label_columns(body: Mapping[str, Any], rows: int) -> dict[str, Any]:
    """Stored label records (`HourLabels.to_json`) of an hour of `rows` rows; raises ValueError when
    the columns cannot be that hour's."""
    columns: dict[str, Any] = {k: list(body[k]) for k in STORED_LABEL_COLUMNS}
    columns["g"] = {str(a): list(v) for a, v in dict(body["g"]).items()}
    positions = columns["i"]
    if len({len(c) for c in (*columns.values(), *columns["g"].values()) if isinstance(c, list)}) != 1:
        raise ValueError("label columns of different lengths")
    if positions and (min(positions) < 0 or max(positions) >= rows):
        raise ValueError("a label names a row the hour does not hold")
    return columns


def _coded(values: Sequence[Any]) -> dict[str, Any]:
    """A column as its distinct values and a code per row (found in C: a column can hold millions)."""
    found, distinct = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    codes = np.asarray(found, dtype=np.int32)
    return {"levels": [_level(v) for v in distinct], "codes": base64.b64encode(codes.tobytes()).decode()}


def _decoded(body: Mapping[str, Any], n: int) -> list[Any]:
    codes = np.frombuffer(base64.b64decode(body["codes"]), dtype=np.int32)
    if codes.size != n or (n and (codes.min() < 0 or codes.max() >= len(body["levels"]))):
        raise ValueError("a coded column that is not the hour's")
    levels: list[Any] = list(body["levels"]) or [None]
    return list(np.asarray(levels, dtype=object)[codes].tolist())


@dataclass(frozen=True)
class LabelSummary:
    """What a window needs of an hour's labels, as a day object keeps it: per labelled row (in row
    order) the holding label and the row's probability and sensitive values, and how many records
    arrived in each minute. At 1,000 requests/s and 5% labelled an hour holds 180,000 labelled
    rows: as binary columns they are 1.2 MB, where the records (ids, ranks, times) as JSON are
    some 20 MB. Probabilities are kept as 32-bit floats when that loses nothing (the ONNX model's
    answers are 32-bit), else as 64-bit."""

    probability: np.ndarray
    label: np.ndarray
    groups: dict[str, list[Any]]
    received: dict[str, int]

    @property
    def rows(self) -> int:
        return int(self.label.size)

    @staticmethod
    def to_json(
        probability: Sequence[float],
        label: Sequence[int],
        groups: Mapping[str, Sequence[Any]],
        received: Mapping[str, int],
    ) -> dict[str, Any]:
        p = np.asarray(probability, dtype="<f8")
        narrow = p.astype("<f4")
        width = 4 if np.array_equal(narrow.astype("<f8"), p, equal_nan=True) else 8
        return {
            "n": int(p.size),
            "p": base64.b64encode((narrow if width == 4 else p).tobytes()).decode(),
            "p_bytes": width,
            "y": base64.b64encode(np.asarray(label, dtype=np.uint8).tobytes()).decode(),
            "g": {a: _coded(values) for a, values in groups.items()},
            "received": dict(sorted(received.items())),
        }

    @classmethod
    def of_json(cls, body: Mapping[str, Any]) -> LabelSummary:
        n = int(body["n"])
        width = int(body["p_bytes"])
        if width not in (4, 8):
            raise ValueError("probabilities of an unknown width")
        p = np.frombuffer(base64.b64decode(body["p"]), dtype=f"<f{width}").astype(np.float64)
        y = np.frombuffer(base64.b64decode(body["y"]), dtype=np.uint8).astype(np.int64)
        if p.size != n or y.size != n:
            raise ValueError("summary columns of different lengths")
        groups = {str(a): _decoded(coded, n) for a, coded in dict(body["g"]).items()}
        received = {str(m): int(c) for m, c in dict(body["received"]).items()}
        return cls(p, y, groups, received)


def _facts_of(rows: HourRows, i: int) -> RowFacts:
    p = float(rows.probability[i]) if i < len(rows.probability) else float("nan")
    return p, {a: column[i] for a, column in rows.groups.items()}


def _level(value: Any) -> Any:
    # pandas hands back a missing value as NaN; the rows held None.
    return None if value is None or (isinstance(value, float) and value != value) else value


def rows_json(rows: HourRows) -> dict[str, Any]:
    """An hour's rows in a form one JSON parse reads fast: ids as one text, probabilities as bytes,
    each sensitive column as its distinct values and a code per row."""
    ids: str | list[str] = rows.prediction_ids
    if not any("\n" in i for i in rows.prediction_ids):
        ids = "\n".join(rows.prediction_ids)
    groups = {attribute: _coded(values) for attribute, values in rows.groups.items()}
    p = np.asarray(rows.probability, dtype="<f8")
    return {
        "n": len(rows.prediction_ids),
        "id": ids,
        "p": base64.b64encode(p.tobytes()).decode(),
        "g": groups,
    }


def rows_from_json(body: Mapping[str, Any], sensitive: Sequence[str]) -> HourRows:
    n = int(body["n"])
    ids = body["id"]
    if isinstance(ids, str):
        ids = ids.split("\n") if n else []
    groups = {a: _decoded(body["g"][a], n) if a in body["g"] else [None] * n for a in sensitive}
    probability = np.frombuffer(base64.b64decode(body["p"]), dtype="<f8").tolist()
    return HourRows(prediction_ids=ids, probability=probability, groups=groups)


class HourState:
    """One stored hour: its manifest, labels and rows (read from their own object only when a new
    label may be one of theirs), and its partial (read and validated only when its counts are
    needed: a day inside the window is merged from the day's own partial)."""

    def __init__(
        self,
        partial: HourPartial | Callable[[], dict[str, Any]],
        rows: HourRows | Callable[[], HourRows],
        labels: HourLabels,
        covers: Manifest | None = None,
        listed: str | None = None,
        rows_name: str | None = None,
        row_count: int | None = None,
        labels_name: str | None = None,
    ) -> None:
        self._partial = partial
        self._rows = rows
        self.labels = labels
        # When a run's listing last found exactly `covers` (None: not recorded).
        self.listed = listed
        if covers is None:
            assert isinstance(partial, HourPartial)
            covers = [(str(k), str(e)) for k, e in partial.covers]
        self.covers = covers
        # The objects the rows and the label records are stored in (None: not written yet).
        self.rows_name = rows_name
        self.labels_name = labels_name
        if row_count is None:
            assert isinstance(rows, HourRows)
            row_count = len(rows.prediction_ids)
        self.row_count = row_count

    @property
    def partial(self) -> HourPartial:
        if not isinstance(self._partial, HourPartial):
            self._partial = HourPartial.model_validate(self._partial())
        return self._partial

    @property
    def rows(self) -> HourRows:
        if not isinstance(self._rows, HourRows):
            self._rows = self._rows()
            if len(self._rows.prediction_ids) != self.row_count:
                raise ValueError("the stored rows are not the hour's")
        return self._rows


def labels_name(hh: str, body: bytes) -> str:
    """The name of an hour's label records object: a digest of what it holds."""
    return f"labels-{hh}-{hashlib.sha256(body).hexdigest()[:16]}.json.gz"


def rows_name(hh: str, covers: Manifest) -> str:
    """The name of an hour's rows object: the rows follow from the log objects it covers."""
    digest = hashlib.sha256(json.dumps(covers, separators=(",", ":")).encode("utf-8")).hexdigest()[:16]
    return f"rows-{hh}-{digest}.json.gz"


class DayRollup:
    """A day's stored hours and the merge of their counts (`whole`).

    Four kinds of object: `day.json.gz` (the merge, and each hour's manifest and label summary) is
    read for every day a window touches; `hours.json.gz` (each hour's partial) only for a day the
    window cuts or whose counts changed, and written only then; `rows-HH-<digest>.json.gz` (an
    hour's rows) and `labels-HH-<digest>.json.gz` (its label records), for the label join, only when
    a new label may be one of that hour's, the rows written once per manifest and the records when
    they change. A day whose labels or listing stamps alone changed is one read and one write of its
    day object, and a records object per hour its new labels reached.
    """

    def __init__(
        self,
        version: int,
        day: str,
        hours: dict[str, HourState] | None = None,
        whole: HourPartial | dict[str, Any] | None = None,
    ) -> None:
        self.version, self.day = version, day
        self.hours = hours if hours is not None else {}
        self.whole = whole
        self.counts_changed = False

    def whole_partial(self, reference: ReferenceProfile, sensitive: Sequence[str]) -> HourPartial:
        """The merge of the day's hour partials (stored with the day; made again when they changed)."""
        if self.whole is None or self.counts_changed:
            acc = WindowAccumulator(reference, sensitive)
            for _, state in sorted(self.hours.items()):
                merge_into(acc, state.partial)
            covers = [c for _, state in sorted(self.hours.items()) for c in state.covers]
            self.whole = partial_of(acc, self.version, datetime.fromisoformat(self.day), covers)
            self.counts_changed = False
        elif not isinstance(self.whole, HourPartial):
            self.whole = HourPartial.model_validate(self.whole)
        return self.whole

    def unwritten_rows(self) -> Iterator[tuple[str, bytes]]:
        """(name, bytes) of each hour's rows object not written yet; names them in their hours."""
        for hh, h in sorted(self.hours.items()):
            if h.rows_name is None:
                body = json.dumps(rows_json(h.rows), separators=(",", ":")).encode("utf-8")
                h.rows_name = rows_name(hh, h.covers)
                # Level 1: a full hour's rows are some 180 MB of mostly random ids, which level 5
                # packs 5% smaller in two and a half times the time.
                yield h.rows_name, gzip.compress(body, 1, mtime=0)

    def unwritten_labels(self) -> Iterator[tuple[str, bytes]]:
        """(name, bytes) of each hour's label records not written as they are; names them in their
        hours. Only hours a new label reached (or new hours) have any."""
        for hh, h in sorted(self.hours.items()):
            if h.labels_name is None or h.labels.changed:
                body = json.dumps(h.labels.to_json(), separators=(",", ":")).encode("utf-8")
                h.labels_name = labels_name(hh, body)
                h.labels.changed = False
                yield h.labels_name, gzip.compress(body, 1, mtime=0)

    def day_bytes(self, reference: ReferenceProfile, sensitive: Sequence[str]) -> bytes:
        assert all(h.rows_name is not None for h in self.hours.values()), "rows objects first"
        assert all(h.labels_name is not None for h in self.hours.values()), "label records first"
        body = {
            "format": ROLLUP_FORMAT,
            "version": self.version,
            "day": self.day,
            "whole": self.whole_partial(reference, sensitive).model_dump(mode="json"),
            "hours": {
                hh: {
                    "covers": h.covers,
                    "listed": h.listed,
                    "rows": {"name": h.rows_name, "n": h.row_count},
                    "labels": {"name": h.labels_name, "summary": h.labels.summary_json(sensitive)},
                }
                for hh, h in sorted(self.hours.items())
            },
        }
        return gzip.compress(json.dumps(body, separators=(",", ":")).encode("utf-8"), DAY_GZIP_LEVEL, mtime=0)

    def hours_bytes(self) -> bytes:
        body = {hh: h.partial.model_dump(mode="json") for hh, h in sorted(self.hours.items())}
        return gzip.compress(json.dumps(body, separators=(",", ":")).encode("utf-8"), 5, mtime=0)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        sensitive: Sequence[str],
        partials: Callable[[], dict[str, Any]],
        rows: Callable[[str], HourRows] | None = None,
        records: Callable[[str], Mapping[str, Any]] | None = None,
    ) -> DayRollup | None:
        """A stored day; `partials` reads its hours' partials (once) when one is needed, `rows` an
        hour's rows object by name when they are, `records` an hour's label records alike."""
        body = json.loads(gzip.decompress(data))
        if body.get("format") not in (ROLLUP_FORMAT, RECORDS_INLINE_FORMAT, ROWS_INLINE_FORMAT):
            return None  # another format: its hours are profiled again
        held: dict[str, Any] = {}

        def hour_partial(hh: str) -> Callable[[], dict[str, Any]]:
            def read() -> dict[str, Any]:
                if not held:
                    held.update(partials())
                return dict(held[hh])

            return read

        def no_rows(name: str) -> HourRows:
            raise ValueError(f"no reader for the rows object {name}")

        def no_records(name: str) -> Mapping[str, Any]:
            raise ValueError(f"no reader for the label records object {name}")

        read_rows = rows or no_rows
        read_records = records or no_records
        hours = {}
        for hh, h in body["hours"].items():
            covers = [(str(k), str(e)) for k, e in h["covers"]]
            if body["format"] == ROWS_INLINE_FORMAT:
                # An earlier layout: the rows inline, labels as positions into them. Kept, and
                # written in today's layout when the day is next written.
                inline = rows_from_json(h["rows"], sensitive)
                state = HourState(
                    hour_partial(hh), inline, HourLabels.of_rows(h["labels"], inline), covers, h.get("listed")
                )
            else:
                name, n = str(h["rows"]["name"]), int(h["rows"]["n"])
                records_name = None
                if body["format"] == RECORDS_INLINE_FORMAT:
                    # The records inline: written as an object of their own when the day is next written.
                    labels = HourLabels.from_json(h["labels"], n)
                else:
                    records_name = str(h["labels"]["name"])
                    labels = HourLabels.from_summary(
                        h["labels"]["summary"], n, functools.partial(read_records, records_name)
                    )
                state = HourState(
                    hour_partial(hh),
                    functools.partial(read_rows, name),
                    labels,
                    covers,
                    h.get("listed"),
                    rows_name=name,
                    row_count=n,
                    labels_name=records_name,
                )
            hours[hh] = state
        return cls(int(body["version"]), body["day"], hours, whole=body.get("whole"))


@dataclass
class WindowLabels:
    """What the label join of one version's window found."""

    # ids whose labels a stored hour now holds (they wait no longer)
    matched_stored: set[str] = field(default_factory=set)
    # feedback records received in the window that label one of its predictions
    received_matched: int = 0
    # records an hour held before they were joined (a copy of a message SQS delivered twice)
    held_already: set[Label] = field(default_factory=set)


def _read_day(
    store_at: PartialStore, version: int, day: datetime, sensitive: Sequence[str], stats: ReadStats
) -> DayRollup:
    empty = DayRollup(version, f"{day:%Y-%m-%d}")
    s3, bucket = store_at.s3, store_at.partial_bucket
    try:
        data = get_bytes(s3, bucket, rollup_key(version, day))
    except NotFoundError:
        return empty
    stats.partial_gets += 1
    stats.partial_bytes += len(data)

    def partials() -> dict[str, Any]:
        raw = get_bytes(s3, bucket, rollup_key(version, day, HOURS_NAME))
        stats.partial_gets += 1
        stats.partial_bytes += len(raw)
        return dict(json.loads(gzip.decompress(raw)))

    def rows(name: str) -> HourRows:
        raw = get_bytes(s3, bucket, rollup_key(version, day, name))
        stats.partial_gets += 1
        stats.partial_bytes += len(raw)
        stats.hours_rows_read += 1
        return rows_from_json(json.loads(gzip.decompress(raw)), sensitive)

    def records(name: str) -> Mapping[str, Any]:
        raw = get_bytes(s3, bucket, rollup_key(version, day, name))
        stats.partial_gets += 1
        stats.partial_bytes += len(raw)
        stats.hours_labels_read += 1
        return dict(json.loads(gzip.decompress(raw)))

    try:
        held = DayRollup.from_bytes(data, sensitive, partials, rows, records)
    except (ValueError, KeyError, TypeError, OSError):
        return empty
    return held if held is not None else empty


def _add_labelled(acc: WindowAccumulator, labels: HourLabels) -> None:
    p, y, groups = labels.labelled(acc.sensitive)
    if not len(p):
        return
    acc.labelled.probability.append(np.asarray(p, dtype=np.float64))
    acc.labelled.label.append(np.asarray(y, dtype=np.int64))
    for attribute in acc.sensitive:
        acc.labelled.groups[attribute].extend(groups[attribute])


def sql_labels(joined: Sequence[tuple[str, int, str, str, str]]) -> dict[str, list[Label]]:
    """The label join's answer (`mlops.monitoring.engine.LABEL_COLUMNS`) as records by prediction id."""
    out: dict[str, list[Label]] = {}
    for pid, y, source, observed, received in joined:
        rank = (1 if source == "explicit" else 0, observed, received)
        out.setdefault(pid, []).append(Label(pid, int(y), rank, received))
    return out


def _days_inside(start: datetime, end: datetime) -> set[str]:
    """Days whose 24 hours all lie in [start, end)."""
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if day < start:
        day += timedelta(days=1)
    out = set()
    while day + timedelta(days=1) <= end:
        out.add(f"{day:%Y-%m-%d}")
        day += timedelta(days=1)
    return out


def settles_at(hour: datetime) -> str:
    """From when a listing of `hour` found all its objects but late ones (ISO time)."""
    return iso(hour + timedelta(hours=1) + SETTLE_AFTER)


def settled(state: HourState, hour: datetime) -> bool:
    """Whether a listing made `SETTLE_AFTER` past the hour's end found the stored objects."""
    return state.listed is not None and state.listed >= settles_at(hour)


# What reading a stored object that is missing or damaged raises.
_UNREADABLE = (NotFoundError, ValueError, KeyError, TypeError, OSError, EOFError)


def _runs(hours: Sequence[datetime]) -> Iterator[tuple[datetime, datetime]]:
    """[first, end) of each run of consecutive hours in `hours` (sorted)."""
    i = 0
    while i < len(hours):
        j = i
        while j + 1 < len(hours) and hours[j + 1] == hours[j] + timedelta(hours=1):
            j += 1
        yield hours[i], hours[j] + timedelta(hours=1)
        i = j + 1


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
    choose_engine: Callable[..., HourEngine] | None = None,
    stats: ReadStats | None = None,
    now: datetime | None = None,
    late: Collection[datetime] | None = None,
    arrived: Collection[str] | None = None,
) -> tuple[WindowAccumulator, WindowLabels]:
    """One version's window [start, end) from its days' roll-ups, with `labels` (id -> the records
    that arrived since the last run and those still waiting) applied to the hours they label.

    With `now` (this run's time) and `late` (the hours of this version that late writes were marked
    for since the last run), settled hours are not listed; without them, every hour is.

    `arrived` names the ids with a record that arrived since the last run (None: every id). Those
    are joined to the stored hours that may hold them: the hour an id made by the predict function
    names (`mlops.shared.prediction_ids.served_hour`; in another version's window, or in none, it
    is not this version's), or every stored hour for an id a client sent; so only those hours' rows
    are read. A label still waiting was joined
    to every stored hour when it arrived, and can only be one of an hour profiled since: it is
    joined to the hours profiled in this run."""
    stats = stats if stats is not None else ReadStats()
    s3 = store_at.s3
    spans = list(hour_spans(start, end))
    days: dict[str, DayRollup] = {}
    for hour, _, _ in spans:
        if f"{hour:%Y-%m-%d}" not in days:
            days[f"{hour:%Y-%m-%d}"] = _read_day(store_at, version, hour, sensitive, stats)

    def trusted(hour: datetime, lo: str | None, hi: str | None) -> bool:
        held = days[f"{hour:%Y-%m-%d}"].hours.get(f"{hour:%H}")
        return (
            now is not None
            and late is not None
            and lo is None
            and hi is None
            and held is not None
            and settled(held, hour)
            and hour not in late
            and hour.hour != now.hour
        )

    to_list = [hour for hour, lo, hi in spans if not trusted(hour, lo, hi)]
    listed: dict[str, list[tuple[str, str, int]]] = {prediction_prefix(version, h): [] for h in to_list}
    for first, stop in _runs(to_list):
        listed.update(prediction_objects_by_hour(s3, store_at.log_bucket, version, first, stop))
    stats.hours_listed += len(to_list)
    stamp = iso(now) if now is not None else None
    dirty: set[str] = set()
    # Days whose hours' counts changed: their hours object is written again, not only the day's.
    recounted: set[str] = set()
    acc = WindowAccumulator(reference, sensitive)
    found = WindowLabels()
    minutes = iso(start)[:16], iso(end)[:16]
    whole_days = _days_inside(start, end)
    merged_days: set[str] = set()
    days_to_merge: list[str] = []
    computed: set[tuple[str, str]] = set()

    def manifest(hour: datetime) -> tuple[list[tuple[str, str, int]] | None, Manifest, HourState | None]:
        held = days[f"{hour:%Y-%m-%d}"].hours.get(f"{hour:%H}")
        objects = listed.get(prediction_prefix(version, hour))
        if objects is None:  # a settled hour, not listed: its stored manifest holds
            assert held is not None
            return None, held.covers, held
        return objects, [(key, etag) for key, etag, _ in objects], held

    # The labels each stored hour is joined to: those whose id names it, and those that may be anyone's.
    stored = {}
    for hour, _, _ in spans:
        _, covers, held = manifest(hour)
        if held is not None and held.covers == covers:
            stored[hour] = held
    lost: set[datetime] = set()

    # Hours whose label records cannot be read: their labels are read again from the feedback.
    unlabelled: set[datetime] = set()

    def readable(hour: datetime, held: HourState) -> bool:
        """Whether a stored hour's rows and label records can be read (for a label join). An hour
        whose rows object is missing or damaged is profiled again from its logs, its labels following
        their predictions into the new rows; one whose label records are is profiled again too, and
        its labels are those of the feedback received since it began (`relabelled`)."""
        if hour not in lost:
            try:
                _ = held.rows  # read once, kept by the hour
            except _UNREADABLE:
                lost.add(hour)
        if hour not in lost:
            try:
                _ = held.labels.records  # the records object, read once when the summary alone is held
            except _UNREADABLE:
                lost.add(hour)
                unlabelled.add(hour)
        return hour not in lost

    def relabelled(hour: datetime) -> dict[str, list[Label]]:
        """Every feedback record received from `hour` on, but those this run applies anyway: all the
        labels its predictions held."""
        reads = FeedbackReads()
        # A cursor that has read nothing reads from `hour` on, as a first run reads its window.
        records, _ = new_feedback(s3, store_at.log_bucket, FeedbackCursor(), hour, now or end, reads)
        stats.feedback_gets += reads.gets
        stats.feedback_bytes += reads.bytes
        out: dict[str, list[Label]] = {}
        for x in labels_of(records):
            if x not in labels.get(x.prediction_id, ()):
                out.setdefault(x.prediction_id, []).append(x)
        return out

    def earlier_labels(hour: datetime, held: HourState | None) -> Mapping[str, Sequence[Label]]:
        """The labels an hour profiled again held, to follow their predictions into its new rows."""
        if held is None:
            return {}
        if hour not in unlabelled:
            try:
                return held.labels.by_id()
            except _UNREADABLE:
                unlabelled.add(hour)
        return relabelled(hour)

    fresh_ids = labels.keys() if arrived is None else [pid for pid in arrived if pid in labels]
    homes: dict[datetime, dict[str, Sequence[Label]]] = {}
    anyone: dict[str, Sequence[Label]] = {}
    for pid in fresh_ids:
        home = served_hour(pid)
        if home is None:
            anyone[pid] = labels[pid]
        elif home in stored:
            homes.setdefault(home, {})[pid] = labels[pid]
        # else: not a prediction of this window's stored hours (one profiled now is joined below);
        # an id of this form names the one hour the log files it under, in whichever version.
    for home, theirs in sorted(homes.items()):
        held = stored[home]
        if not readable(home, held):
            continue  # profiled again below, and joined to every label then
        found.matched_stored |= held.labels.join(held.rows, theirs, found.held_already)

    for hour, lo, hi in spans:
        day_name, hh = f"{hour:%Y-%m-%d}", f"{hour:%H}"
        day = days[day_name]
        objects, covers, held = manifest(hour)
        current = held is not None and held.covers == covers and hour not in lost
        if current and anyone and held is not None and not readable(hour, held):
            current = False
        if held is not None and not current and objects is None:
            # A settled hour whose rows are lost: listed now, to be profiled again.
            objects = listed[prediction_prefix(version, hour)] = list(
                prediction_objects_by_hour(
                    s3, store_at.log_bucket, version, hour, hour + timedelta(hours=1)
                ).get(prediction_prefix(version, hour), [])
            )
            covers = [(key, etag) for key, etag, _ in objects]
            stats.hours_listed += 1
        whole = lo is None and hi is None
        # A listing that found the stored objects, late enough past the hour: the hour settles, and
        # later runs need not list it.
        settles = stamp is not None and objects is not None and whole and stamp >= settles_at(hour)
        if settles and current and held is not None and not settled(held, hour):
            held.listed = stamp
            dirty.add(day_name)
        if not covers:
            if held is not None and whole:
                del day.hours[hh]  # its objects are gone
                dirty.add(day_name)
                recounted.add(day_name)
                day.counts_changed = True
            continue
        joined_held = current and held is not None
        if current and held is not None:
            if anyone:
                found.matched_stored |= held.labels.join(held.rows, anyone, found.held_already)
            if held.labels.changed:
                dirty.add(day_name)
        partial: HourPartial | None
        if whole and current and held is not None:
            # Counts merged with the whole day below when every hour of the day is in the window.
            partial = None if day_name in whole_days else held.partial
            hour_labels = held.labels
            stats.hours_reused += 1
        else:
            assert objects is not None  # an hour not listed is a stored whole hour, reused above
            size = sum(s for _, _, s in objects)
            # An hour whose stored labels are current needs the profile of its part only.
            engine = choose_engine(size, labelled=not current) if choose_engine else python_hour_profile
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
            computed.add((day_name, hh))
            if partial.bytes_read:  # the function read the objects (Athena reads them itself)
                stats.log_gets += len(covers)
                stats.log_bytes += partial.bytes_read
            stats.engines[partial.engine] = stats.engines.get(partial.engine, 0) + 1
            # Labels already applied to this hour follow their predictions into the new rows.
            earlier = earlier_labels(hour, held)
            fresh = HourLabels()
            fresh.join(rows, earlier)
            # (`earlier` holds this run's labels when they were joined above: no copies to find again.)
            matched = fresh.join(rows, labels, None if joined_held else found.held_already)
            if rows.joined is not None:
                # The engine joined the hour to the window's feedback where the data lives.
                matched |= fresh.join(rows, sql_labels(rows.joined))
            if whole:
                day.hours[hh] = HourState(partial, rows, fresh, listed=stamp)
                dirty.add(day_name)
                recounted.add(day_name)
                day.counts_changed = True
                found.matched_stored |= matched
            hour_labels = fresh
        if partial is not None:
            merge_into(acc, partial)
        elif day_name not in merged_days:
            merged_days.add(day_name)
            days_to_merge.append(day_name)
        _add_labelled(acc, hour_labels)
        found.received_matched += hour_labels.received_in(*minutes)
    for name in days_to_merge:
        held_day = days[name]
        # An hour profiled again in this run is merged already: merge the others' stored counts.
        if held_day.counts_changed:
            for hh, state in sorted(held_day.hours.items()):
                if (name, hh) not in computed:
                    merge_into(acc, state.partial)
        else:
            merge_into(acc, held_day.whole_partial(reference, sensitive))
    for name in sorted(dirty):
        day = days[name]
        at = datetime.fromisoformat(name)
        # Hours first: a day object always has its hours' partials. A day whose counts did not
        # change keeps its hours object, which can then be older than the day object by at most the
        # window (labels reach a day only while it is in the window); the stage configuration keeps
        # the reports' expiry longer than that (infrastructure/config.py).
        for written, body in (*day.unwritten_rows(), *day.unwritten_labels()):
            put_bytes(s3, store_at.partial_bucket, rollup_key(version, at, written), body, "application/gzip")
        if name in recounted:
            put_bytes(s3, store_at.partial_bucket, rollup_key(version, at, HOURS_NAME), day.hours_bytes())
        put_bytes(s3, store_at.partial_bucket, rollup_key(version, at), day.day_bytes(reference, sensitive))
    return acc, found
