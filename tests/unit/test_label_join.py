"""The label join of a stored hour: every row whose prediction id has feedback gets each record once,
whichever side (the labels or the hour's rows) the join walks."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from mlops.monitoring.labels import Label
from mlops.monitoring.partials import HourRows
from mlops.monitoring.rollup import HourLabels


def _expected(
    ids: list[str], labels: dict[str, list[Label]], before: dict[int, list[Label]]
) -> dict[int, list[Label]]:
    """The join spelled out row by row: a row gets each record of its id it does not hold yet."""
    out = {i: list(held) for i, held in before.items()}
    for i, pid in enumerate(ids):
        for x in labels.get(pid, []):
            held = out.setdefault(i, [])
            if x not in held:
                held.append(x)
    return out


def _label(pid: str, rng: random.Random) -> Label:
    received = f"2026-11-2{rng.randint(0, 8)}T{rng.randint(10, 23)}:00:00Z"
    return Label(pid, rng.randint(0, 1), (rng.randint(0, 1), received, received), received)


@pytest.mark.parametrize("ascending", [False, True], ids=["as-logged", "ascending"])
@pytest.mark.parametrize("duplicated_ids", [False, True])
@pytest.mark.parametrize("labelled_share", [0.01, 0.3, 3.0])
def test_the_join_gives_each_labelled_row_its_records_once(
    duplicated_ids: bool, labelled_share: float, ascending: bool
):
    rng = random.Random(f"{duplicated_ids}-{labelled_share}")
    ids = [f"p-{i}" for i in range(2_000)]
    if duplicated_ids:
        ids[17] = ids[1_500]  # a client-chosen id sent twice in the hour
    if ascending:  # as the SQL engines list an hour's ids (found by bisection), else in a dict
        ids.sort()
    twice = [i for i, pid in enumerate(ids) if pid == "p-1500"]
    # Labels for some of the hour's ids (fewer or more than its rows) and for ids it does not hold.
    chosen = rng.choices(ids, k=int(len(ids) * labelled_share)) + [f"elsewhere-{i}" for i in range(50)]
    labels: dict[str, list[Label]] = {}
    for pid in chosen:
        labels.setdefault(pid, []).append(_label(pid, rng))
    if duplicated_ids:
        labels.setdefault("p-1500", []).append(_label("p-1500", rng))
    # The hour already holds some records: one of them arrives again in this run.
    first = next(pid for pid in ids if pid in labels)
    before = {ids.index(first): [labels[first][0]]}
    hour = HourLabels(records={i: list(held) for i, held in before.items()})

    matched = hour.join(HourRows(prediction_ids=ids), labels)

    assert hour.records == _expected(ids, labels, before)
    assert matched == {pid for pid in ids if pid in labels}
    assert hour.changed
    if duplicated_ids:
        first_row, second_row = twice
        assert hour.records[first_row] == hour.records[second_row]
    # Applying the same labels again changes nothing.
    again = HourLabels(records={i: list(held) for i, held in hour.records.items()})
    assert again.join(HourRows(prediction_ids=ids), labels) == matched
    assert not again.changed and again.records == hour.records


@pytest.mark.parametrize("records_per_row", [(1,), (1, 1, 2, 3)], ids=["one-each", "several"])
def test_an_hour_read_back_answers_from_its_columns_as_its_records_do(
    records_per_row: tuple[int, ...],
) -> None:
    rng = random.Random(5)
    ids = [f"p-{i}" for i in range(300)]
    records: dict[int, list[Label]] = {}
    for i in rng.sample(range(300), 120):
        # several records for some rows: the one that holds is the best ranked, whatever the order
        records[i] = [_label(ids[i], rng) for _ in range(rng.choice(records_per_row))]
    facts = {i: (rng.random(), {"band": rng.choice(["a", "b", None])}) for i in records}
    kept = HourLabels(records={i: list(held) for i, held in records.items()}, facts=facts)
    stored = HourLabels.from_json(kept.to_json(), len(ids))

    assert stored.holding_values() == {i: x.label for i, x in kept.holding().items()}
    # The window's labelled rows, from the columns (one record a row: as stored) and from the records.
    assert stored.labelled(["band", "absent"]) == kept.labelled(["band", "absent"])
    for lo, hi in (("2026-11-20T00:00", "2026-11-24T23:59"), ("2026-11-23T12:00", "2026-11-23T15:00")):
        assert stored.received_in(lo, hi) == kept.received_in(lo, hi) > 0
    assert stored.to_json() == kept.to_json()
    # A label reaching the hour turns the columns into its records, and nothing held is lost.
    new = _label(ids[0], rng)
    assert stored.join(HourRows(prediction_ids=ids), {ids[0]: [new]}) == {ids[0]}
    assert stored.records == _expected(ids, {ids[0]: [new]}, records)
    assert stored.holding_values() == {i: x.label for i, x in stored.holding().items()}


@pytest.mark.parametrize(
    "body",
    [
        {
            "i": [0, 1],
            "y": [1],
            "s": [0, 0],
            "o": ["a", "a"],
            "r": ["a", "a"],
            "id": ["a", "b"],
            "p": [0.1, 0.2],
        },
        {
            "i": [0, 3],
            "y": [1, 0],
            "s": [0, 0],
            "o": ["a", "a"],
            "r": ["a", "a"],
            "id": ["a", "d"],
            "p": [0.1, 0.2],
        },
        {"i": [-1], "y": [1], "s": [0], "o": ["a"], "r": ["a"], "id": ["a"], "p": [0.1]},
        {
            "i": [0],
            "y": [1],
            "s": [0],
            "o": ["a"],
            "r": ["a"],
            "id": ["a"],
            "p": [0.1],
            "g": {"band": [1, 2]},
        },
    ],
)
def test_stored_labels_that_cannot_be_the_hours_are_refused(body: dict[str, list[object]]) -> None:
    # (the day is then profiled again from the logs: `_read_day` treats it as not stored)
    with pytest.raises(ValueError):
        HourLabels.from_json({"g": {}, **body}, 3)


@pytest.mark.parametrize("width", [4, 8])
@pytest.mark.parametrize("records_per_row", [(1,), (1, 1, 2, 3)], ids=["one-each", "several"])
def test_a_summary_answers_for_the_window_and_the_records_are_read_only_for_a_join(
    records_per_row: tuple[int, ...], width: int
) -> None:
    rng = random.Random(9)
    ids = [f"p-{i}" for i in range(400)]
    records = {
        i: [_label(ids[i], rng) for _ in range(rng.choice(records_per_row))]
        for i in rng.sample(range(400), 150)
    }
    # 32-bit probabilities (as the ONNX model answers) are kept in 4 bytes, others in 8.
    facts = {
        i: (
            float(np.float32(rng.random())) if width == 4 else rng.random(),
            {"band": rng.choice(["a", "b", None])},
        )
        for i in records
    }
    kept = HourLabels(records={i: list(held) for i, held in records.items()}, facts=facts)
    summary = json.loads(json.dumps(kept.summary_json(["band"])))
    assert summary["p_bytes"] == width
    reads: list[int] = []

    def load() -> dict[str, object]:
        reads.append(1)
        return kept.to_json()

    stored = HourLabels.from_summary(summary, len(ids), load)
    p, y, groups = stored.labelled(["band", "absent"])
    want_p, want_y, want_groups = kept.labelled(["band", "absent"])
    assert list(p) == want_p and list(y) == want_y and groups == want_groups
    for lo, hi in (("2026-11-20T00:00", "2026-11-28T23:59"), ("2026-11-23T12:00", "2026-11-23T15:00")):
        assert stored.received_in(lo, hi) == kept.received_in(lo, hi)
    assert stored.summary_json(["band"]) == summary and not reads
    # A label reaching the hour reads the records once, and the records are the hour's.
    new = _label(ids[0], rng)
    assert stored.join(HourRows(prediction_ids=ids), {ids[0]: [new]}) == {ids[0]}
    assert reads == [1] and stored.changed
    assert stored.records == _expected(ids, {ids[0]: [new]}, records)


@pytest.mark.parametrize(
    "damage",
    [
        {"n": 3},
        {"p_bytes": 2},
        {"y": "AAAA"},
        {"g": {"band": {"levels": ["a"], "codes": "BQAAAA=="}}},
    ],
)
def test_a_summary_that_cannot_be_the_hours_is_refused(damage: dict[str, object]) -> None:
    kept = HourLabels(records={0: [_label("p-0", random.Random(1))]}, facts={0: (0.25, {"band": "a"})})
    body = {**kept.summary_json(["band"]), **damage}
    with pytest.raises(ValueError):
        HourLabels.from_summary(body, 10, dict)
