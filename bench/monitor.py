"""Benchmark the monitor on 1,000,000 logged predictions with 20 features, against Evidently,
and one scheduled run of the deployed read path at 10, 100 and 1,000 requests/s.

The logs are written to S3 (moto, in process) the way the log writer writes them; the
monitor is timed end to end (S3 read to metrics and reports) and compute only (the same
in-memory data Evidently's DataDriftPreset gets, which runs in its own venv as a subprocess).

The scaled runs (`scale_*`): each simulated hour holds SCALE of an hour's traffic at the rate, in
log objects of the size the deployed log writer makes (LOG_WRITER_BATCH_SIZE records, or one
batching window's worth at low rates), and the SQL-engine threshold is scaled alike. Earlier hours
are profiled by a catch-up run first, so the timed run is the steady state: the hour that arrived
since the last run, the stored partials of the rest of the window, the feedback that arrived since:
the new hour's labels, and late labels of another 5% of two earlier hours' predictions (6 and 20
hours before), whose rows the run reads to join them.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
from mlops.cloud.logstore import (
    FeedbackRecord,
    PredictionRecord,
    feedback_key,
    prediction_key,
    write_feedback,
    write_predictions,
)
from mlops.cloud.provision import create_resources
from mlops.cloud.registry import Registry
from mlops.cloud.storage import iso
from mlops.model.registration import TrainingData, register_model
from mlops.model.spec import ModelSpec, parse_spec
from mlops.model.training import TrainingResult, feature_frame, frame_rows, train_model
from mlops.monitoring.run import VersionReference, accumulate, evaluate, run_monitor
from mlops.monitoring.window import PredictionBatch
from mlops.shared.prediction_ids import stamp as id_stamp
from mlops.shared.resources import LOG_WRITER_BATCH_SIZE, LOG_WRITER_BATCHING_WINDOW_S
from mlops.shared.settings import MonitorSettings
from moto import mock_aws

ROOT = Path(__file__).resolve().parent
EVIDENTLY_VENV = ROOT / ".venv-evidently"
# Evidently 0.7 still imports a pandas internal that pandas 3 removed.
EVIDENTLY_PACKAGES = ["evidently", "pandas<3", "pyarrow"]
NUMERIC = [f"num_{i}" for i in range(10)]
CATEGORICAL = [f"cat_{i}" for i in range(10)]
LEVELS = [[f"c{i}_{k}" for k in range(3 + i % 6)] for i in range(10)]
OBJECT_ROWS = 2000
WINDOW_START = datetime(2026, 11, 19, tzinfo=UTC)


def bench_spec() -> ModelSpec:
    return parse_spec(
        {
            "name": "bench",
            "target": "y",
            "primary_metric": "roc_auc",
            "sensitive_attributes": ["cat_0"],
            "features": [{"name": n, "kind": "numeric"} for n in NUMERIC]
            + [{"name": c, "kind": "categorical"} for c in CATEGORICAL],
            "split": {"test_size": 0.25, "seed": 1},
        }
    )


def make_rows(n: int, seed: int, shift: bool = False) -> pd.DataFrame:
    """Mixed-shape numeric features, categorical features of 3-8 levels, a logistic label."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        kind = i % 3
        if kind == 0:
            values = rng.normal(10 * i, 1 + i, n)
        elif kind == 1:
            values = rng.lognormal(1 + i / 10, 0.6, n)
        else:
            values = rng.poisson(2 + i / 2, n).astype(float)
        if shift and i in (0, 4):
            values = values + 0.5 * np.std(values)
        values[rng.random(n) < 0.02] = np.nan
        cols[name] = values
    for i, name in enumerate(CATEGORICAL):
        levels = np.asarray(LEVELS[i], dtype=object)
        p = np.linspace(1, 2, len(levels))
        if shift and i == 3:
            p = p[::-1]
        cols[name] = rng.choice(levels, n, p=p / p.sum())
    frame = pd.DataFrame(cols)
    z = (np.nan_to_num(frame["num_0"]) / 10 - 0.0) * 0.3 + np.log1p(np.nan_to_num(frame["num_1"])) * 0.5
    z = z + (frame["cat_1"] == LEVELS[1][0]) * 0.8 - 1.5
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-(z - z.mean())))).astype(int)
    return frame


