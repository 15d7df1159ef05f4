"""`mlops registry`: list, show, promote, rollback and history of model versions."""

from __future__ import annotations

import argparse
import getpass

from mlops import aws
from mlops.admin import model_list, promote_version, rollback_champion, served_at_answer
from mlops.cli.common import add_resource_flags, artifact_bucket, print_json, registry_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("registry", help="inspect and change the model registry")
    rsub = p.add_subparsers(dest="registry_command", required=True, metavar="ACTION")

    ls = rsub.add_parser("list", help="every version with its status and test metrics")
    show = rsub.add_parser("show", help="one version in full")
    show.add_argument("version", type=int)
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


def _list(args: argparse.Namespace) -> int:
    print_json(model_list(registry_from_args(args))["versions"])
    return 0


def _show(args: argparse.Namespace) -> int:
    print_json(registry_from_args(args).get_version(args.version).model_dump(mode="json"))
    return 0


def _promote(args: argparse.Namespace) -> int:
    registry, s3 = registry_from_args(args), aws.client("s3")
    entry = promote_version(registry, s3, artifact_bucket(args), args.version, _actor(), args.reason)
    print_json(entry.model_dump(mode="json"))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    registry, s3 = registry_from_args(args), aws.client("s3")
    entry = rollback_champion(registry, s3, artifact_bucket(args), _actor(), args.reason)
    print_json(entry.model_dump(mode="json"))
    return 0


def _history(args: argparse.Namespace) -> int:
    registry = registry_from_args(args)
    if args.at:
        print_json(served_at_answer(registry, args.at))
        return 0
    print_json([h.model_dump(mode="json") for h in registry.history()])
    return 0
