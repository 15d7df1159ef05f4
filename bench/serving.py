"""Serving benchmark: this project's predict handler against a tutorial-style baseline.

Both are real containers in miniature: fresh processes (bench/serving_worker.py) that
import their handler and fetch their model from S3 on a moto server run here. Cold start
is spawn -> first answer (median of several fresh processes); warm figures come from
the same process afterwards, with the SQS send stubbed out (its cost is measured apart).
``--json`` prints one JSON object; otherwise a table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("serving_worker.py")
COLD_STARTS = int(os.environ.get("BENCH_COLD_STARTS", "5"))
TARGETS = {
    "cold_start_s": 0.6,
    "warm_p50_ms": 0.5,
    "batch1000_ms": 10.0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_stack() -> tuple[Any, dict[str, str]]:
    """A moto server with every resource, and the demo model registered and promoted."""
    import boto3
    from mlops import bundle
    from mlops.datagen import generate_churn
    from mlops.lifecycle import TrainingData, register_model
    from mlops.provision import create_resources
    from mlops.registry import Registry
    from mlops.resources import ARTIFACT_BUCKET, REGISTRY_TABLE
    from mlops.spec import load_spec
    from mlops.training import train_model
    from moto.server import ThreadedMotoServer

    # The moto server logs every request; the benchmark prints figures only.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    os.environ.update(env)
    clients = {n: boto3.client(n) for n in ("s3", "dynamodb", "sqs", "sns", "cloudwatch", "events")}
    env.update(create_resources(clients, "bench", "churn"))
    spec = load_spec(ROOT / "functions" / "mlops" / "examples" / "churn" / "spec.toml")
    result = train_model(generate_churn(4000, seed=1), spec)
    registry = Registry(clients["dynamodb"], env[REGISTRY_TABLE.env_var], spec.name)
    record = register_model(
        result,
        registry,
        clients["s3"],
        env[ARTIFACT_BUCKET.env_var],
        TrainingData("0" * 64, result.train_rows),
    )
    registry.promote(record.version, actor="bench", reason="benchmark")
    env["BASELINE_MODEL_BUCKET"] = env[ARTIFACT_BUCKET.env_var]
    env["BASELINE_MODEL_KEY"] = record.artifacts[bundle.PIPELINE].key
    env["POWERTOOLS_METRICS_NAMESPACE"] = "ServerlessMLOps"
    return server, env


def run_worker(which: str, mode: str, env: dict[str, str]) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """Spawn a container; return (seconds to its first answer, its READY detail, its RESULT figures)."""
    child_env = {**os.environ, **env}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), which, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env,
    )
    assert proc.stdout is not None
    cold = float("nan")
    ready: dict[str, Any] = {}
    result: dict[str, Any] = {}
    for line in proc.stdout:
        if line.startswith("READY"):
            cold = time.perf_counter() - started
            ready = json.loads(line.split(" ", 1)[1])
        elif line.startswith("RESULT"):
            result = json.loads(line.split(" ", 1)[1])
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{which} worker failed:\n{err[-3000:]}")
    return cold, ready, result


def measure(which: str, env: dict[str, str]) -> dict[str, Any]:
    cold, ready, figures = run_worker(which, "full", env)
    colds = [cold]
    for _ in range(COLD_STARTS - 1):
        colds.append(run_worker(which, "cold", env)[0])
    return {"cold_start_s": statistics.median(colds), "cold_starts_s": colds, **ready, **figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    server, env = start_stack()
    try:
        ours = measure("ours", env)
        base = measure("baseline", env)
    finally:
        server.stop()
    figures = {
        "cold_start_s": round(ours["cold_start_s"], 3),
        "baseline_cold_start_s": round(base["cold_start_s"], 3),
        "cold_start_speedup": round(base["cold_start_s"] / ours["cold_start_s"], 2),
        "warm_p50_ms": round(ours["warm_p50_ms"], 4),
        "warm_p99_ms": round(ours["warm_p99_ms"], 4),
        "baseline_warm_p50_ms": round(base["warm_p50_ms"], 4),
        "baseline_warm_p99_ms": round(base["warm_p99_ms"], 4),
        "warm_speedup": round(base["warm_p50_ms"] / ours["warm_p50_ms"], 2),
        "batch1000_ms": round(ours["batch1000_ms"], 3),
        "baseline_batch1000_ms": round(base["batch1000_ms"], 3),
        "sqs_send_p50_ms": round(ours["sqs_send_p50_ms"], 3),
        "sqs_send_batch1000_ms": round(ours["sqs_send_batch1000_ms"], 3),
        "peak_rss_mb": round(ours["peak_rss_mb"], 1),
        "baseline_peak_rss_mb": round(base["peak_rss_mb"], 1),
        "import_s": round(ours["import_s"], 3),
        "first_request_s": round(ours["first_request_s"], 3),
        "cold_starts_s": [round(c, 3) for c in ours["cold_starts_s"]],
        "baseline_cold_starts_s": [round(c, 3) for c in base["cold_starts_s"]],
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    rows = [
        ("cold start (spawn -> first answer), s", figures["cold_start_s"], figures["baseline_cold_start_s"]),
        ("warm single row p50, ms", figures["warm_p50_ms"], figures["baseline_warm_p50_ms"]),
        ("warm single row p99, ms", figures["warm_p99_ms"], figures["baseline_warm_p99_ms"]),
        ("1,000-row batch, ms", figures["batch1000_ms"], figures["baseline_batch1000_ms"]),
        ("peak RSS, MB", figures["peak_rss_mb"], figures["baseline_peak_rss_mb"]),
    ]
    print(f"{'serving benchmark':40s} {'ours':>12s} {'baseline':>12s}")
    for name, mine, theirs in rows:
        print(f"{name:40s} {mine:>12} {theirs:>12}")
    print(
        f"speed-up: cold start x{figures['cold_start_speedup']}, warm p50 x{figures['warm_speedup']}; "
        f"SQS send (moto server, not timed above): 1 row {figures['sqs_send_p50_ms']} ms p50, "
        f"1,000 rows {figures['sqs_send_batch1000_ms']} ms"
    )
    checks = [
        ("cold start <= 0.6 s", figures["cold_start_s"] <= TARGETS["cold_start_s"]),
        ("cold start >= 2.5x baseline", figures["cold_start_speedup"] >= 2.5),
        ("warm p50 <= 0.5 ms", figures["warm_p50_ms"] <= TARGETS["warm_p50_ms"]),
        ("warm p50 >= 5x baseline", figures["warm_speedup"] >= 5),
        ("batch <= 10 ms", figures["batch1000_ms"] <= TARGETS["batch1000_ms"]),
    ]
    print("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
