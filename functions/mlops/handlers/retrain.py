"""Retrain function: EventBridge schedule, CloudWatch alarm state change, a retrain request, or the
retry tick that keeps retraining going while a retraining condition holds.

Its metrics carry exactly `mlops.shared.alarm_specs.FAILURE_DIMENSIONS` (model name and the Powertools
service), the dimensions the RetrainFailures and CandidatesRejected alarms watch. A FAILED run raises.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.cloud import aws
from mlops.cloud.registry import Registry
from mlops.retraining import persistence
from mlops.retraining.run import (
    Outcome,
    RetrainContext,
    RetrainResult,
    Trigger,
    TriggerKind,
    run_retraining,
)
from mlops.shared.alarm_specs import DIM_MODEL, Metric
from mlops.shared.errors import RetrainFailed
from mlops.shared.observability import logger, metrics
from mlops.shared.resources import (
    RETRAIN_REQUEST_DETAIL_TYPE,
    RETRAIN_REQUEST_SOURCE,
    RETRAIN_RETRY_DETAIL_TYPE,
)
from mlops.shared.settings import RetrainSettings


@functools.cache
def settings() -> RetrainSettings:
    """Read from the environment once per container (at the first request), validated."""
    return RetrainSettings()  # type: ignore[call-arg]


def trigger_from_event(event: dict[str, Any]) -> Trigger | None:
    """The trigger an event carries, or None for events that must not start a run."""
    detail_type = event.get("detail-type")
    detail = event.get("detail") or {}
    if event.get("source") == "aws.cloudwatch" and detail_type == "CloudWatch Alarm State Change":
        state = (detail.get("state") or {}).get("value")
        if state != "ALARM":
            return None
        name = str(detail.get("alarmName", "unknown"))
        return Trigger(
            TriggerKind.ALARM,
            reason=str((detail.get("state") or {}).get("reason", "")),
            alarm_name=name.rsplit("-", 1)[-1],
            at=str((detail.get("state") or {}).get("timestamp") or event.get("time")),
        )
    if event.get("source") == "aws.events" and detail_type == "Scheduled Event":
        return Trigger(
            TriggerKind.SCHEDULE, reason=f"schedule {','.join(event.get('resources', []))}".strip()
        )
    if event.get("source") == RETRAIN_REQUEST_SOURCE and detail_type == RETRAIN_REQUEST_DETAIL_TYPE:
        return Trigger(
            TriggerKind.MANUAL,
            reason=str(detail.get("reason") or "requested"),
            actor=str(detail.get("actor") or "unknown"),
        )
    return None


def alarm_back_to_ok(event: dict[str, Any]) -> str | None:
    """The name of a retraining alarm whose state changed to OK, or None."""
    detail = event.get("detail") or {}
    state_change = event.get("detail-type") == "CloudWatch Alarm State Change"
    state = (detail.get("state") or {}).get("value")
    if event.get("source") == "aws.cloudwatch" and state_change and state == "OK":
        return str(detail.get("alarmName", ""))
    return None


def is_retry_due(event: dict[str, Any]) -> bool:
    return (
        event.get("source") == RETRAIN_REQUEST_SOURCE
        and event.get("detail-type") == RETRAIN_RETRY_DETAIL_TYPE
    )


def context() -> RetrainContext:
    return RetrainContext(
        registry=Registry(aws.client("dynamodb"), settings().registry_table, settings().model_name),
        s3=aws.client("s3"),
        sns=aws.client("sns"),
        artifact_bucket=settings().artifact_bucket,
        log_bucket=settings().log_bucket,
        report_bucket=settings().report_bucket,
        topic_arn=settings().alarm_topic_arn,
        cloudwatch=aws.client("cloudwatch"),
        retraining_alarms=settings().retraining_alarm_names,
    )


def dispatch(event: dict[str, Any]) -> RetrainResult | None:
    """Run what the event asks for; None for events that must not start anything."""
    if is_retry_due(event):
        return persistence.resume(context())
    ok_alarm = alarm_back_to_ok(event)
    if ok_alarm:
        return persistence.on_alarm_ok(context(), ok_alarm)
    trigger = trigger_from_event(event)
    if trigger is None:
        return None
    if trigger.kind is TriggerKind.ALARM:
        return persistence.on_alarm(context(), trigger)
    force = bool((event.get("detail") or {}).get("force")) and trigger.kind is TriggerKind.MANUAL
    ctx = context()
    result = run_retraining(ctx, trigger, force=force)
    persistence.note_run(ctx, result)
    return result


@logger.inject_lambda_context(log_event=True)
@metrics.log_metrics
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    metrics.add_dimension(DIM_MODEL, settings().model_name)
    result = dispatch(event)
    if result is None:
        logger.info("event does not trigger retraining", extra={"detail_type": event.get("detail-type")})
        return {"outcome": Outcome.SKIPPED.value, "detail": "event does not trigger retraining"}
    if not result.run_id:  # a tick or state change with nothing to run: no run metrics
        logger.info("nothing to run", extra={"detail": result.detail})
        return result.as_dict()
    log = logger.error if result.outcome is Outcome.FAILED else logger.info
    log("retraining finished", extra={"outcome": result.outcome.value, "detail": result.detail})
    metrics.add_metric(name=Metric.RETRAIN_RUNS, unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name=Metric.RETRAIN_FAILURES, unit=MetricUnit.Count, value=int(result.outcome is Outcome.FAILED)
    )
    metrics.add_metric(
        name=Metric.CANDIDATES_REJECTED, unit=MetricUnit.Count, value=int(result.outcome is Outcome.REJECTED)
    )
    if result.outcome is Outcome.FAILED:
        # Returning would tell Lambda the run succeeded: no error, no on-failure destination.
        raise RetrainFailed(result.as_dict())
    return result.as_dict()
