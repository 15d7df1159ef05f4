"""A short monitored life on moto for the report tests: clean days, a shift, alarms, a promotion.

Six daily monitor runs of the demo model: two clean days, then customers change (covariate
and concept shift) so drift is flagged and the metric gap opens; a second version is
promoted before the fifth run. Every run writes its report and the model's history page.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from mlops.cloud import aws
from mlops.cloud.logstore import (
    FeedbackRecord,
    PredictionRecord,
    feedback_key,
    prediction_key,
    write_feedback,
    write_predictions,
)
from mlops.cloud.provision import create_resources
from mlops.cloud.storage import iso
from mlops.datagen.churn import generate_churn
from mlops.model.training import TrainingResult, feature_frame, frame_rows
from mlops.monitoring.run import MonitorResult, run_monitor
from mlops.shared import clock
from mlops.shared.resources import ARTIFACT_BUCKET, LOG_BUCKET, REGISTRY_TABLE, REPORT_BUCKET
from mlops.shared.settings import MonitorSettings
from moto import mock_aws

from tests.conftest import AwsStack, register_and_promote

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
SHIFT_DAY = 2
PROMOTION_DAY = 4


@dataclass
class Story:
    results: list[MonitorResult] = field(default_factory=list)
    run_times: list[datetime] = field(default_factory=list)
    promoted_at: datetime | None = None

    @property
    def history_key(self) -> str:
        key = self.results[-1].history_key
        assert key is not None
        return key


@contextlib.contextmanager
def moto_stack() -> Iterator[AwsStack]:
    """The `aws_stack` fixture's resources, for fixtures that outlive one test (one story per module)."""
    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        aws.reset_clients()
        with mock_aws():
            names = ("s3", "dynamodb", "sqs", "sns", "cloudwatch", "events")
            clients = {n: boto3.client(n, region_name="us-east-1") for n in names}
            env = create_resources(clients, "test", "churn")
            for k, v in env.items():
                mp.setenv(k, v)
            yield AwsStack(env=env, **clients)
        aws.reset_clients()


def settings(stack: AwsStack) -> MonitorSettings:
    return MonitorSettings(
        model_name="churn",
        registry_table=stack.env[REGISTRY_TABLE.env_var],
        artifact_bucket=stack.env[ARTIFACT_BUCKET.env_var],
        log_bucket=stack.env[LOG_BUCKET.env_var],
        report_bucket=stack.env[REPORT_BUCKET.env_var],
    )


def log_day(
    stack: AwsStack,
    trained: TrainingResult,
    version: int,
    day_start: datetime,
    n: int,
    seed: int,
    **drift: Any,
) -> None:
    """`n` scored predictions over one day, every one labelled two hours after it was made."""
    data = generate_churn(n, seed=seed, **drift)
    features = feature_frame(data, trained.spec)
    proba = trained.pipeline.predict_proba(features)[:, 1]
    rows = frame_rows(features)
    y = data["churned"].to_numpy()
    bucket = stack.env[LOG_BUCKET.env_var]
    per_hour = max(1, n // 24)
    for hour in range(24):
        idx = range(hour * per_hour, min(n, (hour + 1) * per_hour))
        if not idx:
            continue
        ts = day_start + timedelta(hours=hour)
        ids = [f"v{version}-s{seed}-{i}" for i in idx]
        records = [
            PredictionRecord(
                prediction_id=pid,
                request_id=f"r{i}",
                timestamp=iso(ts + timedelta(seconds=i)),
                model_name="churn",
                model_version=version,
                features=rows[i],
                probability=float(proba[i]),
                label=int(proba[i] >= 0.5),
            )
            for pid, i in zip(ids, idx, strict=True)
        ]
        write_predictions(stack.s3, bucket, prediction_key(version, ts, ids), records)
        seen = ts + timedelta(hours=2)
        write_feedback(
            stack.s3,
            bucket,
            feedback_key(seen, ids),
            [
                FeedbackRecord(
                    prediction_id=pid,
                    label=int(y[i]),
                    source="explicit",
                    observed_at=iso(seen),
                    received_at=iso(seen),
                )
                for pid, i in zip(ids, idx, strict=True)
            ],
        )


def promote_at(at: datetime, stack: AwsStack, trained: TrainingResult, data: Any, reason: str) -> int:
    """Register and promote a version with the registry's clock at `at` (the story's time line)."""
    clock.use(lambda: at)
    try:
        return register_and_promote(stack, trained, data, reason=reason).version
    finally:
        clock.use(None)


def monitored_life(
    stack: AwsStack, trained: TrainingResult, churn_data: Any, days: int = 6, rows_per_day: int = 960
) -> Story:
    """Champion v1, a shift from SHIFT_DAY on, v2 promoted before PROMOTION_DAY's run; one run a day."""
    story = Story()
    registry = stack.registry()
    version = promote_at(START - timedelta(days=1), stack, trained, churn_data, "first champion")
    for day in range(days):
        day_start = START + timedelta(days=day)
        if day == PROMOTION_DAY:
            story.promoted_at = day_start
            version = promote_at(day_start, stack, trained, churn_data, "retrained after the shift")
        drift = {"covariate_shift": 1.5, "concept_shift": 0.6} if day >= SHIFT_DAY else {}
        log_day(stack, trained, version, day_start, rows_per_day, seed=100 + day, **drift)
        # The run at the end of the day sees the day's predictions and their labels (the last come two
        # hours after the day's last hour), and runs before the next day's first labels arrive: a run
        # reads feedback up to its own time, and the next run from there on.
        at = day_start + timedelta(days=1, hours=1, minutes=30)
        story.run_times.append(at)
        story.results.append(
            run_monitor(
                stack.s3,
                stack.cloudwatch,
                stack.dynamodb,
                settings(stack),
                window_end=day_start + timedelta(days=1),
                window=timedelta(days=1),
                now=at,
                run_id=f"day{day}",
            )
        )
    assert registry.champion() is not None
    return story


def read_text(stack: AwsStack, key: str) -> str:
    body = stack.s3.get_object(Bucket=stack.env[REPORT_BUCKET.env_var], Key=key)["Body"].read()
    return bytes(body).decode("utf-8")
