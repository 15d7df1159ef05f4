"""The retraining loop on moto: drift + feedback -> alarm -> candidate -> gate -> promotion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from mlops.cloud.logstore import gate_report_key
from mlops.cloud.registry import Registry, VersionStatus
from mlops.datagen.churn import generate_churn
from mlops.model import bundle
from mlops.model.spec import Retraining
from mlops.retraining.run import Outcome, RetrainContext, Trigger, TriggerKind, run_retraining
from mlops.shared.errors import StorageError

from tests.conftest import register_and_promote
from tests.traffic import log_traffic

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def ctx(aws_stack, trained, churn_data, clock):
    registry = Registry(aws_stack.dynamodb, aws_stack.env["MLOPS_REGISTRY_TABLE"], "churn", clock=clock)
    register_and_promote(aws_stack, trained, churn_data)
    return RetrainContext(
        registry=registry,
        s3=aws_stack.s3,
        sns=aws_stack.sns,
        artifact_bucket=aws_stack.artifact_bucket,
        log_bucket=aws_stack.env["MLOPS_LOG_BUCKET"],
        report_bucket=aws_stack.env["MLOPS_REPORT_BUCKET"],
        topic_arn=aws_stack.env["MLOPS_ALARM_TOPIC_ARN"],
    )


ALARM = Trigger(TriggerKind.ALARM, "MetricGap in ALARM", alarm_name="MetricGap", at="2026-11-20T11:00:00Z")


def test_alarm_retrains_gates_and_promotes_a_better_model(aws_stack, ctx):
    drifted = generate_churn(3000, seed=21, concept_shift=1.0)
    log_traffic(aws_stack, ctx.registry, 1, drifted, NOW - timedelta(days=2), spacing=timedelta(seconds=50))

    result = run_retraining(ctx, ALARM)

    assert result.outcome is Outcome.PROMOTED, result.gate_report["checks"]
    assert (result.champion_before, result.champion_after, result.version) == (1, 2, 2)
    assert ctx.registry.champion().version == 2
    last = ctx.registry.history()[-1]
    assert (last.from_version, last.to_version) == (1, 2)
    assert last.reason == "retrained after alarm MetricGap at 2026-11-20T11:00:00Z"
    checks = {c["name"]: c for c in result.gate_report["checks"]}
    assert checks["beats_champion"]["status"] == "passed"
    assert checks["beats_champion"]["figures"]["delta"] > 0.05
    record = ctx.registry.get_version(2)
    assert record.parent_version == 1 and record.gate_report["passed"] is True
    meta = bundle.read_json_artifact(
        aws_stack.s3, aws_stack.artifact_bucket, record.artifacts[bundle.METADATA]
    )
    v1_meta = bundle.read_json_artifact(
        aws_stack.s3, aws_stack.artifact_bucket, ctx.registry.get_version(1).artifacts[bundle.METADATA]
    )
    assert meta["original_data"] == v1_meta["original_data"]
    assert meta["training_data"]["uri"].startswith(
        f"s3://{aws_stack.artifact_bucket}/datasets/churn/retraining/"
    )
    assert (
        meta["training_data"]["rows"]
        == result.data["original_train_rows"] + result.data["production_train_rows"]
    )
    gate = aws_stack.s3.get_object(Bucket=ctx.report_bucket, Key=gate_report_key(2))
    assert b'"beats_champion"' in gate["Body"].read()
    assert ctx.registry.runs()[0]["outcome"] == "promoted"


def test_candidate_on_shuffled_labels_is_rejected_and_champion_unchanged(aws_stack, ctx, monkeypatch):
    drifted = generate_churn(2000, seed=22)
    log_traffic(aws_stack, ctx.registry, 1, drifted, NOW - timedelta(days=1), spacing=timedelta(seconds=40))
    from mlops.retraining import run as run_module

    real = run_module.InProcessEngine.train

    def shuffled(self, data, spec, weights, test_data):
        data = data.assign(**{spec.target: data[spec.target].sample(frac=1.0, random_state=0).to_numpy()})
        return real(self, data, spec, weights, test_data)

    monkeypatch.setattr(run_module.InProcessEngine, "train", shuffled)
    result = run_retraining(ctx, Trigger(TriggerKind.SCHEDULE, "weekly"))

    assert result.outcome is Outcome.REJECTED
    failed = set(result.gate_report["failed"])
    assert {"min_primary_metric", "beats_champion"} <= failed
    assert ctx.registry.champion().version == 1
    assert ctx.registry.get_version(result.version).status is VersionStatus.REJECTED


def test_two_triggers_a_second_apart_give_one_run(aws_stack, ctx, clock):
    log_traffic(aws_stack, ctx.registry, 1, generate_churn(1200, seed=23), NOW - timedelta(days=1))
    first = run_retraining(ctx, Trigger(TriggerKind.SCHEDULE, "weekly"))
    clock.now += timedelta(seconds=1)
    second = run_retraining(ctx, ALARM)
    assert first.outcome is not Outcome.SKIPPED
    assert second.outcome is Outcome.SKIPPED and "cooldown" in second.detail
    assert len([v for v in ctx.registry.list_versions() if v.version > 1]) == 1
    assert ctx.registry.runs()[0]["outcome"] == "skipped"


def test_a_held_lock_skips_the_run(ctx):
    ctx.registry.acquire_lock("retrain", "other", ttl=timedelta(minutes=5), cooldown=timedelta(0))
    result = run_retraining(ctx, ALARM)
    assert result.outcome is Outcome.SKIPPED and "is running" in result.detail


def test_failed_bundle_write_leaves_registry_and_champion_as_they_were(aws_stack, ctx, monkeypatch):
    log_traffic(aws_stack, ctx.registry, 1, generate_churn(1200, seed=24), NOW - timedelta(days=1))
    before_versions = [v.version for v in ctx.registry.list_versions()]
    before_history = ctx.registry.history()

    def broken_put(*args, **kwargs):
        raise StorageError("write s3://artifacts/models/...: InternalError")

    monkeypatch.setattr("mlops.model.bundle.put_new_bytes", broken_put)
    result = run_retraining(ctx, ALARM)

    assert result.outcome is Outcome.FAILED and "InternalError" in result.detail
    assert [v.version for v in ctx.registry.list_versions()] == before_versions
    assert ctx.registry.history() == before_history and ctx.registry.champion().version == 1
    assert ctx.registry.runs()[0]["outcome"] == "failed"


def test_without_auto_promote_an_approved_candidate_waits_and_people_are_told(aws_stack, ctx, monkeypatch):
    from mlops.retraining import run as run_module

    real = run_module.champion_bundle

    def manual_spec(c):
        version, spec, *rest = real(c)
        retraining = Retraining(**{**spec.retraining.model_dump(), "auto_promote": False})
        return (version, spec.model_copy(update={"retraining": retraining}), *rest)

    monkeypatch.setattr(run_module, "champion_bundle", manual_spec)
    queue = aws_stack.sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = aws_stack.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws_stack.sns.subscribe(TopicArn=ctx.topic_arn, Protocol="sqs", Endpoint=arn)
    drifted = generate_churn(3000, seed=25, concept_shift=1.0)
    log_traffic(aws_stack, ctx.registry, 1, drifted, NOW - timedelta(days=2), spacing=timedelta(seconds=50))

    result = run_retraining(ctx, ALARM)

    assert result.outcome is Outcome.APPROVED and "awaits approval" in result.detail
    assert ctx.registry.champion().version == 1
    assert ctx.registry.get_version(result.version).status is VersionStatus.APPROVED
    messages = aws_stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert any("retraining approved" in m["Body"] for m in messages)
