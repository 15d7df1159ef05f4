"""`mlops datagen`: write the demo churn data set, with optional drift, to CSV or Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "datagen", help="generate demo customer-churn data (see mlops.datagen.churn for the knobs)"
    )
    p.add_argument(
        "--task",
        choices=("binary_classification", "regression"),
        default="binary_classification",
        help="churn data (default) or the pricing data of the regression demo (mlops.datagen.pricing)",
    )
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--covariate-shift", type=float, default=0.0, help="standard deviations (e.g. 1.0)")
    p.add_argument("--concept-shift", type=float, default=0.0, help="0..1")
    p.add_argument("--new-category-rate", type=float, default=0.0, help="0..1")
    p.add_argument(
        "--shift-features",
        default=None,
        help="comma-separated features the covariate shift moves (default: the demo's two)",
    )
    p.add_argument("--out", required=True, help="output file (.csv or .parquet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops.datagen.churn import DEFAULT_SHIFT_FEATURES, generate_churn

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"--out: use a .csv or .parquet file name, not {out.name!r}")
    if args.rows < 1:
        raise ValueError("--rows must be at least 1")
    if args.task == "regression":
        from mlops.datagen.pricing import generate_prices

        if not 0 <= args.concept_shift <= 1:
            raise ValueError("--concept-shift must be between 0 and 1")
        frame = generate_prices(
            args.rows, args.seed, covariate_shift=args.covariate_shift, concept_shift=args.concept_shift
        )
    else:
        frame = generate_churn(
            args.rows,
            args.seed,
            covariate_shift=args.covariate_shift,
            concept_shift=args.concept_shift,
            new_category_rate=args.new_category_rate,
            shift_features=(
                tuple(s for s in args.shift_features.split(",") if s)
                if args.shift_features is not None
                else DEFAULT_SHIFT_FEATURES
            ),
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    print(f"wrote {len(frame)} rows to {out}")
    return 0
