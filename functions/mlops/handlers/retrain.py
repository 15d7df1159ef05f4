"""Retrain function: EventBridge schedule, CloudWatch alarm state change, or a retrain request.

Its metrics carry exactly `mlops.alarms.FAILURE_DIMENSIONS` (model name and the Powertools service),
the dimensions the RetrainFailures and CandidatesRejected alarms watch. A FAILED run raises.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops import aws
from mlops.alarms import DIM_MODEL, Metric
from mlops.config import RetrainSettings
from mlops.errors import RetrainFailed
from mlops.observability import logger, metrics
from mlops.registry import Registry
from mlops.resources import RETRAIN_REQUEST_DETAIL_TYPE, RETRAIN_REQUEST_SOURCE
from mlops.retraining.run import Outcome, RetrainContext, Trigger, TriggerKind, run_retraining


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


def context() -> RetrainContext:
    return RetrainContext(
        registry=Registry(aws.client("dynamodb"), settings().registry_table, settings().model_name),
        s3=aws.client("s3"),
        sns=aws.client("sns"),
        artifact_bucket=settings().artifact_bucket,
        log_bucket=settings().log_bucket,
        report_bucket=settings().report_bucket,
        topic_arn=settings().alarm_topic_arn,
    )


@logger.inject_lambda_context(log_event=True)
@metrics.log_metrics
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    metrics.add_dimension(DIM_MODEL, settings().model_name)
    trigger = trigger_from_event(event)
    if trigger is None:
        logger.info("event does not trigger retraining", extra={"detail_type": event.get("detail-type")})
        return {"outcome": Outcome.SKIPPED.value, "detail": "event does not trigger retraining"}
    force = bool((event.get("detail") or {}).get("force")) and trigger.kind is TriggerKind.MANUAL
    result = run_retraining(context(), trigger, force=force)
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
