"""`mlops reports list|open`: the monitoring runs of a model, and local copies of their pages."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from mlops.cli.common import MODEL, REPORT_BUCKET, settings

DEFAULT_OUT = "mlops-reports"
DEFAULT_RUN_PAGES = 20


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reports", help="monitoring runs over time: list them, open the history page")
    rsub = p.add_subparsers(dest="reports_command", required=True, metavar="ACTION")
    ls = rsub.add_parser("list", help="runs of the model (newest first) with alarms and key figures, as JSON")
    ls.add_argument("--version", type=int, default=None, help="only this version")
    ls.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    ls.set_defaults(func=_list)
    op = rsub.add_parser(
        "open", help="write a local copy of the history page (default) or of one run's report; print its path"
    )
    op.add_argument("--run", default=None, help="a run id from `reports list` (default: the history page)")
    op.add_argument("--version", type=int, default=None, help="the version of --run (default: the champion)")
    op.add_argument("--out", default=DEFAULT_OUT, help=f"directory for the copies (default ./{DEFAULT_OUT})")
    op.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUN_PAGES,
        help=f"with the history page, also copy the newest N run reports (default {DEFAULT_RUN_PAGES})",
    )
    op.add_argument("--browser", action="store_true", help="also open the copy in the default browser")
    op.set_defaults(func=_open)
    for parser in (ls, op):
        parser.add_argument("--model", default=None, help=f"model name (default: ${MODEL.env_var})")
        parser.add_argument(
            "--report-bucket", default=None, help=f"report bucket (default: ${REPORT_BUCKET.env_var})"
        )


def _target(args: argparse.Namespace) -> tuple[str, str]:
    found = settings(args, MODEL, REPORT_BUCKET)
    return found["model"], found["report_bucket"]


def _history(model: str, bucket: str) -> Any:
    from mlops.cloud import aws
    from mlops.monitoring.history import read_history
    from mlops.shared.errors import NotFoundError

    history = read_history(aws.client("s3"), bucket, model)
    if history is None:
        raise NotFoundError(
            f"no monitoring history for model {model!r} in s3://{bucket} yet: the monitor has not run "
            "(run `mlops monitor run`, or wait for its schedule)"
        )
    return history


def run_rows(history: Any, version: int | None, limit: int) -> list[dict[str, Any]]:
    """The runs of a history as `reports list` prints them, newest first."""
    runs = [r for r in history.runs if version is None or r.version == version]
    runs.sort(key=lambda r: (r.generated_at, r.version), reverse=True)
    return [
        {
            "run_id": r.run_id,
            "generated_at": r.generated_at,
            "window_start": r.window_start,
            "window_end": r.window_end,
            "version": r.version,
            "champion": r.champion,
            "status": r.status,
            "prediction_count": r.prediction_count,
            "label_count": r.label_count,
            "primary_metric": r.primary_metric,
            "production_value": r.production_value,
            "production_interval": r.production_interval,
            "test_value": r.test_value,
            "estimated_value": r.estimated_value,
            "metric_gap": r.metric_gap,
            "drift_share": r.drift_share,
            "drifted_features": r.drifted_features,
            "prediction_psi": r.prediction_psi,
            "alarms_met": r.alarms_met,
            "report_html": r.report_html,
            "report_json": r.report_json,
        }
        for r in runs[: max(0, limit)]
    ]


def _list(args: argparse.Namespace) -> int:
    from mlops.cli.common import print_json
    from mlops.cloud.logstore import history_keys
    from mlops.shared.errors import NotFoundError

    model, bucket = _target(args)
    history = _history(model, bucket)
    rows = run_rows(history, args.version, args.limit)
    if args.version is not None and not rows:
        raise NotFoundError(f"no monitoring run of {model} v{args.version}")
    print_json({"model_name": model, "history_page": history_keys(model)[1], "runs": rows})
    return 0


def _copy(s3: Any, bucket: str, key: str, out: Path) -> Path:
    """The object at `key` written under `out` at the same relative path (relative links keep working)."""
    from mlops.cloud.storage import get_bytes

    path = out.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(get_bytes(s3, bucket, key))
    return path


def _open(args: argparse.Namespace) -> int:
    from mlops.cloud import aws
    from mlops.cloud.logstore import history_keys
    from mlops.shared.errors import NotFoundError

    model, bucket = _target(args)
    history = _history(model, bucket)
    s3 = aws.client("s3")
    out = Path(args.out)
    if args.run is None:
        runs = sorted(history.runs, key=lambda r: r.generated_at, reverse=True)
        for r in runs[: max(0, args.runs)]:
            if r.report_html:
                _copy(s3, bucket, r.report_html, out)
        page = _copy(s3, bucket, history_keys(model)[1], out)
    else:
        matches = [r for r in history.runs if r.run_id == args.run]
        if args.version is not None:
            matches = [r for r in matches if r.version == args.version]
        elif len(matches) > 1:
            matches = [r for r in matches if r.champion] or matches
        if not matches or not matches[0].report_html:
            which = f" of v{args.version}" if args.version is not None else ""
            raise NotFoundError(
                f"no report of run {args.run!r}{which} for model {model} (see `mlops reports list`)"
            )
        page = _copy(s3, bucket, matches[0].report_html, out)
    print(os.path.abspath(page))
    if args.browser:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())
    return 0
