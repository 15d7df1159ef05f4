"""Settings shared by CLI sub-commands: which table, bucket and model to act on.

Imports here stay light: `mlops --help` builds every sub-command's parser, and nothing
heavy (boto3, pandas, sklearn) may load before a command actually runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.shared import resources as r

if TYPE_CHECKING:
    from mlops.cloud.registry import Registry


@dataclass(frozen=True)
class Setting:
    """A value a command needs: from its flag, else from its environment variable."""

    attr: str
    flag: str
    env_var: str


TABLE = Setting("table", "--table", r.REGISTRY_TABLE.env_var)
BUCKET = Setting("bucket", "--bucket", r.ARTIFACT_BUCKET.env_var)
MODEL = Setting("model", "--model", r.MODEL_NAME_ENV)
LOG_BUCKET = Setting("log_bucket", "--log-bucket", r.LOG_BUCKET.env_var)
REPORT_BUCKET = Setting("report_bucket", "--report-bucket", r.REPORT_BUCKET.env_var)


def add_resource_flags(parser: argparse.ArgumentParser, model: bool = True) -> None:
    parser.add_argument("--table", default=None, help=f"registry table (default: ${TABLE.env_var})")
    parser.add_argument("--bucket", default=None, help=f"artifact bucket (default: ${BUCKET.env_var})")
    if model:
        parser.add_argument("--model", default=None, help=f"model name (default: ${MODEL.env_var})")


def settings(args: argparse.Namespace, *wanted: Setting) -> dict[str, str]:
    """Every wanted value by attribute name; all missing ones are named in one error."""
    from mlops.cli import CliError

    found: dict[str, str] = {}
    missing: list[str] = []
    for want in wanted:
        value = getattr(args, want.attr, None) or os.environ.get(want.env_var)
        if value:
            found[want.attr] = str(value)
        else:
            missing.append(f"{want.flag} is required (or set {want.env_var})")
    if missing:
        raise CliError("; ".join(missing))
    return found


def registry(found: dict[str, str], model_name: str | None = None) -> Registry:
    from mlops.cloud import aws
    from mlops.cloud.registry import Registry

    return Registry(aws.client("dynamodb"), found["table"], model_name or found["model"])


def print_json(value: Any) -> None:
    """The command's result: the only thing a command writes to stdout."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()
