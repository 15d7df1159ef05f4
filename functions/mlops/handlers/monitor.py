"""Monitor Lambda: an EventBridge schedule (or an on-demand event) -> one monitor run."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

from mlops import aws
from mlops.config import MonitorSettings
from mlops.monitoring.run import run_monitor
from mlops.observability import logger
from mlops.storage import parse_time, utcnow


@cache
def settings() -> MonitorSettings:
    return MonitorSettings()  # type: ignore[call-arg]  # read from the environment


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The scheduled event's `time` ends the window; `detail` may set `window_hours` and `versions`."""
    detail = event.get("detail") or {}
    # The schedule's own time, not the clock: a delayed or replayed invocation covers its intended window.
    at = parse_time(event["time"]) if event.get("time") else utcnow()
    hours = detail.get("window_hours")
    versions = detail.get("versions")
    result = run_monitor(
        aws.client("s3"),
        aws.client("cloudwatch"),
        aws.client("dynamodb"),
        settings(),
        window_end=at,
        window=timedelta(hours=float(hours)) if hours else None,
        versions=[int(v) for v in versions] if versions else None,
        now=at,
    )
    return result.summary()
