"""The monitor Lambda on moto: logs and feedback in S3 -> metrics in CloudWatch and reports in S3."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from mlops.cli import main as cli_main
from mlops.cloud.logstore import (
    FeedbackRecord,
    PredictionRecord,
    feedback_key,
    latest_report_key,
    prediction_key,
    write_feedback,
    write_predictions,
)
from mlops.cloud.storage import iso
from mlops.datagen.churn import generate_churn
from mlops.handlers import monitor
from mlops.model.training import TrainingResult, feature_frame, frame_rows
from mlops.shared.resources import LOG_BUCKET, REPORT_BUCKET

from tests.conftest import AwsStack
from tests.integration.serving_helpers import CONTEXT, load_event

EVENTS_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def scheduled_event(at: datetime = EVENTS_TIME, **detail: Any) -> dict[str, Any]:
    event = load_event("monitor_schedule.json")
    event["time"] = iso(at).replace(".000000", "")
    event["detail"] = detail
    return event


def log_window(
    stack: AwsStack,
    trained: TrainingResult,
    version: int,
    n: int,
    seed: int,
    end: datetime = EVENTS_TIME,
    per_object: int = 250,
    **drift: Any,
) -> tuple[list[str], np.ndarray]:
    """Score generated rows with the model and log them over the 20 hours before `end`."""
    data = generate_churn(n, seed=seed, **drift)
    features = feature_frame(data, trained.spec)
    proba = trained.pipeline.predict_proba(features)[:, 1]
    rows = frame_rows(features)
    ids = [f"v{version}-s{seed}-{i}" for i in range(n)]
    bucket = stack.env[LOG_BUCKET.env_var]
    for start in range(0, n, per_object):
        ts = end - timedelta(hours=20) + timedelta(hours=20 * start / n)
        records = [
            PredictionRecord(
                prediction_id=ids[i],
                request_id=f"r{i}",
                timestamp=iso(ts + timedelta(seconds=i - start)),
                model_name="churn",
                model_version=version,
                features=rows[i],
                probability=float(proba[i]),
                label=int(proba[i] >= 0.5),
            )
            for i in range(start, min(n, start + per_object))
        ]
        write_predictions(
            stack.s3, bucket, prediction_key(version, ts, [r.prediction_id for r in records]), records
        )
    return ids, data["churned"].to_numpy()


def give_feedback(stack: AwsStack, ids: list[str], labels: np.ndarray, at: datetime) -> None:
    records = [
        FeedbackRecord(
            prediction_id=pid, label=int(y), source="explicit", observed_at=iso(at), received_at=iso(at)
        )
        for pid, y in zip(ids, labels, strict=True)
    ]
    write_feedback(stack.s3, stack.env[LOG_BUCKET.env_var], feedback_key(at, ids), records)


def metric(stack: AwsStack, name: str, dims: dict[str, str], at: datetime = EVENTS_TIME) -> list[float]:
    out = stack.cloudwatch.get_metric_statistics(
        Namespace="ServerlessMLOps",
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=at - timedelta(hours=1),
        EndTime=at + timedelta(hours=1),
        Period=3600,
        Statistics=["Maximum"],
    )
    return [p["Maximum"] for p in out["Datapoints"]]


def run_handler(**detail: Any) -> dict[str, Any]:
    monitor.settings.cache_clear()
    return monitor.handler(scheduled_event(**detail), CONTEXT)


CHAMPION = {"ModelName": "churn"}


def test_logs_and_feedback_become_metrics_and_reports(
    aws_stack: AwsStack, champion: Any, trained: TrainingResult
) -> None:
    # Given a day of champion traffic with labels for 600 of 1,000 predictions, and a challenger's traffic
    ids, y = log_window(aws_stack, trained, champion.version, 1000, seed=21)
    give_feedback(aws_stack, ids[:600], y[:600], EVENTS_TIME - timedelta(hours=1))
    # When the scheduled monitor runs
    summary = run_handler()
    # Then the champion's figures are in CloudWatch under ModelName alone (what alarms watch)
    (count,) = metric(aws_stack, "PredictionCount", CHAMPION)
    assert count == 1000
    (labels,) = metric(aws_stack, "LabelCount", {"ModelName": "churn", "ModelVersion": "1"})
    assert labels == 600
    (gap,) = metric(aws_stack, "MetricGap", CHAMPION)
    assert -0.1 < gap < 0.05
    assert metric(aws_stack, "MonitorHeartbeat", CHAMPION) == [1.0]
    assert len(metric(aws_stack, "FeatureDrift", {**CHAMPION, "Feature": "monthly_charges"})) == 1
    for name in ("ProductionMetric", "TestMetric", "EstimatedMetric", "EstimatedMetricGap", "DriftShare"):
        assert len(metric(aws_stack, name, CHAMPION)) == 1, name
    # And the reports are in the report bucket, with the latest summary GET /model reads
    bucket = aws_stack.env[REPORT_BUCKET.env_var]
    (version_summary,) = summary["versions"]
    prefix = version_summary["report_key"].rsplit("/", 1)[0] + "/"
    assert prefix.startswith("reports/model_version=1/dt=2026-11-20/run=")
    report = json.loads(aws_stack.s3.get_object(Bucket=bucket, Key=prefix + "report.json")["Body"].read())
    assert report["labels"]["label_count"] == 600 and report["prediction_count"] == 1000
    page = aws_stack.s3.get_object(Bucket=bucket, Key=prefix + "report.html")["Body"].read().decode()
    assert "<svg" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in page
    latest = json.loads(aws_stack.s3.get_object(Bucket=bucket, Key=latest_report_key(1))["Body"].read())
    assert latest["label_count"] == 600 and latest["metric_gap"] == pytest.approx(gap)


def test_challenger_traffic_is_monitored_under_its_version_only(
    aws_stack: AwsStack, champion: Any, trained: TrainingResult
) -> None:
    registry = aws_stack.registry()
    from mlops.model.registration import TrainingData, register_model

    v2 = register_model(
        trained, registry, aws_stack.s3, aws_stack.artifact_bucket, TrainingData(sha256="1" * 64, rows=1)
    )
    log_window(aws_stack, trained, champion.version, 300, seed=31)
    log_window(aws_stack, trained, v2.version, 200, seed=32)
    summary = run_handler()
    assert sorted(v["version"] for v in summary["versions"]) == [1, 2]
    assert metric(aws_stack, "PredictionCount", {"ModelName": "churn", "ModelVersion": "2"}) == [200]
    # The ModelName-only series carries the champion's figure, not the sum or the challenger's.
    assert metric(aws_stack, "PredictionCount", CHAMPION) == [300]


def test_empty_window_still_beats_and_publishes_no_quality_figures(
    aws_stack: AwsStack, champion: Any
) -> None:
    summary = run_handler()
    assert metric(aws_stack, "MonitorHeartbeat", CHAMPION) == [1.0]
    assert metric(aws_stack, "PredictionCount", CHAMPION) == [0.0]
    for name in ("MetricGap", "DriftShare", "PredictionDrift", "EstimatedMetricGap", "ProductionMetric"):
        assert metric(aws_stack, name, CHAMPION) == [], name
    (version,) = summary["versions"]
    assert version["status"].startswith("empty window")


def test_no_champion_still_beats(aws_stack: AwsStack) -> None:
    summary = run_handler()
    assert summary["versions"] == []
    assert metric(aws_stack, "MonitorHeartbeat", CHAMPION) == [1.0]


def test_late_labels_turn_a_no_label_window_into_a_metric_gap(
    aws_stack: AwsStack, champion: Any, trained: TrainingResult
) -> None:
    # Given a window with no labels yet
    ids, y = log_window(aws_stack, trained, champion.version, 800, seed=41)
    first = run_handler()
    # Then no gap is published (missing data, not zero), but the label-free estimate is
    assert metric(aws_stack, "MetricGap", CHAMPION) == []
    assert metric(aws_stack, "LabelCoverage", CHAMPION) == [0.0]
    (estimated_gap,) = metric(aws_stack, "EstimatedMetricGap", CHAMPION)
    assert abs(estimated_gap) < 0.05
    assert first["versions"][0]["status"] == "no labels yet"
    # When labels arrive later and the same window is monitored again
    later = EVENTS_TIME + timedelta(hours=3)
    give_feedback(aws_stack, ids[:500], y[:500], later)
    give_feedback(aws_stack, ["unknown-1", "unknown-2"], np.array([0, 1]), later)
    monitor.settings.cache_clear()
    again = monitor.handler({**scheduled_event(at=later), "detail": {"window_hours": 23}}, CONTEXT)
    # Then the gap appears, from those labels
    assert len(metric(aws_stack, "MetricGap", CHAMPION, at=later)) == 1
    (version,) = again["versions"]
    assert version["label_count"] == 500
    report_key = version["report_key"]
    report = json.loads(
        aws_stack.s3.get_object(Bucket=aws_stack.env[REPORT_BUCKET.env_var], Key=report_key)["Body"].read()
    )
    assert report["labels"]["unmatched_feedback"] == 2


def test_cli_runs_one_window(
    aws_stack: AwsStack, champion: Any, trained: TrainingResult, capsys: pytest.CaptureFixture[str]
) -> None:
    log_window(aws_stack, trained, champion.version, 300, seed=51)
    code = cli_main(["monitor", "run", "--window", "24h", "--version", "1", "--at", iso(EVENTS_TIME)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["versions"][0]["prediction_count"] == 300
    assert metric(aws_stack, "PredictionCount", CHAMPION) == [300]
