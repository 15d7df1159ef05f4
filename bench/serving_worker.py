"""One serving container for bench/serving.py: a fresh process that imports a handler and serves.

Run by layers/runtime/bootstrap.py (``--driver``) inside ``python3.12 -I -S`` with the artifact's
folders on sys.path, as ``serving_worker.py ours|baseline cold|full``. It prints ``READY`` the
moment the first request is answered (the parent times spawn -> READY as the cold start), and in
``full`` mode then one JSON line of warm figures. AWS is the moto server the parent runs.
Standard library only: nothing else is importable before the handler is.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

started = time.perf_counter()
EVENTS = Path(__file__).resolve().parents[1] / "events"
WARM_CALLS = int(os.environ.get("BENCH_WARM_CALLS", "5000"))
BATCH_CALLS = int(os.environ.get("BENCH_BATCH_CALLS", "40"))
SQS_CALLS = int(os.environ.get("BENCH_SQS_CALLS", "200"))


class Context:
    function_name = "bench-predict"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-predict"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/bench-predict"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class StubSQS:
    """Accepts every message without a network call, so only our code is timed."""

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Successful": [{"Id": e["Id"], "MessageId": e["Id"]} for e in Entries]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_calls(handler: Any, event: dict[str, Any], n: int) -> list[float]:
    context = Context()
    out = []
    # EMF metrics and logs go to stdout as in Lambda; /dev/null keeps the writes but not the pipe.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for _ in range(n):
            t = time.perf_counter()
            handler(event, context)
            out.append((time.perf_counter() - t) * 1000.0)
    return out


def peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec,
    # so a worker spawned by a big parent would report the parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def main() -> None:
    which, mode = sys.argv[1], sys.argv[2]
    single = json.loads((EVENTS / "predict_single.json").read_text())
    # The regression row of bench/serving.py sends a row of its own model in the same recorded event.
    if os.environ.get("BENCH_PREDICT_BODY"):
        single = {**single, "body": os.environ["BENCH_PREDICT_BODY"]}
    t_import = time.perf_counter()
    if which == "ours":
        from mlops.handlers import predict as module
    else:
        # The baseline's code asset is its one file, on sys.path as /var/task is.
        import baseline_handler as module  # type: ignore[import-not-found, no-redef]
    t_first = time.perf_counter()
    answer = module.handler(single, Context())
    done = time.perf_counter()
    assert answer["statusCode"] == 200, answer
    print(
        "READY", json.dumps({"import_s": t_first - t_import, "first_request_s": done - t_first}), flush=True
    )
    if mode != "full":
        return
    figures: dict[str, Any] = {}
    batch_body = {"instances": [json.loads(single["body"])["features"]] * 1000}
    batch = {**single, "body": json.dumps(batch_body)}
    if which == "ours":
        runtime = module.runtime()
        real_sqs, runtime.sqs = runtime.sqs, StubSQS()
    warm = timed_calls(module.handler, single, WARM_CALLS)
    figures["warm_p50_ms"] = percentile(warm, 0.5)
    figures["warm_p99_ms"] = percentile(warm, 0.99)
    batches = timed_calls(module.handler, batch, BATCH_CALLS)
    figures["batch1000_ms"] = percentile(batches, 0.5)
    if which == "ours":
        from mlops.serving.predict import predict

        runtime.sqs = real_sqs
        model = runtime.cache.current()
        one = predict(model, json.loads(single["body"]), "bench", 1).batch
        thousand = predict(model, batch_body, "bench", 1000).batch
        sends = []
        for _ in range(SQS_CALLS):
            t = time.perf_counter()
            runtime.log_predictions(one)
            sends.append((time.perf_counter() - t) * 1000.0)
        figures["sqs_send_p50_ms"] = percentile(sends, 0.5)
        t = time.perf_counter()
        runtime.log_predictions(thousand)
        figures["sqs_send_batch1000_ms"] = (time.perf_counter() - t) * 1000.0
    figures["peak_rss_mb"] = peak_rss_mb()
    print("RESULT", json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
