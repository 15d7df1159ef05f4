"""Load check of the local stack: N concurrent HTTP clients, then an audit of the S3 logs.

Every successful /predict answer must appear in the prediction logs exactly once:
`logged` (distinct prediction ids in S3) must equal the ids answered, `duplicates` must
be 0. Then each client sends the label of each prediction it got, one /feedback request each,
and every label must reach the feedback objects exactly once (`feedback_lost`,
`feedback_duplicates`); `feedback_objects` counts the objects the log writer made of them.
Requests are bounded in count and time and go to 127.0.0.1 only.
`--json` prints requests, concurrency, errors, logged, duplicates, p50_ms, p99_ms, rps and the
feedback figures.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))


def post(
    conn: http.client.HTTPConnection, port: int, path: str, body: str
) -> tuple[http.client.HTTPConnection, int | None, bytes]:
    """POST `body` as JSON: (the connection to go on with, the status, the answer). A broken
    connection gives a new one and no status."""
    try:
        conn.request("POST", path, body=body, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        return conn, resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        return http.client.HTTPConnection("127.0.0.1", port, timeout=30), None, b""


def client(port: int, rows: list[dict], count: int, out: dict, lock: threading.Lock, deadline: float) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    ids: list[str] = []
    errors = 0
    for i in range(count):
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        conn, status, payload = post(conn, port, "/predict", json.dumps({"features": rows[i % len(rows)]}))
        if status is not None:
            latencies.append(time.perf_counter() - started)
        if status == 200:
            ids.extend(p["prediction_id"] for p in json.loads(payload)["predictions"])
        else:
            errors += 1
    predicted = time.perf_counter()
    labelled: list[str] = []
    feedback_errors = 0
    for i, pid in enumerate(ids):
        if time.monotonic() > deadline:
            break
        label = json.dumps({"prediction_id": pid, "label": i % 2, "source": "explicit"})
        conn, status, payload = post(conn, port, "/feedback", label)
        if status == 200 and json.loads(payload)["stored"] == 1:
            labelled.append(pid)
        else:
            feedback_errors += 1
    conn.close()
    with lock:
        out["latencies"].extend(latencies)
        out["ids"].extend(ids)
        out["errors"] += errors
        out["predicted"] = max(out["predicted"], predicted)
        out["labelled"].extend(labelled)
        out["feedback_errors"] += feedback_errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from mlops.cloud import aws
    from mlops.cloud.logstore import FEEDBACK_PREFIX, PREDICTIONS_PREFIX
    from mlops.cloud.storage import list_keys
    from mlops.datagen.churn import generate_churn
    from mlops.local.first_champion import ensure_champion
    from mlops.local.stack import LocalStack
    from mlops.model.spec import load_spec
    from mlops.model.training import frame_rows

    spec = load_spec(ROOT / "functions" / "mlops" / "examples" / "churn" / "spec.toml")
    stack = LocalStack(spec, prefix="load").start()
    try:
        ensure_champion(stack.env, spec, generate_churn(3000, seed=0), actor="bench")
        stack.start_background(poll_interval=0.05)
        assert stack.gateway is not None
        port = stack.gateway.server.server_port
        rows = frame_rows(generate_churn(500, seed=5)[spec.feature_names])
        results: dict = {"latencies": [], "ids": [], "errors": 0, "predicted": 0.0}
        results.update(labelled=[], feedback_errors=0)
        lock = threading.Lock()
        per_client = args.requests // args.concurrency
        deadline = time.monotonic() + args.max_seconds
        started = time.perf_counter()
        threads = [
            threading.Thread(target=client, args=(port, rows, per_client, results, lock, deadline))
            for _ in range(args.concurrency)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The predictions' rate: until the last client turned to sending labels.
        wall = results["predicted"] - started
        # Let the log writer finish, then audit S3.
        stack.drain_queue()
        s3, bucket = aws.client("s3"), stack.env["MLOPS_LOG_BUCKET"]
        counts: Counter[str] = Counter()
        for key in list_keys(s3, bucket, PREDICTIONS_PREFIX):
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            counts.update(json.loads(line)["prediction_id"] for line in body.splitlines() if line)
        labels: Counter[str] = Counter()
        feedback_keys = list(list_keys(s3, bucket, FEEDBACK_PREFIX))
        for key in feedback_keys:
            body = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            labels.update(json.loads(line)["prediction_id"] for line in body.splitlines() if line)
    finally:
        stack.stop()

    lat = np.array(results["latencies"]) * 1000
    answered = set(results["ids"])
    figures = {
        "requests": len(results["latencies"]) + results["errors"],
        "concurrency": args.concurrency,
        "errors": results["errors"],
        "answered": len(answered),
        "logged": len(set(counts) & answered),
        "lost": len(answered - set(counts)),
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else None,
        "rps": round(len(lat) / wall, 1) if wall else None,
        "feedback_requests": len(results["labelled"]) + results["feedback_errors"],
        "feedback_errors": results["feedback_errors"],
        "feedback_stored": len(set(results["labelled"])),
        "feedback_lost": len(set(results["labelled"]) - set(labels)),
        "feedback_duplicates": sum(c - 1 for c in labels.values() if c > 1),
        "feedback_objects": len(feedback_keys),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print("load check (local gateway, single-row /predict)")
        print(
            f"  requests {figures['requests']}  concurrency {figures['concurrency']}  "
            f"errors {figures['errors']}  rps {figures['rps']}  "
            f"p50 {figures['p50_ms']} ms  p99 {figures['p99_ms']} ms"
        )
        print(
            f"  answered {figures['answered']}  logged {figures['logged']}  lost {figures['lost']}  "
            f"duplicates {figures['duplicates']}"
        )
        print(
            f"  feedback: requests {figures['feedback_requests']}  errors {figures['feedback_errors']}  "
            f"stored {figures['feedback_stored']}  lost {figures['feedback_lost']}  "
            f"duplicates {figures['feedback_duplicates']}  objects {figures['feedback_objects']}"
        )
    failed = (figures[k] for k in ("errors", "lost", "duplicates", "feedback_errors", "feedback_lost"))
    return 0 if not any(failed) and figures["feedback_duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
