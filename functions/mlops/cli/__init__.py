"""The `mlops` command line. Each sub-command lives in its own module with `register(subparsers)`.

Results go to stdout (JSON for every command that returns data), logs and progress to stderr,
so `mlops ... | jq` works. Sub-command modules import heavy libraries only inside the function
that runs the command: `mlops --help` must not pay for sklearn, pandas or boto3.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from mlops.shared.errors import MlopsError

NO_CREDENTIALS = "no AWS credentials: set them, or use --endpoint-url for a local stack"

# Sub-command modules, in the order `mlops --help` lists them.
COMMAND_MODULES = ("demo", "local", "datagen", "train", "registry", "monitor", "reports", "retrain", "logs")


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
    _logs_to_stderr()
    try:
        return int(args.func(args) or 0)
    except NoCredentialsError:
        print(f"mlops: error: {NO_CREDENTIALS}", file=sys.stderr)
        return 2
    except (MlopsError, CliError, ValueError) as err:
        # The storage layer wraps botocore's errors into domain errors; the missing-credentials
        # cause still deserves the hint that a local stack needs no account.
        hint = f" ({NO_CREDENTIALS})" if isinstance(err.__cause__, NoCredentialsError) else ""
        print(f"mlops: error: {err}{hint}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as err:
        print(f"mlops: error: AWS call failed: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlops: interrupted", file=sys.stderr)
        return 130


def _logs_to_stderr() -> None:
    """The shared Powertools logger writes to stdout, as Lambda wants; a command's stdout is its result."""
    from mlops.shared.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        # Not setStream: it flushes the old stream, which may be closed; resolve stderr per write.
        handler.stream = _CurrentStderr()


class _CurrentStderr:
    """Whatever sys.stderr is at the time of writing (it may be replaced after start-up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
