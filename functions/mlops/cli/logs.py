"""`mlops logs replay`: records the predict function could not queue, put into the prediction log."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from mlops.cli.common import LOG_BUCKET, Setting, print_json, settings
from mlops.shared import resources as r

LOG_GROUP = Setting("log_group", "--log-group", r.PREDICT_LOG_GROUP_ENV)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="the prediction log")
    lsub = p.add_subparsers(dest="logs_command", required=True, metavar="ACTION")
    rp = lsub.add_parser(
        "replay",
        help="write records the predict function kept in its log (queue down or too slow) into the log",
    )
    source = rp.add_mutually_exclusive_group()
    source.add_argument(
        "--log-group",
        default=None,
        help=f"the predict function's log group (default: ${r.PREDICT_LOG_GROUP_ENV}; "
        "the stack output PredictLogGroup)",
    )
    source.add_argument(
        "--file", type=Path, default=None, help="saved log lines instead (one JSON log line each)"
    )
    rp.add_argument("--since", default=None, help="ISO 8601 start of the period to read (with --log-group)")
    rp.add_argument("--until", default=None, help="ISO 8601 end of the period (default: now)")
    rp.add_argument("--log-bucket", default=None, help=f"log bucket (default: ${r.LOG_BUCKET.env_var})")
    rp.set_defaults(func=_replay)


def _time(flag: str, text: str) -> datetime:
    from mlops.cloud.storage import parse_time

    try:
        return parse_time(text)
    except (ValueError, OverflowError):
        raise ValueError(f"{flag}: not an ISO 8601 time: {text!r}") from None


def _replay(args: argparse.Namespace) -> int:
    from mlops.cloud import aws
    from mlops.cloud.storage import utcnow
    from mlops.serving.log_replay import log_group_events, replay

    wanted = (LOG_BUCKET,) if args.file is not None else (LOG_BUCKET, LOG_GROUP)
    found = settings(args, *wanted)
    bucket = found["log_bucket"]
    s3 = aws.client("s3")
    if args.file is not None:
        if not args.file.is_file():
            raise ValueError(f"--file: no such file: {args.file}")
        with args.file.open(encoding="utf-8", errors="replace") as lines:
            result = replay(s3, bucket, lines)
    else:
        group = found["log_group"]
        if not args.since:
            raise ValueError("--since is required with --log-group (how far back to read)")
        start = _time("--since", args.since)
        end = _time("--until", args.until) if args.until else utcnow()
        if end <= start:
            raise ValueError("--until must be after --since")
        result = replay(s3, bucket, log_group_events(aws.client("logs"), group, start, end))
    print_json(result.summary())
    return 0
