"""`mlops demo`: play a model's whole life on the local stack and write demo-report.html."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
from pathlib import Path

from mlops.cli.common import print_json
from mlops.cli.local import DEMO_SPEC


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train, serve, drift, alarm, retrain and promote, all locally")
    p.add_argument(
        "--task",
        choices=("binary_classification", "regression"),
        default="binary_classification",
        help="whose story: the churn classifier (default) or the pricing regression model",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--days", type=int, default=7, help="simulated days of traffic (default 7)")
    p.add_argument("--shift-day", type=int, default=2, help="day the customers change (default 2)")
    p.add_argument(
        "--shift-size", type=float, default=1.0, help="size of the covariate and concept shift, 0..1"
    )
    p.add_argument("--covariate-shift", type=float, default=None, help="override: covariate shift, 0..1")
    p.add_argument(
        "--concept-shift",
        type=float,
        default=None,
        help="override: concept shift, 0..1 (0: a quiet run; it succeeds when no performance alarm fires)",
    )
    p.add_argument("--rows-per-slot", type=int, default=400, help="customers per 6-hour slot (default 400)")
    p.add_argument("--out", default="demo-report.html", help="report path (default demo-report.html)")
    p.add_argument(
        "--json", action="store_true", help="print only the outcome as JSON on stdout (progress to stderr)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.task == "regression":
        return run_pricing(args)
    if args.days < 2 or args.days > 60:
        raise ValueError("--days must be between 2 and 60")
    if not 0 < args.shift_day < args.days:
        raise ValueError(f"--shift-day must be between 1 and {args.days - 1}")
    covariate = args.shift_size if args.covariate_shift is None else args.covariate_shift
    concept = args.shift_size if args.concept_shift is None else args.concept_shift
    for flag, value in (
        ("--shift-size", args.shift_size),
        ("--covariate-shift", covariate),
        ("--concept-shift", concept),
    ):
        if not 0 <= value <= 1:
            raise ValueError(f"{flag} must be between 0 and 1")
    if args.rows_per_slot < 20:
        raise ValueError("--rows-per-slot must be at least 20")
    started = time.monotonic()
    # Said before the imports of the ML stack, which take seconds on a first run.
    print(
        f"serverless-mlops demo: {args.days} simulated days, customers change on day {args.shift_day + 1}",
        file=sys.stderr if args.json else sys.stdout,
        flush=True,
    )
    from mlops.local.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        spec_path=DEMO_SPEC,
        seed=args.seed,
        days=args.days,
        shift_day=args.shift_day,
        covariate_shift=covariate,
        concept_shift=concept,
        rows_per_slot=args.rows_per_slot,
        report_path=Path(args.out),
    )
    to_stderr = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with to_stderr:
        outcome = run_demo(cfg)
    took = time.monotonic() - started
    if args.json:
        print_json(
            {
                **dataclasses.asdict(outcome),
                "ok": outcome.ok,
                "seconds": round(took, 1),
                "report": str(cfg.report_path.resolve()),
            }
        )
        return 0 if outcome.ok else 1
    print()
    rec = outcome.recovery
    judged = (
        f" The champion reaches {rec.metric} {rec.champion_fresh:.3f} on fresh traffic of the final world "
        f"(oracle refit {rec.oracle:.3f}; before the shift production was "
        f"{'n/a' if rec.pre_shift is None else f'{rec.pre_shift:.3f}'})."
        if rec
        else ""
    )
    if outcome.ok and outcome.quiet_expected:
        print(f"A quiet run, and the loop kept quiet ({took:.0f} s): no performance alarm, no retraining.")
        print(judged.strip())
    elif outcome.ok:
        print(
            f"The story happened in {took:.0f} s: a performance alarm fired, v{outcome.promoted_version} "
            f"was retrained, gated and promoted.{judged}"
        )
    else:
        print(f"The story did not complete ({took:.0f} s):")
        for failure in outcome.failures:
            print(f"  - {failure}")
    print(f"report: {cfg.report_path.resolve()}")
    return 0 if outcome.ok else 1


def run_pricing(args: argparse.Namespace) -> int:
    """The pricing story (`mlops.local.pricing_demo`); exit 0 only when it happened."""
    from mlops.local.pricing_demo import PricingDemoConfig, run_pricing_demo

    if args.days < 3 or args.days > 60:
        raise ValueError("--days must be between 3 and 60 for the pricing story")
    if not 0 < args.shift_day < args.days - 1:
        raise ValueError(f"--shift-day must be between 1 and {args.days - 2}")
    covariate = args.shift_size if args.covariate_shift is None else args.covariate_shift
    concept = args.shift_size if args.concept_shift is None else args.concept_shift
    for flag, value in (("--covariate-shift", covariate), ("--concept-shift", concept)):
        if not 0 <= value <= 1:
            raise ValueError(f"{flag} must be between 0 and 1")
    if args.rows_per_slot < 20:
        raise ValueError("--rows-per-slot must be at least 20")
    cfg = PricingDemoConfig(
        seed=args.seed,
        days=args.days,
        shift_day=args.shift_day,
        covariate_shift=covariate,
        concept_shift=concept,
        rows_per_slot=args.rows_per_slot,
        report_path=Path(args.out),
    )
    started = time.monotonic()
    to_stderr = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with to_stderr:
        print(f"pricing demo: {cfg.days} simulated days, quotes change on day {cfg.shift_day + 1}")
        outcome = run_pricing_demo(cfg)
    took = time.monotonic() - started
    if args.json:
        print_json({**dataclasses.asdict(outcome), "ok": outcome.ok, "seconds": round(took, 1)})
        return 0 if outcome.ok else 1
    if outcome.ok:
        print(
            f"The story happened in {took:.0f} s: MetricGap fired, v{outcome.promoted_version} was "
            f"retrained, gated and promoted; RMSE on fresh quotes {outcome.champion_fresh_rmse:.2f} "
            f"(v1 {outcome.v1_fresh_rmse:.2f}, oracle refit {outcome.oracle_rmse:.2f})."
        )
    else:
        print(f"The story did not complete ({took:.0f} s):")
        for failure in outcome.failures:
            print(f"  - {failure}")
    print(f"report: {cfg.report_path.resolve()}")
    return 0 if outcome.ok else 1
