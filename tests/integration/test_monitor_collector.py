"""A monitor run builds its working set with the cyclic collector held off (`mlops.shared.collector`):
no collection walks the run's objects while it runs, one frees any cycles after, and the collector
is on again however the run ends."""

from __future__ import annotations

import gc
from datetime import timedelta
from typing import Any

import pytest
from mlops.cloud.registry import VersionRecord
from mlops.model.training import TrainingResult
from mlops.monitoring import run as monitor_run
from mlops.shared.collector import collections_deferred

from tests.conftest import AwsStack
from tests.integration.test_incremental_monitor import END, Traffic, run, stored_report


class Collections:
    """Collections of the cyclic collector, by generation, while `counting`."""

    def __init__(self) -> None:
        self.counting = False
        self.seen: list[int] = []

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if self.counting and phase == "start":
            self.seen.append(info["generation"])


@pytest.fixture
def collections() -> Any:
    spy = Collections()
    gc.callbacks.append(spy)
    yield spy
    gc.callbacks.remove(spy)


def test_a_monitor_run_makes_no_collection_until_it_ends(
    aws_stack: AwsStack,
    champion: VersionRecord,
    trained: TrainingResult,
    collections: Collections,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given hours of traffic (a run over them allocates far more than a collection's threshold),
    traffic = Traffic(aws_stack, trained, seed=17)
    for hour, records in enumerate(traffic.hours(END - timedelta(hours=4), 4)):
        traffic.write(records, END - timedelta(hours=4 - hour))
    real = monitor_run._run_monitor
    inside: list[bool] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        inside.append(gc.isenabled())
        collections.counting = True
        try:
            return real(*args, **kwargs)
        finally:
            collections.counting = False

    monkeypatch.setattr(monitor_run, "_run_monitor", counted)
    assert gc.isenabled()
    # when the scheduled monitor runs,
    summary = run(END)
    # then it read the hours with the collector off and made no collection meanwhile,
    assert stored_report(aws_stack, summary)["prediction_count"] == 4 * 60
    assert inside == [False]
    assert collections.seen == []
    # and the collector is on again.
    assert gc.isenabled()


def test_the_collector_is_on_again_after_a_run_that_raises(collections: Collections) -> None:
    collections.counting = True
    with pytest.raises(RuntimeError), collections_deferred():
        assert not gc.isenabled()
        raise RuntimeError("the run broke half way")
    assert gc.isenabled()
    # The one collection that frees what the run left in cycles, made as it ended.
    assert collections.seen == [2]
    # A caller that holds the collector off keeps it off.
    gc.disable()
    try:
        with collections_deferred():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
