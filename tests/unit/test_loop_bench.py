"""The loop benchmark's verdict on alarms still in ALARM at the end of a story."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.cli.local import DEMO_SPEC
from mlops.local.demo import DemoConfig, demo_spec
from mlops.model.spec import load_spec

from bench.loop import alarms_holding_at_end, judge

SPEC = demo_spec(load_spec(DEMO_SPEC), DemoConfig(spec_path=DEMO_SPEC).slot_hours)
END = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
FLOOR_IN_ALARM = {"demo-churn-ProductionFloor": "ALARM", "demo-churn-MetricGap": "OK"}


def shifted_run(about_champion: list[dict[str, Any]], about_replaced: list[str]) -> dict[str, Any]:
    return {
        "covariate_shift": 0.5,
        "concept_shift": 0.5,
        "alarms": [{"alarm": "MetricGap", "hours_after_shift": 18.0, "performance": True}],
        "promotions": [{"version": 2, "hours_after_shift": 30.0}],
        "alarms_about_champion_at_end": about_champion,
        "alarms_about_replaced_version_at_end": about_replaced,
        "oracle_gap": 0.01,
    }


def test_an_alarm_whose_last_range_saw_the_replaced_version_is_not_a_stuck_loop():
    # Given the floor alarm re-fired on figures published before a promotion twelve hours before the end
    promoted = END - timedelta(hours=12)
    # When the end is judged
    champion, replaced = alarms_holding_at_end(SPEC, FLOOR_IN_ALARM, END, [promoted], 0.77, 0.01)
    # Then the alarm speaks about the replaced version, and the run is not stuck
    assert champion == [] and replaced == ["ProductionFloor"]
    summary = judge([shifted_run(champion, replaced)])
    assert summary["stuck_runs"] == 0 and summary["replaced_version_alarms"] == 1


def test_an_alarm_about_the_champion_is_stuck_when_the_oracle_clears_its_bar():
    # Given the floor alarm holding over a range after the promotion (three six-hour periods back)
    promoted = END - timedelta(hours=24)
    # When the oracle clears the floor (0.70) although the champion does not
    champion, replaced = alarms_holding_at_end(SPEC, FLOOR_IN_ALARM, END, [promoted], 0.77, 0.09)
    # Then the loop failed to get there: stuck
    assert champion == [{"alarm": "ProductionFloor", "bar_out_of_reach": False}] and replaced == []
    assert judge([shifted_run(champion, replaced)])["stuck_runs"] == 1


def test_a_floor_the_oracle_itself_misses_holds_honestly_and_is_not_stuck():
    # Given the floor alarm holding about the champion, and no refit on ample new traffic reaching 0.70
    champion, replaced = alarms_holding_at_end(SPEC, FLOOR_IN_ALARM, END, [], 0.68, 0.01)
    # When the run is judged
    summary = judge([shifted_run(champion, replaced)])
    # Then it is out of reach, not stuck
    assert summary["stuck_runs"] == 0 and summary["out_of_reach_runs"] == 1
