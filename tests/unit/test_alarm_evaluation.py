"""Local alarm evaluation follows CloudWatch's M-of-N and missing-data semantics."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from mlops.local.alarm_evaluator import AlarmState, evaluate, period_starts
from mlops.shared.alarm_specs import AlarmSpec, Comparison, Metric, MissingData, Severity

OK, ALARM, NODATA = AlarmState.OK, AlarmState.ALARM, AlarmState.INSUFFICIENT_DATA
BASE = AlarmSpec(
    name="MetricGap",
    metric=Metric.METRIC_GAP,
    statistic="Maximum",
    period_s=3600,
    comparison=Comparison.GREATER,
    threshold=0.05,
    evaluation_periods=3,
    datapoints_to_alarm=2,
    treat_missing_data=MissingData.MISSING,
    severity=Severity.CRITICAL,
    triggers_retraining=True,
    description="gap",
)
X, G, _ = 0.09, 0.01, None  # breaching, good, missing


@pytest.mark.parametrize(
    ("treat", "values", "current", "expected"),
    [
        # 2 of 3 with every datapoint present: the treatment does not matter.
        (MissingData.MISSING, [G, X, X], OK, ALARM),
        (MissingData.MISSING, [X, G, G], ALARM, OK),
        (MissingData.NOT_BREACHING, [X, G, X], OK, ALARM),
        # missing: only present datapoints count; fewer than M present must all breach.
        (MissingData.MISSING, [_, _, _], OK, NODATA),
        (MissingData.MISSING, [_, _, X], OK, ALARM),
        (MissingData.MISSING, [_, G, X], OK, OK),
        (MissingData.MISSING, [X, _, X], OK, ALARM),
        # ignore: nothing present keeps the state.
        (MissingData.IGNORE, [_, _, _], ALARM, ALARM),
        (MissingData.IGNORE, [_, _, _], OK, OK),
        (MissingData.IGNORE, [_, X, _], OK, ALARM),
        # breaching: a silent metric is a failure (the heartbeat's case).
        (MissingData.BREACHING, [_, _, _], OK, ALARM),
        (MissingData.BREACHING, [G, _, G], OK, OK),
        (MissingData.BREACHING, [_, X, G], OK, ALARM),
        # notBreaching: a silent metric is fine.
        (MissingData.NOT_BREACHING, [_, _, _], ALARM, OK),
        (MissingData.NOT_BREACHING, [_, X, _], OK, OK),
    ],
)
def test_missing_data_treatments(treat, values, current, expected):
    state, reason = evaluate(replace(BASE, treat_missing_data=treat), values, current)
    assert state is expected, reason


@pytest.mark.parametrize(
    ("m", "values", "expected"),
    [(1, [G, G, X], ALARM), (2, [G, G, X], OK), (3, [X, X, G], OK), (3, [X, X, X], ALARM)],
)
def test_datapoints_to_alarm(m, values, expected):
    assert evaluate(replace(BASE, datapoints_to_alarm=m), values, OK)[0] is expected


def test_comparisons_and_heartbeat_shape():
    heartbeat = replace(
        BASE, comparison=Comparison.LESS, threshold=1.0, treat_missing_data=MissingData.BREACHING
    )
    assert evaluate(heartbeat, [1.0, 1.0, 1.0], ALARM)[0] is OK
    assert evaluate(heartbeat, [1.0, _, _], OK)[0] is ALARM
    at_threshold = replace(BASE, comparison=Comparison.GREATER_OR_EQUAL)
    assert evaluate(at_threshold, [0.05, 0.05, G], OK)[0] is ALARM
    assert evaluate(BASE, [0.05, 0.05, G], OK)[0] is OK


def test_the_range_slides_with_the_clock_and_sees_what_was_just_published():
    # Given hourly periods of which three are evaluated
    # When CloudWatch evaluates after 12:30:20 (once a minute, ranges ending at the minute)
    starts = period_starts(BASE, datetime(2026, 11, 20, 12, 30, 20, tzinfo=UTC))
    # Then the whole periods ending at 12:31 are looked at, not the ones ending at the hour
    assert starts == [datetime(2026, 11, 20, h, 31, tzinfo=UTC) for h in (9, 10, 11)]
    # And a datapoint published at 12:00:00 is in the range of the evaluation that follows it
    published = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    last = period_starts(BASE, published)[-1]
    assert last <= published < last + timedelta(seconds=BASE.period_s)
