"""`mlops train`: train, prove and register a version from a spec and a data file."""

from __future__ import annotations

import argparse
import getpass

from mlops.cli.common import BUCKET, TABLE, add_resource_flags, print_json, registry, settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model from a spec and data, register it (and optionally promote)"
    )
    p.add_argument("--spec", required=True, help="model spec (TOML)")
    p.add_argument(
        "--data",
        default=None,
        help="training data (.csv or .parquet); default: the spec's training_data",
    )
    p.add_argument("--promote", action="store_true", help="make the new version the champion")
    p.add_argument("--reason", default="trained with mlops train", help="reason recorded with --promote")
    add_resource_flags(p, model=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops.cloud import aws
    from mlops.model.admin import promote_version
    from mlops.model.registration import register_model, snapshot_training_data
    from mlops.model.spec import load_spec
    from mlops.model.training import load_table, train_model

    found = settings(args, TABLE, BUCKET)
    spec = load_spec(args.spec)
    data_path = args.data or spec.training_data
    if not data_path:
        raise ValueError("--data is required (the spec has no training_data)")
    frame = load_table(data_path)
    result = train_model(frame, spec)
    models = registry(found, model_name=spec.name)
    s3, bucket = aws.client("s3"), found["bucket"]
    data = snapshot_training_data(s3, bucket, spec.name, frame)
    record = register_model(result, models, s3, bucket, data, trigger="cli")
    out = {
        "model": spec.name,
        "version": record.version,
        "primary_metric": record.primary_metric,
        "test_metrics": record.test_metrics,
        "artifacts": {k: v.sha256 for k, v in record.artifacts.items()},
    }
    if args.promote:
        entry = promote_version(
            models, s3, bucket, record.version, actor=f"cli:{getpass.getuser()}", reason=args.reason
        )
        out["promoted"] = entry.model_dump(mode="json")
    print_json(out)
    return 0
