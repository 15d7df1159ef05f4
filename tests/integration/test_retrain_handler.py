"""The retrain Lambda handler with real-shaped EventBridge events on moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from mlops.datagen.churn import generate_churn
from mlops.local.alarm_evaluator import AlarmState, evaluate
from mlops.model.bundle import dataset_key
from mlops.shared.alarm_specs import operational_alarm_specs
from mlops.shared.errors import RetrainFailed
from mlops.shared.observability import failure_dimensions

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


def _emf_documents(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{") and '"_aws"' in line]


def test_a_failed_run_raises_and_reaches_the_retrain_failures_alarm(
    aws_stack, champion, lambda_context, capsys
):
    # Given a champion whose original data set has gone, so no run can assemble its training data.
    original = champion.training_data_sha256
    aws_stack.s3.delete_object(Bucket=aws_stack.artifact_bucket, Key=dataset_key("churn", original))
    capsys.readouterr()

    # When the scheduled run starts, it fails, and the function does not return normally.
    with pytest.raises(RetrainFailed) as failed:
        _handler().handler(load_event("retrain/scheduled.json"), lambda_context)

    # Then the run is recorded as failed with nothing changed ...
    assert failed.value.result["outcome"] == "failed"
    registry = aws_stack.registry()
    assert registry.runs()[0]["outcome"] == "failed" and registry.champion().version == 1
    # ... and the failure count goes out under exactly the dimensions its alarm watches.
    spec = next(s for s in operational_alarm_specs() if s.name == "RetrainFailures")
    docs = [d for d in _emf_documents(capsys.readouterr().out) if spec.metric_name in d]
    assert len(docs) == 1 and docs[0][spec.metric_name] == [1.0]
    (directive,) = docs[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == spec.namespace
    assert [sorted(d) for d in directive["Dimensions"]] == [sorted(spec.dimensions)]
    published = {name: docs[0][name] for name in directive["Dimensions"][0]}
    assert published == failure_dimensions("churn")
    # CloudWatch Logs turns the document into a datapoint; the alarm (same dimensions) then fires.
    at = datetime.fromtimestamp(docs[0]["_aws"]["Timestamp"] / 1000, tz=UTC)
    aws_stack.cloudwatch.put_metric_data(
        Namespace=directive["Namespace"],
        MetricData=[
            {
                "MetricName": spec.metric_name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in published.items()],
                "Value": 1.0,
                "Timestamp": at,
            }
        ],
    )
    start = datetime.fromtimestamp(int(at.timestamp()) // spec.period_s * spec.period_s, tz=UTC)
    stats = aws_stack.cloudwatch.get_metric_statistics(
        Namespace=spec.namespace,
        MetricName=spec.metric_name,
        Dimensions=[{"Name": k, "Value": v} for k, v in failure_dimensions("churn").items()],
        StartTime=start,
        EndTime=start + timedelta(seconds=spec.period_s),
        Period=spec.period_s,
        Statistics=[spec.statistic],
    )["Datapoints"]
    values = [dp[spec.statistic] for dp in stats]
    assert evaluate(spec, values, AlarmState.OK)[0] is AlarmState.ALARM


def test_retry_tick_without_a_retraining_condition_runs_nothing(aws_stack, champion, lambda_context):
    out = _handler().handler(load_event("retrain/retry_due.json"), lambda_context)
    assert out["outcome"] == "skipped" and out["detail"] == "no retraining wanted"
    assert aws_stack.registry().runs() == []
