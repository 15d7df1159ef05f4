"""Monitor Lambda: an EventBridge schedule (or an explicit monitor request) -> one monitor run.

Any other event (an EC2 state change, an SNS message, a malformed request) is refused with
an answer that says why, and nothing runs: a stray rule or subscription must not produce
reports and metrics for windows nobody asked for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops.cloud import aws
from mlops.cloud.logstore import MAX_WINDOW_HOURS
from mlops.cloud.storage import parse_time
from mlops.monitoring.run import run_monitor
from mlops.shared.observability import logger
from mlops.shared.resources import MONITOR_REQUEST_DETAIL_TYPE, RETRAIN_REQUEST_SOURCE
from mlops.shared.settings import MonitorSettings


class MonitorRequest(BaseModel):
    """What an event may ask of a run: a window length and the versions to monitor."""

    model_config = ConfigDict(extra="forbid", strict=True)

    window_hours: float | None = Field(None, gt=0, le=MAX_WINDOW_HOURS, allow_inf_nan=False)
    versions: list[int] | None = Field(None, min_length=1, max_length=100)

    @field_validator("window_hours", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        # JSON has one number type: 24 and 24.0 both mean hours; booleans and strings do not.
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("versions")
    @classmethod
    def _positive(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(v < 1 for v in value):
            raise ValueError("versions are numbers from 1")
        return value


class RefusedEvent(ValueError):
    """An event the monitor does not run for; the message says what was expected."""


def _is_schedule(event: dict[str, Any]) -> bool:
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


def _is_request(event: dict[str, Any]) -> bool:
    return (
        event.get("source") == RETRAIN_REQUEST_SOURCE
        and event.get("detail-type") == MONITOR_REQUEST_DETAIL_TYPE
    )


def parse_event(event: Any) -> tuple[datetime, MonitorRequest]:
    """The end of the window and the request, or RefusedEvent naming the problem."""
    if not isinstance(event, dict) or not (_is_schedule(event) or _is_request(event)):
        kind = (
            f"source={event.get('source')!r}, detail-type={event.get('detail-type')!r}"
            if isinstance(event, dict)
            else type(event).__name__
        )
        raise RefusedEvent(
            f"not a monitor schedule or request ({kind}); expected source 'aws.events' with detail-type "
            f"'Scheduled Event', or source {RETRAIN_REQUEST_SOURCE!r} with detail-type "
            f"{MONITOR_REQUEST_DETAIL_TYPE!r}"
        )
    stamp = event.get("time")
    try:
        # The event's own time, not the clock: a delayed or replayed invocation covers its intended window.
        at = parse_time(stamp) if isinstance(stamp, str) else None
    except (ValueError, OverflowError):
        at = None
    if at is None:
        raise RefusedEvent(f"time: {str(stamp)[:64]!r} is not an ISO 8601 time")
    try:
        at - timedelta(hours=MAX_WINDOW_HOURS)
        at + timedelta(days=2)
    except OverflowError:
        raise RefusedEvent(f"time: {stamp!r} is too far from now for a monitoring window") from None
    detail = event.get("detail")
    if detail is None:
        detail = {}
    if not isinstance(detail, dict):
        raise RefusedEvent("detail: must be an object")
    try:
        request = MonitorRequest.model_validate(detail)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'detail'}: {e['msg']}" for e in err.errors()
        )
        raise RefusedEvent(f"detail: {problems}") from None
    return at, request


@cache
def settings() -> MonitorSettings:
    return MonitorSettings()  # type: ignore[call-arg]  # read from the environment


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The event's `time` ends the window; `detail` may set `window_hours` and `versions`."""
    try:
        at, request = parse_event(event)
    except RefusedEvent as err:
        logger.error("monitor event refused; nothing ran", extra={"reason": str(err)})
        return {"outcome": "refused", "error": str(err)}
    config = settings()
    result = run_monitor(
        aws.client("s3"),
        aws.client("cloudwatch"),
        aws.client("dynamodb"),
        config,
        window_end=at,
        window=timedelta(hours=request.window_hours) if request.window_hours else None,
        versions=request.versions,
        now=at,
        athena=aws.client("athena") if config.scan_engine == "athena" else None,
    )
    return result.summary()
