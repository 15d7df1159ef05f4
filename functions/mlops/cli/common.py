"""Settings shared by CLI sub-commands: which table, bucket and model to act on."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from mlops import aws
from mlops import resources as r
from mlops.registry import Registry


def add_resource_flags(parser: argparse.ArgumentParser, model: bool = True) -> None:
    parser.add_argument(
        "--table", default=None, help=f"registry table (default: ${r.REGISTRY_TABLE.env_var})"
    )
    parser.add_argument(
        "--bucket", default=None, help=f"artifact bucket (default: ${r.ARTIFACT_BUCKET.env_var})"
    )
    if model:
        parser.add_argument("--model", default=None, help=f"model name (default: ${r.MODEL_NAME_ENV})")


def setting(args: argparse.Namespace, attr: str, env_var: str, flag: str) -> str:
    from mlops.cli import CliError

    value = getattr(args, attr, None) or os.environ.get(env_var)
    if not value:
        raise CliError(f"{flag} is required (or set {env_var})")
    return str(value)


def registry_from_args(args: argparse.Namespace, model_name: str | None = None) -> Registry:
    table = setting(args, "table", r.REGISTRY_TABLE.env_var, "--table")
    name = model_name or setting(args, "model", r.MODEL_NAME_ENV, "--model")
    return Registry(aws.client("dynamodb"), table, name)


def artifact_bucket(args: argparse.Namespace) -> str:
    return setting(args, "bucket", r.ARTIFACT_BUCKET.env_var, "--bucket")


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))
