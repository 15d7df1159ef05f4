"""The label join of a stored hour: every row whose prediction id has feedback gets each record once,
whichever side (the labels or the hour's rows) the join walks."""

from __future__ import annotations

import random

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


@pytest.mark.parametrize("duplicated_ids", [False, True])
@pytest.mark.parametrize("labelled_share", [0.01, 0.3, 3.0])
def test_the_join_gives_each_labelled_row_its_records_once(duplicated_ids: bool, labelled_share: float):
    rng = random.Random(f"{duplicated_ids}-{labelled_share}")
    ids = [f"p-{i}" for i in range(2_000)]
    if duplicated_ids:
        ids[17] = ids[1_500]  # a client-chosen id sent twice in the hour
    # Labels for some of the hour's ids (fewer or more than its rows) and for ids it does not hold.
    chosen = rng.choices(ids, k=int(len(ids) * labelled_share)) + [f"elsewhere-{i}" for i in range(50)]
    labels: dict[str, list[Label]] = {}
    for pid in chosen:
        labels.setdefault(pid, []).append(_label(pid, rng))
    if duplicated_ids:
        labels.setdefault(ids[17], []).append(_label(ids[17], rng))
    # The hour already holds some records: one of them arrives again in this run.
    first = next(pid for pid in ids if pid in labels)
    before = {ids.index(first): [labels[first][0]]}
    hour = HourLabels(records={i: list(held) for i, held in before.items()})

    matched = hour.join(HourRows(prediction_ids=ids), labels)

    assert hour.records == _expected(ids, labels, before)
    assert matched == {pid for pid in ids if pid in labels}
    assert hour.changed
    if duplicated_ids:
        assert hour.records[17] == hour.records[1_500]
    # Applying the same labels again changes nothing.
    again = HourLabels(records={i: list(held) for i, held in hour.records.items()})
    assert again.join(HourRows(prediction_ids=ids), labels) == matched
    assert not again.changed and again.records == hour.records
