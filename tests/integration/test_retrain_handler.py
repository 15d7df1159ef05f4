"""The retrain Lambda handler with real-shaped EventBridge events on moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlops.datagen import generate_churn

from tests.integration.serving_helpers import load_event
from tests.traffic import log_traffic


def _handler():
    import mlops.handlers.retrain as module

    module.settings.cache_clear()  # a fresh container reads this test's environment
    return module


def test_alarm_event_promotes_a_retrained_model(aws_stack, champion, lambda_context):
    registry = aws_stack.registry()
    start = datetime.now(UTC) - timedelta(days=2)
    log_traffic(
        aws_stack, registry, 1, generate_churn(3000, seed=31, concept_shift=1.0), start, timedelta(seconds=50)
    )

    out = _handler().handler(load_event("retrain/alarm_state_change.json"), lambda_context)

    assert out["outcome"] == "promoted", out["detail"]
    assert registry.champion().version == 2
    assert registry.history()[-1].reason == "retrained after alarm MetricGap at 2026-11-20T11:00:00.000+0000"


def test_events_that_must_not_start_a_run_are_skipped(aws_stack, champion, lambda_context):
    handler = _handler()
    assert (
        handler.handler(load_event("retrain/alarm_back_to_ok.json"), lambda_context)["outcome"] == "skipped"
    )
    assert handler.handler({"source": "something.else"}, lambda_context)["outcome"] == "skipped"
    assert [v.version for v in aws_stack.registry().list_versions()] == [1]


def test_trigger_parsing_of_every_sample_event(aws_stack):
    trigger_from_event = _handler().trigger_from_event
    schedule = trigger_from_event(load_event("retrain/scheduled.json"))
    alarm = trigger_from_event(load_event("retrain/alarm_state_change.json"))
    request = trigger_from_event(load_event("retrain/request.json"))
    assert schedule is not None and schedule.kind.value == "schedule"
    assert alarm is not None and alarm.alarm_name == "MetricGap" and alarm.performance
    assert request is not None and request.actor.endswith("user/alice")
    assert trigger_from_event(load_event("retrain/alarm_back_to_ok.json")) is None


def test_retry_tick_without_a_retraining_condition_runs_nothing(aws_stack, champion, lambda_context):
    out = _handler().handler(load_event("retrain/retry_due.json"), lambda_context)
    assert out["outcome"] == "skipped" and out["detail"] == "no retraining wanted"
    assert aws_stack.registry().runs() == []
