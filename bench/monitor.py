"""Benchmark the monitor on 1,000,000 logged predictions with 20 features, against Evidently.

The logs are written to S3 (moto, in process) the way the log writer writes them; the
monitor is timed end to end (S3 read to metrics and reports) and compute only (the same
in-memory data Evidently's DataDriftPreset gets, which runs in its own venv as a subprocess).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
from mlops.config import MonitorSettings
from mlops.lifecycle import TrainingData, register_model
from mlops.logstore import (
    FeedbackRecord,
    PredictionRecord,
    feedback_key,
    prediction_key,
    write_feedback,
    write_predictions,
)
from mlops.monitoring.run import VersionReference, accumulate, evaluate, run_monitor
from mlops.monitoring.window import PredictionBatch
from mlops.provision import create_resources
from mlops.registry import Registry
from mlops.spec import ModelSpec, parse_spec
from mlops.storage import iso
from mlops.training import TrainingResult, feature_frame, frame_rows, train_model
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--task", choices=("binary_classification", "regression"), default="binary_classification"
    )
    args = parser.parse_args(argv)
    if args.task == "regression":
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
        clients = {
            n: boto3.client(n, region_name="us-east-1")
            for n in ("s3", "dynamodb", "sqs", "sns", "cloudwatch")
        }
        env = create_resources(clients, "bench", spec.name)
        settings = MonitorSettings.model_validate(env)
        registry = Registry(clients["dynamodb"], settings.registry_table, spec.name)
        record = register_model(
            result,
            registry,
            clients["s3"],
            settings.artifact_bucket,
            TrainingData(sha256="0" * 64, rows=len(training)),
        )
        registry.promote(record.version, actor="bench", reason="bench")
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
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
