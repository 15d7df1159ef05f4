"""Ids the predict function makes name the hour they were served in; ids clients send name none."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from mlops.shared.prediction_ids import new_prediction_ids, prediction_ids_at, served_hour


@pytest.mark.parametrize(
    "served",
    [
        datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
        datetime(2026, 11, 20, 12, 59, 59, 999_999, tzinfo=UTC),
        datetime(2031, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    ],
)
def test_an_id_names_the_hour_it_was_served_in(served: datetime) -> None:
    ids = new_prediction_ids(500, served)
    assert len(set(ids)) == 500
    assert all(len(i) == 32 and i[12] == "p" and int(i[:12] + i[13:], 16) >= 0 for i in ids)
    assert {served_hour(i) for i in ids} == {served.replace(minute=0, second=0, microsecond=0)}
    assert served_hour(prediction_ids_at([served])[0]) == served.replace(minute=0, second=0, microsecond=0)


def test_ids_a_client_sends_name_no_hour() -> None:
    for client_id in (
        "order-17",
        str(uuid.uuid4()),
        "A" * 32,
        "g" * 32,
        "",
        "0" * 31,
        "0" * 12 + "p" + "x" * 19,
    ):
        assert served_hour(client_id) is None
    # No hex id has the mark: a UUID's hex or a digest never names an hour.
    assert not any(served_hour(os.urandom(16).hex()) for _ in range(20_000))
    assert not any(served_hour(uuid.uuid4().hex) for _ in range(20_000))
    # and a stamp outside 2020 to 2099 is no serving time.
    assert served_hour(new_prediction_ids(1, datetime(2019, 12, 31, 23, tzinfo=UTC))[0]) is None
    late = datetime(2099, 12, 31, 23, 30, tzinfo=UTC)
    assert served_hour(new_prediction_ids(1, late)[0]) == late - timedelta(minutes=30)
