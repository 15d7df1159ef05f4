"""`mlops registry`: list, show, promote, rollback and history of model versions."""

from __future__ import annotations

import argparse
import getpass
import os
from typing import TYPE_CHECKING

from mlops.cli.common import (
    BUCKET,
    MODEL,
    REPORT_BUCKET,
    TABLE,
    add_resource_flags,
    print_json,
    registry,
    settings,
)

if TYPE_CHECKING:
    from mlops.cloud.registry import Registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("registry", help="inspect and change the model registry")
    rsub = p.add_subparsers(dest="registry_command", required=True, metavar="ACTION")

    ls = rsub.add_parser("list", help="every version with its status and test metrics")
    show = rsub.add_parser(
        "show", help="one version: metrics, lineage, gate report, when it served, its monitoring reports"
    )
    show.add_argument("version", type=int)
    show.add_argument(
        "--report-bucket", default=None, help=f"report bucket (default: ${REPORT_BUCKET.env_var})"
    )
    promote = rsub.add_parser("promote", help="make a version the champion")
    promote.add_argument("version", type=int)
    promote.add_argument("--reason", required=True)
    rollback = rsub.add_parser("rollback", help="return to the version that served before the champion")
    rollback.add_argument("--reason", required=True)
    history = rsub.add_parser("history", help="every promotion and rollback; --at: who served then")
    history.add_argument("--at", default=None, help="ISO 8601 time, e.g. 2026-11-20T10:00:00Z")
    for parser in (ls, show, promote, rollback, history):
        add_resource_flags(parser)
    ls.set_defaults(func=_list)
    show.set_defaults(func=_show)
    promote.set_defaults(func=_promote)
    rollback.set_defaults(func=_rollback)
    history.set_defaults(func=_history)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _registry(args: argparse.Namespace) -> Registry:
    return registry(settings(args, TABLE, MODEL))


def _list(args: argparse.Namespace) -> int:
    from mlops.model.admin import model_list

    print_json(model_list(_registry(args))["versions"])
    return 0


def _show(args: argparse.Namespace) -> int:
    """The same answer as the admin API's GET /models/{version}."""
    from mlops.cloud import aws
    from mlops.model.admin import model_detail

    found = settings(args, TABLE, MODEL, BUCKET)
    report_bucket = getattr(args, REPORT_BUCKET.attr) or os.environ.get(REPORT_BUCKET.env_var)
    detail = model_detail(registry(found), aws.client("s3"), found["bucket"], report_bucket, args.version)
    print_json(detail)
    return 0


def _promote(args: argparse.Namespace) -> int:
    from mlops.cloud import aws
    from mlops.model.admin import promote_version

    found = settings(args, TABLE, MODEL, BUCKET)
    entry = promote_version(
        registry(found), aws.client("s3"), found["bucket"], args.version, _actor(), args.reason
    )
    print_json(entry.model_dump(mode="json"))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from mlops.cloud import aws
    from mlops.model.admin import rollback_champion

    found = settings(args, TABLE, MODEL, BUCKET)
    entry = rollback_champion(registry(found), aws.client("s3"), found["bucket"], _actor(), args.reason)
    print_json(entry.model_dump(mode="json"))
    return 0


def _history(args: argparse.Namespace) -> int:
    from mlops.model.admin import served_at_answer

    found = _registry(args)
    if args.at:
        print_json(served_at_answer(found, args.at))
        return 0
    print_json([h.model_dump(mode="json") for h in found.history()])
    return 0
