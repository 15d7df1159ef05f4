"""`mlops monitor run`: one monitor run now (or at --at), printed as JSON."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta

from mlops.cli.common import (
    BUCKET,
    LOG_BUCKET,
    MODEL,
    REPORT_BUCKET,
    TABLE,
    add_resource_flags,
    print_json,
    registry,
    settings,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days"}


def parse_window(text: str) -> timedelta:
    """'90m', '24h', '7d' -> timedelta."""
    from mlops.cloud.logstore import MAX_WINDOW_HOURS

    m = _DURATION.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration like 90m, 24h or 7d: {text!r}")
    try:
        value = timedelta(**{_UNIT[m.group(2)]: float(m.group(1))})
    except OverflowError:
        value = timedelta.max
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError("the window must be longer than zero")
    if value > timedelta(hours=MAX_WINDOW_HOURS):
        raise argparse.ArgumentTypeError(f"the window must be at most {MAX_WINDOW_HOURS // 24}d")
    return value


def _version(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a version number: {text!r}")
    return int(text)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("monitor", help="drift, production metrics and reports of served versions")
    msub = p.add_subparsers(dest="monitor_command", required=True, metavar="ACTION")
    run = msub.add_parser("run", help="monitor one window now: metrics to CloudWatch, reports to S3")
    run.add_argument(
        "--window", type=parse_window, default=None, help="e.g. 24h (default: the spec's window)"
    )
    run.add_argument(
        "--version", type=_version, action="append", default=None, help="only this version (repeatable)"
    )
    run.add_argument("--at", default=None, help="end of the window, ISO 8601 (default: now)")
    run.add_argument("--log-bucket", default=None, help=f"log bucket (default: ${LOG_BUCKET.env_var})")
    run.add_argument(
        "--report-bucket", default=None, help=f"report bucket (default: ${REPORT_BUCKET.env_var})"
    )
    add_resource_flags(run)
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from mlops.cloud import aws
    from mlops.cloud.logstore import MAX_WINDOW_HOURS
    from mlops.cloud.storage import parse_time, utcnow
    from mlops.monitoring.run import run_monitor
    from mlops.shared.settings import MonitorSettings

    found = settings(args, MODEL, TABLE, BUCKET, LOG_BUCKET, REPORT_BUCKET)
    for version in args.version or ():
        registry(found).get_version(version)  # a version that does not exist is an error, not a no-op
    monitor_settings = MonitorSettings(
        model_name=found["model"],
        registry_table=found["table"],
        artifact_bucket=found["bucket"],
        log_bucket=found["log_bucket"],
        report_bucket=found["report_bucket"],
    )
    try:
        at = parse_time(args.at) if args.at else utcnow()
        at - timedelta(hours=MAX_WINDOW_HOURS)
        at + timedelta(days=2)
    except (ValueError, OverflowError):
        raise ValueError(f"--at: not an ISO 8601 time in range: {args.at!r}") from None
    result = run_monitor(
        aws.client("s3"),
        aws.client("cloudwatch"),
        aws.client("dynamodb"),
        monitor_settings,
        window_end=at,
        window=args.window,
        versions=args.version,
        now=at if args.at else None,
    )
    print_json(result.summary())
    if result.skipped:
        print(f"error: monitor run skipped: {result.skipped}", file=sys.stderr)
        return 1
    return 0
