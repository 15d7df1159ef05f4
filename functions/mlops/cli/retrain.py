"""`mlops retrain`: run one retraining now (same run as the retrain Lambda), with the lock and cooldown;
or show, pause and resume the retraining condition that keeps retraining going while an alarm holds."""

from __future__ import annotations

import argparse
import getpass

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

# By outcome: 0 a candidate is in (promoted, or approved and awaiting a person); 1 nothing
# usable came of the run (failed, or the gate rejected the candidate); 3 skipped (a run
# holds the lock, or the cooldown has not passed), so a script can tell "try later".
EXIT_CODES = {"promoted": 0, "approved": 0, "failed": 1, "rejected": 1, "skipped": 3}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "retrain",
        help="train, gate and (per the spec) promote a candidate now",
        description="Exit status: 0 promoted or approved, 1 failed or rejected by the gate, 3 skipped "
        "(another run holds the lock, or the cooldown has not passed).",
    )
    p.add_argument("--reason", default="requested from the command line")
    p.add_argument("--force", action="store_true", help="ignore the cooldown (never a running lock)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--status", action="store_true", help="show the retraining condition and its attempts")
    mode.add_argument("--pause", action="store_true", help="stop retrying while an alarm holds")
    mode.add_argument("--resume", action="store_true", help="retry again after a pause")
    p.add_argument("--log-bucket", default=None, help=f"default: ${LOG_BUCKET.env_var}")
    p.add_argument("--report-bucket", default=None, help=f"default: ${REPORT_BUCKET.env_var}")
    add_resource_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops.cloud import aws
    from mlops.retraining.persistence import load_condition, note_run, set_paused
    from mlops.retraining.run import RetrainContext, Trigger, TriggerKind, run_retraining

    if args.status or args.pause or args.resume:
        models = registry(settings(args, TABLE, MODEL))
        if args.status:
            condition = load_condition(models)
            print_json(condition.model_dump(mode="json") if condition else {"state": "none"})
            return 0
        actor = f"cli:{getpass.getuser()}"
        changed = set_paused(models, args.pause, actor, args.reason, models.clock())
        print_json(changed.model_dump(mode="json"))
        return 0
    found = settings(args, TABLE, MODEL, BUCKET, LOG_BUCKET, REPORT_BUCKET)
    ctx = RetrainContext(
        registry=registry(found),
        s3=aws.client("s3"),
        sns=aws.client("sns"),
        artifact_bucket=found["bucket"],
        log_bucket=found["log_bucket"],
        report_bucket=found["report_bucket"],
        topic_arn=None,
    )
    trigger = Trigger(TriggerKind.MANUAL, reason=args.reason, actor=f"cli:{getpass.getuser()}")
    result = run_retraining(ctx, trigger, force=args.force)
    note_run(ctx, result)
    print_json(result.as_dict())
    return EXIT_CODES[result.outcome.value]
