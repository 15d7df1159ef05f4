"""Run a built function the way the Lambda Python runtime does, under ``python3.12 -I -S``.

Only the standard library is importable when this starts; the paths given are put first on
``sys.path`` in Lambda's order: the code asset (/var/task), the layer (/opt/python), then the
runtime's own packages (the AWS SDK, /var/runtime). Two modes:

    bootstrap.py --task DIR --layer DIR --runtime DIR --handler mlops.handlers.predict.handler
        init (import the handler), then one JSON answer per JSON request line on stdin
    bootstrap.py --task DIR --layer DIR --runtime DIR --driver script.py [args...]
        run a script in the prepared interpreter (the benchmarks time a cold start with it)

The protocol uses the original stdout; the function's own output (logs, EMF metrics) goes to
stderr, like a runtime that keeps the two apart. Every protocol line starts with ``@@`` and
the init line reports what a test needs to judge the artifact: where each module came from,
which files were compiled from source, and whether the read-only copies really refused writes.
"""

import argparse
import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import time
import traceback
from typing import IO, Any

STARTED = time.perf_counter()
PROTOCOL_PREFIX = "@@"
# Packages whose origin a test checks: the SDK from the runtime, the rest from layer or code.
REPORTED_MODULES = ("boto3", "botocore", "numpy", "onnxruntime", "pydantic", "aws_lambda_powertools", "mlops")

compiled_from_source: list[str] = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code


def _recording_source_to_code(self: Any, data: Any, path: Any, *, _optimize: int = -1) -> Any:
    # Called by the import system only when no usable bytecode exists for `path`.
    compiled_from_source.append(str(path))
    return _source_to_code(self, data, path, _optimize=_optimize)


importlib.machinery.SourceFileLoader.source_to_code = _recording_source_to_code  # type: ignore[assignment]


class LambdaContext:
    """The attributes of the runtime's context object that handlers and Powertools read."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: float, request_id: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "artifact"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _write_refusals(roots: list[str]) -> dict[str, str | None]:
    """For each root: None if writing was refused as on Lambda, else what could be written."""
    found: dict[str, str | None] = {}
    for root in roots:
        written: str | None = None
        probe = os.path.join(root, ".write-probe")
        try:
            with open(probe, "x"):
                written = probe
            os.unlink(probe)
        except OSError:
            pass
        if written is None:
            for dirpath, _dirs, files in os.walk(root):
                pycs = [f for f in files if f.endswith(".pyc")]
                if pycs:
                    target = os.path.join(dirpath, pycs[0])
                    try:
                        with open(target, "ab"):
                            written = target
                    except OSError:
                        pass
                    break
        found[root] = written
    return found


def _origins() -> dict[str, str | None]:
    origins: dict[str, str | None] = {}
    for name in REPORTED_MODULES:
        module = sys.modules.get(name)
        origins[name] = getattr(module, "__file__", None) if module else None
    return origins


def _report(roots: list[str]) -> dict[str, Any]:
    return {
        "python": list(sys.version_info[:3]),
        "flags": {"isolated": sys.flags.isolated, "no_site": sys.flags.no_site},
        "sys_path": list(sys.path),
        "origins": _origins(),
        "compiled_from_source": [p for p in compiled_from_source if p.startswith(tuple(roots))],
        "writable": {k: v for k, v in _write_refusals(roots).items() if v is not None},
        "init_s": time.perf_counter() - STARTED,
    }


def _send(out: IO[str], kind: str, value: Any) -> None:
    out.write(f"{PROTOCOL_PREFIX}{json.dumps({kind: value}, default=str)}\n")
    out.flush()


def _error(err: BaseException) -> dict[str, str]:
    return {"type": type(err).__name__, "message": str(err), "trace": traceback.format_exc()}


def serve(handler_path: str, roots: list[str], out: IO[str]) -> int:
    module_name, _, function_name = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as err:  # what Lambda reports as Runtime.ImportModuleError
        _send(out, "init_error", _error(err))
        return 1
    _send(out, "init", _report(roots))
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("report"):
            _send(out, "report", _report(roots))
            continue
        context = LambdaContext(
            request.get("function_name", "artifact"),
            int(request.get("memory_mb", 1024)),
            float(request.get("timeout_s", 30)),
            request.get("request_id", "00000000-0000-4000-8000-000000000000"),
        )
        try:
            result = handler(request["event"], context)
        except Exception as err:  # Lambda answers an unhandled error as a function error
            _send(out, "error", _error(err))
            continue
        _send(out, "result", result)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="run a built function as the Lambda runtime does")
    parser.add_argument("--task", required=True, help="the code asset (/var/task)")
    parser.add_argument("--layer", action="append", default=[], help="a layer's python/ (/opt/python)")
    parser.add_argument("--runtime", required=True, help="the runtime's packages (the AWS SDK)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--handler", help="module.function, as in the function's configuration")
    mode.add_argument("--driver", help="a script to run in this interpreter instead")
    args, rest = parser.parse_known_args()
    roots = [os.path.abspath(p) for p in (args.task, *args.layer)]
    sys.path[:0] = [*roots, os.path.abspath(args.runtime)]
    if args.driver:
        import runpy

        sys.argv = [args.driver, *rest]
        runpy.run_path(args.driver, run_name="__main__")
        return 0
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    return serve(args.handler, roots, out)


if __name__ == "__main__":
    sys.exit(main())