def promoted_model(result: TrainingResult, training_rows: int) -> tuple[dict[str, Any], MonitorSettings, Any]:
    """Inside mock_aws: every resource, and `result` registered and promoted (clients, settings, record)."""
    clients = {
        n: boto3.client(n, region_name="us-east-1") for n in ("s3", "dynamodb", "sqs", "sns", "cloudwatch")
    }
    settings = MonitorSettings.model_validate(create_resources(clients, "bench", result.spec.name))
    registry = Registry(clients["dynamodb"], settings.registry_table, result.spec.name)
    record = register_model(
        result,
        registry,
        clients["s3"],
        settings.artifact_bucket,
        TrainingData(sha256="0" * 64, rows=training_rows),
    )
    registry.promote(record.version, actor="bench", reason="bench")
    return clients, settings, record


class RssSampler:
    """Peak resident memory of this process while a block runs (sampled every 20 ms)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss_bytes() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss_bytes())
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss_bytes())


def write_logs(
    s3: Any, bucket: str, result: TrainingResult, current: pd.DataFrame, version: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One gzip JSON Lines object per 2,000 predictions in its hour partition, as the log writer does."""
    spec = result.spec
    rows = len(current)
    step = timedelta(days=1) / rows
    ids = [f"p{i:07d}" for i in range(rows)]
    labels = current["y"].to_numpy()
    scores = np.empty(rows)
    for start in range(0, rows, OBJECT_ROWS):
        chunk = feature_frame(current.iloc[start : start + OBJECT_ROWS], spec)
        proba = result.pipeline.predict_proba(chunk)[:, 1]
        scores[start : start + len(proba)] = proba
        features = frame_rows(chunk)
        records = [
            PredictionRecord(
                prediction_id=ids[start + j],
                request_id=f"r{start + j}",
                timestamp=iso(WINDOW_START + step * (start + j)),
                model_name=spec.name,
                model_version=version,
                features=features[j],
                probability=float(proba[j]),
                label=int(proba[j] >= 0.5),
            )
            for j in range(len(features))
        ]
        ts = WINDOW_START + step * start
        write_predictions(
            s3, bucket, prediction_key(version, ts, [r.prediction_id for r in records]), records
        )
    return ids, labels, scores


def write_some_feedback(s3: Any, bucket: str, ids: list[str], labels: np.ndarray, share: float = 0.05) -> int:
    rng = np.random.default_rng(0)
    chosen = np.flatnonzero(rng.random(len(ids)) < share)
    at = WINDOW_START + timedelta(hours=20)
    for start in range(0, chosen.size, 10_000):
        part = chosen[start : start + 10_000]
        records = [
            FeedbackRecord(
                prediction_id=ids[i],
                label=int(labels[i]),
                source="explicit",
                observed_at=iso(at),
                received_at=iso(at),
            )
            for i in part
        ]
        write_feedback(s3, bucket, feedback_key(at, [ids[i] for i in part]), records)
    return int(chosen.size)


def compute_only(reference: VersionReference, current: pd.DataFrame, proba: np.ndarray) -> float:
    """Our statistics from the same in-memory DataFrame Evidently gets (no S3, no JSON)."""
    start = time.perf_counter()
    batches = (
        PredictionBatch(
            prediction_ids=[],
            probability=proba[i : i + 100_000],
            numeric={c: current[c].to_numpy(dtype=np.float64)[i : i + 100_000] for c in NUMERIC},
            categorical={c: current[c].iloc[i : i + 100_000].tolist() for c in CATEGORICAL},
        )
        for i in range(0, len(current), 100_000)
    )
    acc = accumulate(reference, _sized(batches), {})
    evaluate(
        acc,
        reference,
        champion=True,
        run_id="bench",
        window_start=WINDOW_START,
        window_end=WINDOW_START + timedelta(days=1),
        generated_at=WINDOW_START + timedelta(days=1),
    )
    return time.perf_counter() - start


def _sized(batches: Any) -> Any:
    # prediction_ids are only used for the label join; give each batch its row count.
    for b in batches:
        b.prediction_ids = [""] * len(b.probability)
        yield b


def ensure_evidently() -> Path | None:
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import evidently, pyarrow"], capture_output=True)
    if probe.returncode != 0:
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_PACKAGES],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            print(f"evidently could not be installed: {install.stderr[-500:]}", file=sys.stderr)
            return None
    return python


