"""Bytes per logged prediction by object size and format, and the GETs and bytes an hour of traffic costs.

Records are the demo model's (`mlops.datagen.churn.generate_churn` rows, uuid prediction ids), written
as the log writer writes them (gzip JSON Lines, `mlops.cloud.logstore.write_predictions`) and, for the
comparison, as Parquet (pyarrow, zstd). An object holds what one log-writer invocation receives
for one hour partition, so its size follows the SQS batch (`mlops.shared.resources.LOG_WRITER_BATCH_SIZE`).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from mlops.cloud.logstore import PredictionRecord
from mlops.cloud.storage import iso, jsonl_gz
from mlops.datagen.churn import generate_churn
from mlops.model.training import frame_rows
from mlops.shared.resources import LOG_WRITER_BATCH_SIZE, LOG_WRITER_BATCHING_WINDOW_S

SIZES = (100, 1_000, 10_000)
RATES = (10, 100, 1_000)


def records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = frame_rows(generate_churn(n, seed=seed).drop(columns=["churned"], errors="ignore"))
    start = datetime(2026, 11, 20, tzinfo=UTC)
    return [
        PredictionRecord(
            prediction_id=str(uuid.UUID(int=int(rng.integers(1 << 62)) << 64 | i)),
            request_id=str(uuid.UUID(int=int(rng.integers(1 << 62)) << 32 | i)),
            timestamp=iso(start + timedelta(seconds=3600 * i / n)),
            received_at=iso(start + timedelta(seconds=3600 * i / n)),
            model_name="churn",
            model_version=1,
            features=row,
            probability=float(p),
            label=int(p >= 0.5),
        ).model_dump(mode="json")
        for i, (row, p) in enumerate(zip(rows, rng.random(n), strict=True))
    ]


def parquet_bytes(rows: list[dict[str, Any]]) -> int | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf, compression="zstd")
    return buf.tell()


def per_hour(rate: int, batch: int, window_s: int, bytes_per_record: float) -> dict[str, float]:
    """Objects and bytes one hour of traffic puts in S3: one object per invocation, an invocation when
    the batch fills or the batching window ends (one poller; more pollers only split the batches)."""
    per_invocation = min(batch, rate * window_s)
    objects = 3600 * rate / per_invocation
    return {"objects": round(objects), "bytes": round(3600 * rate * bytes_per_record)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sample = records(max(SIZES))
    raw = sum(len(json.dumps(r, separators=(",", ":"))) + 1 for r in sample) / len(sample)
    by_size = {}
    for size in SIZES:
        part = sample[:size]
        gz = len(jsonl_gz(part))
        pq = parquet_bytes(part)
        by_size[size] = {
            "jsonl_gz_bytes_per_record": round(gz / size, 1),
            "parquet_zstd_bytes_per_record": round(pq / size, 1) if pq else None,
        }
    batch, window_s = LOG_WRITER_BATCH_SIZE, LOG_WRITER_BATCHING_WINDOW_S
    per_record = by_size[min(SIZES, key=lambda s: abs(s - batch))]["jsonl_gz_bytes_per_record"]
    figures = {
        "raw_json_bytes_per_record": round(raw, 1),
        "by_object_records": by_size,
        "log_batch": {"batch_size": batch, "window_s": window_s},
        "per_hour_of_traffic": {rate: per_hour(rate, batch, window_s, per_record) for rate in RATES},
        "per_hour_before": {
            rate: per_hour(rate, 100, 30, by_size[100]["jsonl_gz_bytes_per_record"]) for rate in RATES
        },
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>28}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
