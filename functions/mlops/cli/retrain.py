"""`mlops retrain`: run one retraining now (same run as the retrain Lambda), with the lock and cooldown;
or show, pause and resume the retraining condition that keeps retraining going while an alarm holds."""

from __future__ import annotations

import argparse
import getpass

from mlops import aws
from mlops import resources as r
from mlops.cli.common import add_resource_flags, artifact_bucket, print_json, registry_from_args, setting
from mlops.retraining.persistence import load_condition, note_run, set_paused
from mlops.retraining.run import Outcome, RetrainContext, Trigger, TriggerKind, run_retraining


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrain", help="train, gate and (per the spec) promote a candidate now")
    p.add_argument("--reason", default="requested from the command line")
    p.add_argument("--force", action="store_true", help="ignore the cooldown (never a running lock)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--status", action="store_true", help="show the retraining condition and its attempts")
    mode.add_argument("--pause", action="store_true", help="stop retrying while an alarm holds")
    mode.add_argument("--resume", action="store_true", help="retry again after a pause")
    p.add_argument("--log-bucket", default=None, help=f"default: ${r.LOG_BUCKET.env_var}")
    p.add_argument("--report-bucket", default=None, help=f"default: ${r.REPORT_BUCKET.env_var}")
    add_resource_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.status or args.pause or args.resume:
        registry = registry_from_args(args)
        if args.status:
            condition = load_condition(registry)
            print_json(condition.model_dump(mode="json") if condition else {"state": "none"})
            return 0
        actor = f"cli:{getpass.getuser()}"
        changed = set_paused(registry, args.pause, actor, args.reason, registry.clock())
        print_json(changed.model_dump(mode="json"))
        return 0
    ctx = RetrainContext(
        registry=registry_from_args(args),
        s3=aws.client("s3"),
        sns=aws.client("sns"),
        artifact_bucket=artifact_bucket(args),
        log_bucket=setting(args, "log_bucket", r.LOG_BUCKET.env_var, "--log-bucket"),
        report_bucket=setting(args, "report_bucket", r.REPORT_BUCKET.env_var, "--report-bucket"),
        topic_arn=None,
    )
    trigger = Trigger(TriggerKind.MANUAL, reason=args.reason, actor=f"cli:{getpass.getuser()}")
    result = run_retraining(ctx, trigger, force=args.force)
    note_run(ctx, result)
    print_json(result.as_dict())
    return 1 if result.outcome is Outcome.FAILED else 0