def run_evidently(python: Path, reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        ref_path, cur_path = Path(tmp) / "reference.parquet", Path(tmp) / "current.parquet"
        reference.to_parquet(ref_path)
        current.to_parquet(cur_path)
        out = subprocess.run(
            [
                str(python),
                str(ROOT / "evidently_drift.py"),
                str(ref_path),
                str(cur_path),
                ",".join(NUMERIC),
                ",".join(CATEGORICAL),
            ],
            capture_output=True,
            text=True,
        )
    if out.returncode != 0:
        raise RuntimeError(f"evidently run failed: {out.stderr[-1000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


RATES = (10, 100, 1_000)
# One simulated hour holds this share of a real hour's traffic (one minute's worth).
SCALE = 1 / 60
SCALE_LABEL_SHARE = 0.05
SCALE_END = datetime(2026, 11, 27, tzinfo=UTC)


class S3Reads:
    """GETs and bytes read through one S3 client (botocore's after-call event)."""

    def __init__(self, s3: Any) -> None:
        self.gets = 0
        self.bytes = 0
        s3.meta.events.register("after-call.s3.GetObject", self._count)

    def _count(self, parsed: dict[str, Any], **_: Any) -> None:
        self.gets += 1
        self.bytes += int(parsed.get("ContentLength", 0))


# Stand-ins in the template hour's text for its predictions' hour (ids and times), replaced per hour.
# Ids take the predict function's form (`mlops.shared.prediction_ids`): the stamp of the hour's first
# millisecond, then 19 hex digits of their own, so a label's id names the hour that holds its prediction.
HOUR_TOKEN = "HOUR_TOKEN"
TIME_TOKEN = f"{SCALE_END:%Y-%m-%dT%H}:"
ARRIVAL_TOKEN = "ARRIVAL_TOKEN"
# Hours (before the timed one) whose other predictions' labels arrive late, during the timed run's hour.
LATE_LABEL_HOURS = (6, 20)


@dataclass
class ScaledHour:
    """One simulated hour at a rate: its log objects and its feedback, as JSON Lines text.

    Each hour of a run holds the template's rows with ids and times of its own (the token
    replaced), so a label labels one prediction of one hour, as in production. The hours before
    the timed one are compressed at gzip level 1 (fast to write; the timed run only lists them),
    the timed hour as the log writer compresses.
    """

    objects: list[str]
    feedback: str
    rows: int
    # Labels of other predictions of the hour, sent later (`late_labels`).
    late_feedback: str = ""

    def log(
        self, s3: Any, bucket: str, version: int, hour: datetime, level: int = 9, threads: int = 1
    ) -> None:
        """Write the hour's objects under `hour`, compressed at `level` by `threads` threads (gzip
        lets go of the GIL); the puts stay in this thread (moto in process is not thread-safe)."""
        token, stamp = id_stamp(hour), f"{hour:%Y-%m-%dT%H}:"

        def packed(text: str) -> bytes:
            return gzip.compress(text.replace(HOUR_TOKEN, token).replace(TIME_TOKEN, stamp).encode(), level)

        with ThreadPoolExecutor(threads) as pool:
            for i, body in enumerate(pool.map(packed, self.objects)):
                s3.put_object(Bucket=bucket, Key=prediction_key(version, hour, [f"{token}-{i}"]), Body=body)
        feedback = self.feedback.replace(HOUR_TOKEN, token).replace(TIME_TOKEN, stamp)
        s3.put_object(
            Bucket=bucket,
            Key=feedback_key(hour + timedelta(minutes=59), [token]),
            Body=gzip.compress(feedback.encode(), level),
        )

    def late_labels(self, s3: Any, bucket: str, hour: datetime, arrived: datetime) -> None:
        """Labels of another share of `hour`'s predictions, received at `arrived` (a later hour)."""
        token = id_stamp(hour)
        late = self.late_feedback.replace(HOUR_TOKEN, token).replace(ARRIVAL_TOKEN, iso(arrived))
        s3.put_object(
            Bucket=bucket,
            Key=feedback_key(arrived, [token, "late"]),
            Body=gzip.compress(late.encode()),
        )


def _lines(records: Any) -> str:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def scaled_hour(
    result: TrainingResult, version: int, rate: int, seed: int = 7, scale: float = SCALE
) -> ScaledHour:
    """An hour's log objects at `rate` x `scale`, each the size the deployed writer makes."""
    rows = max(1, round(rate * 3600 * scale))
    per_object = min(LOG_WRITER_BATCH_SIZE, rate * LOG_WRITER_BATCHING_WINDOW_S)
    frame = make_rows(rows, seed=seed, shift=True)
    chunk = feature_frame(frame, result.spec)
    proba = result.pipeline.predict_proba(chunk)[:, 1]
    features = frame_rows(chunk)
    ids = [f"{HOUR_TOKEN}{rate:03x}{i:016x}" for i in range(rows)]
    step = timedelta(hours=1) / rows
    objects = []
    for start in range(0, rows, per_object):
        objects.append(
            _lines(
                {
                    "prediction_id": ids[i],
                    "request_id": ids[i],
                    "timestamp": iso(SCALE_END + step * i),
                    "received_at": iso(SCALE_END + step * i),
                    "model_name": result.spec.name,
                    "model_version": version,
                    "features": features[i],
                    "probability": float(proba[i]),
                    "label": int(proba[i] >= 0.5),
                    "unseen_categories": [],
                }
                for i in range(start, min(rows, start + per_object))
            )
        )
    labels = frame["y"].to_numpy()

    def feedback_of(chosen: np.ndarray, at: str) -> str:
        return _lines(
            {
                "prediction_id": ids[i],
                "label": int(labels[i]),
                "source": "explicit",
                "observed_at": at,
                "received_at": at,
            }
            for i in chosen
        )

    chosen = np.flatnonzero(np.random.default_rng(seed).random(rows) < SCALE_LABEL_SHARE)
    # Another 5% of the hour's predictions, labelled later (their arrival time set when sent).
    drawn = np.random.default_rng(seed + 1).random(rows) < SCALE_LABEL_SHARE
    return ScaledHour(
        objects=objects,
        feedback=feedback_of(chosen, iso(SCALE_END + timedelta(minutes=59))),
        rows=rows,
        late_feedback=feedback_of(np.setdiff1d(np.flatnonzero(drawn), chosen), ARRIVAL_TOKEN),
    )


def scaled_run(
    clients: dict[str, Any],
    settings: MonitorSettings,
    result: TrainingResult,
    version: int,
    rate: int,
    hours: int,
    attempt: int = 0,
) -> dict[str, Any]:
    """Log `hours` hours at `rate`, catch up, log one more hour, and time the next scheduled run."""
    s3 = clients["s3"]
    suffix = f"{rate}-{hours}-{attempt}"
    buckets = {"log_bucket": f"bench-logs-{suffix}", "report_bucket": f"bench-reports-{suffix}"}
    for name in buckets.values():
        s3.create_bucket(Bucket=name)
    config = settings.model_copy(
        update={
            **buckets,
            "scan_engine": "duckdb",
            "scan_engine_min_bytes": int(
                MonitorSettings.model_fields["scan_engine_min_bytes"].default * SCALE
            ),
        }
    )
    end = SCALE_END
    template = scaled_hour(result, version, rate)
    for h in range(hours):
        template.log(s3, config.log_bucket, version, end - timedelta(hours=hours - h), level=1)
    window = timedelta(hours=hours)
    run_monitor(
        s3, clients["cloudwatch"], clients["dynamodb"], config, window_end=end, window=window, now=end
    )
    template.log(s3, config.log_bucket, version, end)
    # Labels that arrive late reach two earlier hours, whose rows the timed run then reads.
    for back in LATE_LABEL_HOURS if hours >= max(LATE_LABEL_HOURS) else ():
        template.late_labels(s3, config.log_bucket, end - timedelta(hours=back), end + timedelta(minutes=30))
    gc.collect()
    reads = S3Reads(s3)
    with RssSampler() as rss:
        start = time.perf_counter()
        monitored = run_monitor(
            s3,
            clients["cloudwatch"],
            clients["dynamodb"],
            config,
            window_end=end + timedelta(hours=1),
            window=window,
            now=end + timedelta(hours=1),
        )
        run_s = time.perf_counter() - start
    (report,) = monitored.reports
    s3.meta.events.unregister("after-call.s3.GetObject", reads._count)
    for name in buckets.values():  # the next run measures a process without this one's objects
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys})
    return {
        "run_s": round(run_s, 2),
        "gets": reads.gets,
        "bytes_read": reads.bytes,
        "engines": monitored.reads.engines,
        "hours_listed": monitored.reads.hours_listed,
        # What the bytes were: the new hour's logs, the roll-ups (and rows objects), the feedback.
        "bytes_split": {
            "logs": monitored.reads.log_bytes,
            "rollups": monitored.reads.partial_bytes,
            "feedback": monitored.reads.feedback_bytes,
            "hours_rows_read": monitored.reads.hours_rows_read,
            "hours_labels_read": monitored.reads.hours_labels_read,
        },
        "rows": report.prediction_count,
        "peak_rss_mb": round(rss.peak / 2**20, 1),
    }


