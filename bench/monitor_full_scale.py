"""One scheduled monitor run at full scale: an hour of 1,000 requests/s, and a window's labels of them.

`bench/monitor.py` times the deployed read path at 1/60 of each rate's traffic. This script measures
what that scale leaves out, at 1 (no scale factor), in three parts of one steady-state run over a
24-hour window, each measured, none extrapolated:

- ``new_hour``: the run that reads the hour that arrived since the last run. The hour holds 3.6
  million predictions (20 features) in log objects of the deployed writer's size and compression,
  5% of them labelled within the hour, on moto in this process. The scan is DuckDB's (the engine
  a local stack uses; on AWS it is Athena, which reads the objects itself), and the run writes the
  hour's rows and label records and its day roll-up. The window's performance is computed on the
  labelled rows of 24 such hours: the hour's labelled rows repeated for each hour of the window,
  so that the statistics meet the 4.3 million labels of a full window (their figures are then the
  hour's; only their cost is the point).
- ``label_days``: reading and writing back the two day roll-ups a 24-hour window touches, each
  holding the label summaries of 24 hours of 180,000 labelled rows, as `mlops.monitoring.rollup`
  stores them (the run above had no earlier hours to read).
- ``steady_run_s``: the sum, what one hourly run takes at full scale on this machine.

It needs some 6 GB of memory and about 10 minutes (building and writing the hour's 1 GB of JSON
is most of it); `make bench` does not run it. ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import math
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parent))

import monitor as scaled
from mlops.model.training import train_model
from mlops.monitoring import run as monitor_run
from mlops.monitoring.rollup import DAY_GZIP_LEVEL, HourLabels, LabelSummary, rows_from_json
from mlops.shared.collector import collections_deferred

RATE = 1_000
HOURS = 24
# Labelled rows of one hour at RATE with scaled.SCALE_LABEL_SHARE of predictions labelled.
LABELLED_PER_HOUR = round(RATE * 3600 * scaled.SCALE_LABEL_SHARE)


def new_hour(spec_rows: int) -> dict[str, Any]:
    spec = scaled.bench_spec()
    training = scaled.make_rows(math.ceil(spec_rows / (1 - spec.split.test_size)), seed=1)
    result = train_model(training, spec)
    evaluated: dict[str, Any] = {}
    evaluate = monitor_run.evaluate

    def on_a_full_window(acc: Any, *args: Any, **kwargs: Any) -> Any:
        # The hour's labelled rows, once for each hour of the window.
        labelled = acc.labelled
        evaluated["hour_labels"] = sum(len(y) for y in labelled.label)
        labelled.probability = [np.concatenate(labelled.probability)] * HOURS
        labelled.label = [np.concatenate(labelled.label)] * HOURS
        labelled.groups = {a: list(v) * HOURS for a, v in labelled.groups.items()}
        t = time.perf_counter()
        out = evaluate(acc, *args, **kwargs)
        evaluated["evaluate_s"] = time.perf_counter() - t
        evaluated["window_labels"] = sum(len(y) for y in labelled.label)
        return out

    with mock_aws():
        clients, settings, record = scaled.promoted_model(result, len(training))
        started = time.perf_counter()
        hour = scaled.scaled_hour(result, record.version, RATE, scale=1.0)
        built_s = time.perf_counter() - started
        started = time.perf_counter()
        # As the log writer compresses them (gzip level 9), two objects at a time.
        hour.log(clients["s3"], settings.log_bucket, record.version, scaled.SCALE_END, threads=2)
        written_s = time.perf_counter() - started
        rows = hour.rows
        del hour
        config = settings.model_copy(update={"scan_engine": "duckdb"})
        reads = scaled.S3Reads(clients["s3"])
        monitor_run.evaluate = on_a_full_window
        try:
            with scaled.RssSampler() as rss:
                started = time.perf_counter()
                monitored = monitor_run.run_monitor(
                    clients["s3"],
                    clients["cloudwatch"],
                    clients["dynamodb"],
                    config,
                    window_end=scaled.SCALE_END + timedelta(hours=1),
                    window=timedelta(hours=HOURS),
                    now=scaled.SCALE_END + timedelta(hours=1),
                )
                run_s = time.perf_counter() - started
        finally:
            monitor_run.evaluate = evaluate
        late = late_labels_read(clients["s3"], settings.report_bucket)
    (report,) = monitored.reports
    assert report.prediction_count == rows, (report.prediction_count, rows)
    return {
        "rows": rows,
        "hour_labels": evaluated["hour_labels"],
        "window_labels": evaluated["window_labels"],
        "run_s": round(run_s, 2),
        "evaluate_s": round(evaluated["evaluate_s"], 2),
        "engine": monitored.reads.engines,
        "gets": reads.gets,
        "bytes_read": reads.bytes,
        "peak_rss_mb": round(rss.peak / 2**20, 1),
        # What a late label reaching this hour in a later run reads first: its rows and label records.
        "late_label_reads_s": late,
        "built_s": round(built_s, 1),
        "written_s": round(written_s, 1),
    }


def late_labels_read(s3: Any, bucket: str) -> dict[str, Any]:
    """Reading back the hour's rows and label records objects, and indexing its ids, as a later run
    does for a late label whose id names the hour."""
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    (rows_key,) = [k for k in keys if "/rows-" in k]
    (labels_key,) = [k for k in keys if "/labels-" in k]
    # As inside a run: the collector held off (`mlops.shared.collector`).
    with collections_deferred():
        started = time.perf_counter()
        rows_data = s3.get_object(Bucket=bucket, Key=rows_key)["Body"].read()
        body = json.loads(gzip.decompress(rows_data))
        rows = rows_from_json(body, scaled.bench_spec().sensitive_attributes)
        rows.finder()
        records_data = s3.get_object(Bucket=bucket, Key=labels_key)["Body"].read()
        held = HourLabels.from_json(json.loads(gzip.decompress(records_data)), len(rows.prediction_ids))
        labelled_rows = len(held.records)
        took = time.perf_counter() - started
    return {
        "labelled_rows": labelled_rows,
        "s": round(took, 2),
        "rows_object_mb": round(len(rows_data) / 1e6, 1),
        "records_object_mb": round(len(records_data) / 1e6, 1),
    }


def label_days(runs: int = 3) -> dict[str, Any]:
    """Two days of label summaries (24 hours of LABELLED_PER_HOUR labelled rows each) read back and
    written again, as a run reads and writes the day roll-ups of its window (median of `runs`)."""
    rng = np.random.default_rng(5)
    bands = np.array(["18-29", "30-44", "45-59", "60+"], dtype=object)

    def day(d: int) -> bytes:
        hours = {}
        for h in range(24):
            p = rng.random(LABELLED_PER_HOUR).astype(np.float32).astype(np.float64)
            received = {f"2026-11-{20 + d}T{h:02d}:{m:02d}": 3_000 for m in range(60)}
            summary = LabelSummary.to_json(
                p,
                rng.integers(0, 2, LABELLED_PER_HOUR),
                {"cat_0": bands[rng.integers(0, 4, LABELLED_PER_HOUR)].tolist()},
                received,
            )
            hours[f"{h:02d}"] = {"labels": {"name": f"labels-{h:02d}", "summary": summary}}
        return gzip.compress(
            json.dumps({"hours": hours}, separators=(",", ":")).encode(), DAY_GZIP_LEVEL, mtime=0
        )

    days = [day(d) for d in range(2)]
    read, write = [], []
    for _ in range(runs):
        with collections_deferred():  # as inside a run
            started = time.perf_counter()
            bodies = [json.loads(gzip.decompress(data)) for data in days]
            for body in bodies:
                for h in body["hours"].values():
                    LabelSummary.of_json(h["labels"]["summary"])
            read.append(time.perf_counter() - started)
            started = time.perf_counter()
            for body in bodies:  # unchanged hours' summaries pass through as read
                gzip.compress(json.dumps(body, separators=(",", ":")).encode(), DAY_GZIP_LEVEL, mtime=0)
            write.append(time.perf_counter() - started)
    summary_bytes = len(
        base64.b64decode(json.loads(gzip.decompress(days[0]))["hours"]["00"]["labels"]["summary"]["p"])
    )
    return {
        "days": 2,
        "labelled_rows": 2 * 24 * LABELLED_PER_HOUR,
        "day_object_mb": round(statistics.mean(len(d) for d in days) / 1e6, 1),
        "read_s": round(statistics.median(read), 2),
        "write_s": round(statistics.median(write), 2),
        "probability_bytes_per_hour": summary_bytes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(var, None)
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench"
    )
    days = label_days()
    hour = new_hour(args.reference_rows)
    figures = {
        "scale": "1 (no scale factor): one hour of 1,000 req/s, a 24-hour window's labels",
        "new_hour": hour,
        "label_days": days,
        # The new hour's run, the window's two day roll-ups, and late labels reaching two earlier
        # hours (as the timed run of bench/monitor.py has them).
        "steady_run_s": round(
            hour["run_s"] + days["read_s"] + days["write_s"] + 2 * hour["late_label_reads_s"]["s"], 1
        ),
        "target_run_s": 60.0,
    }
    print(json.dumps(figures) if args.json else "\n".join(f"{k:>14}: {v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
