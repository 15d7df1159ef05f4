"""The `mlops` command line. Each sub-command lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from mlops.errors import MlopsError

# Sub-command modules, in the order `mlops --help` lists them.
COMMAND_MODULES = ("demo", "local", "datagen", "train", "registry", "monitor", "retrain", "logs")


class CliError(Exception):
    """A user mistake the CLI reports in one line (bad flag values, missing settings)."""


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="mlops",
        description="Serve, monitor, retrain and govern scikit-learn models on AWS serverless.",
    )
    parser.add_argument(
        "--endpoint-url",
        default=None,
        help="AWS endpoint (e.g. a moto server at http://127.0.0.1:5000); default: AWS_ENDPOINT_URL or AWS",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"mlops.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    try:
        return int(args.func(args) or 0)
    except (MlopsError, CliError, ValueError) as err:
        print(f"mlops: error: {err}", file=sys.stderr)
        return 2
    except NoCredentialsError:
        print(
            "mlops: error: no AWS credentials (set them, or use --endpoint-url for a local stack)",
            file=sys.stderr,
        )
        return 2
    except (ClientError, BotoCoreError) as err:
        print(f"mlops: error: AWS call failed: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