# The window ratio divides two runs of well under a second at 10 req/s: each side is the median of
# this many runs, each on buckets of its own, so one slow run (a first import, a busy moment) does not
# decide it; the 24-hour and 7-day runs take turns, so that both meet the same load on a shared machine.
WINDOW_RUNS = 5


def scale_figures(
    clients: dict[str, Any], settings: MonitorSettings, result: TrainingResult, version: int
) -> dict[str, Any]:
    runs = {rate: scaled_run(clients, settings, result, version, rate, 24) for rate in RATES}
    days: list[float] = []
    weeks: list[dict[str, Any]] = []
    for attempt in range(1, WINDOW_RUNS + 1):
        days.append(scaled_run(clients, settings, result, version, 10, 24, attempt)["run_s"])
        weeks.append(scaled_run(clients, settings, result, version, 10, 24 * 7, attempt))
    return {
        "scale": f"1/{round(1 / SCALE)} of an hour's traffic per simulated hour, objects of deployed size",
        "scale_run_s": {r: v["run_s"] for r, v in runs.items()},
        "scale_gets": {r: v["gets"] for r, v in runs.items()},
        "scale_bytes_read": {r: v["bytes_read"] for r, v in runs.items()},
        "scale_bytes_split": {r: v["bytes_split"] for r, v in runs.items()},
        "scale_engine": {r: v["engines"] for r, v in runs.items()},
        "scale_window_rows": {r: v["rows"] for r, v in runs.items()},
        "scale_peak_rss_mb": max(v["peak_rss_mb"] for v in (*runs.values(), *weeks)),
        "window_ratio": round(statistics.median(w["run_s"] for w in weeks) / statistics.median(days), 2),
        "window_24h_runs_s": days,
        "window_7d_runs_s": [w["run_s"] for w in weeks],
        # Hour partitions the timed run listed: the ones that may have changed, not the window's.
        "window_hours_listed": {"24h": runs[10]["hours_listed"], "7d": weeks[0]["hours_listed"]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--no-scale", action="store_true", help="skip the scaled read-path runs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--task", choices=("binary_classification", "regression"), default="binary_classification"
    )
    args = parser.parse_args(argv)
    if args.task == "regression":
        # Run as a script, this folder is on sys.path but not the repository root the module needs.
        sys.path.insert(0, str(ROOT.parent))
        from bench.monitor_regression import bench_regression

        figures = bench_regression(args.rows, args.reference_rows)
        print(json.dumps(figures) if args.json else "\n".join(f"{k:>24}: {v}" for k, v in figures.items()))
        return 0
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(var, None)
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench"
    )
    spec = bench_spec()
    # train_model holds out test_size; scale up so the reference profile has reference_rows rows.
    training = make_rows(math.ceil(args.reference_rows / (1 - spec.split.test_size)), seed=1)
    result = train_model(training, spec)
    current = make_rows(args.rows, seed=2, shift=True)
    with mock_aws():
        clients, settings, record = promoted_model(result, len(training))
        ids, labels, scores = write_logs(clients["s3"], settings.log_bucket, result, current, record.version)
        feedback = write_some_feedback(clients["s3"], settings.log_bucket, ids, labels)
        del ids, labels
        reference = VersionReference(record=record, spec=spec, profile=result.profile)
        compute_s = compute_only(reference, current, scores)
        del scores
        before_run_mb = RssSampler.rss_bytes() / 2**20
        with RssSampler() as rss:
            start = time.perf_counter()
            monitored = run_monitor(
                clients["s3"],
                clients["cloudwatch"],
                clients["dynamodb"],
                settings,
                window_end=WINDOW_START + timedelta(days=1),
                window=timedelta(days=1),
                now=WINDOW_START + timedelta(days=1),
            )
            end_to_end_s = time.perf_counter() - start
        scale = {} if args.no_scale else scale_figures(clients, settings, result, record.version)
    (report,) = monitored.reports
    assert report.prediction_count == args.rows, report.prediction_count
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    evidently_s = None
    if not args.no_evidently:
        python = ensure_evidently()
        if python is not None:
            reference_frame = training.iloc[: len(training)].drop(columns=["y"])
            evidently_s = run_evidently(python, reference_frame, current.drop(columns=["y"]))["evidently_s"]
    figures = {
        "rows": args.rows,
        "features": len(NUMERIC) + len(CATEGORICAL),
        "reference_rows": result.train_rows,
        "log_objects": -(-args.rows // OBJECT_ROWS),
        "labels": feedback,
        "drifted_features": report.drift.drifted if report.drift else None,
        "compute_s": round(compute_s, 3),
        "end_to_end_s": round(end_to_end_s, 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "monitor_run_peak_rss_mb": round(rss.peak / 2**20, 1),
        "monitor_run_rss_growth_mb": round(rss.peak / 2**20 - before_run_mb, 1),
        "evidently_s": evidently_s,
        "speedup_vs_evidently": round(evidently_s / compute_s, 1) if evidently_s else None,
        **scale,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
