"""Retraining persists while its alarm holds: retries with backoff, skips that are not final, people
told after repeated failures, a pause, OK and a settled champion's alarm (on moto)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from mlops.cloud.registry import Registry
from mlops.datagen.churn import generate_churn
from mlops.retraining import persistence
from mlops.retraining import run as run_module
from mlops.retraining.persistence import ConditionState, load_condition, set_paused
from mlops.retraining.run import Outcome, RetrainContext, Trigger, TriggerKind

from tests.conftest import register_and_promote
from tests.integration.test_retraining import NOW, Clock
from tests.traffic import log_traffic

ALARM_NAME = "test-churn-MetricGap"
ALARM = Trigger(TriggerKind.ALARM, "gap above 0.05", alarm_name="MetricGap", at="2026-11-20T12:00:00Z")


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def ctx(aws_stack, trained, churn_data, clock):
    registry = Registry(aws_stack.dynamodb, aws_stack.env["MLOPS_REGISTRY_TABLE"], "churn", clock=clock)
    register_and_promote(aws_stack, trained, churn_data)
    aws_stack.cloudwatch.put_metric_alarm(
        AlarmName=ALARM_NAME,
        Namespace="ServerlessMLOps",
        MetricName="MetricGap",
        Dimensions=[{"Name": "ModelName", "Value": "churn"}],
        Statistic="Maximum",
        Period=3600,
        EvaluationPeriods=3,
        Threshold=0.05,
        ComparisonOperator="GreaterThanThreshold",
    )
    set_alarm(aws_stack, "ALARM")
    return RetrainContext(
        registry=registry,
        s3=aws_stack.s3,
        sns=aws_stack.sns,
        artifact_bucket=aws_stack.artifact_bucket,
        log_bucket=aws_stack.env["MLOPS_LOG_BUCKET"],
        report_bucket=aws_stack.env["MLOPS_REPORT_BUCKET"],
        topic_arn=aws_stack.env["MLOPS_ALARM_TOPIC_ARN"],
        cloudwatch=aws_stack.cloudwatch,
        retraining_alarms=(ALARM_NAME,),
    )


def set_alarm(aws_stack, state: str) -> None:
    aws_stack.cloudwatch.set_alarm_state(AlarmName=ALARM_NAME, StateValue=state, StateReason="test")


def inbox(aws_stack) -> str:
    queue = aws_stack.sqs.create_queue(QueueName="people")["QueueUrl"]
    arn = aws_stack.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws_stack.sns.subscribe(TopicArn=aws_stack.env["MLOPS_ALARM_TOPIC_ARN"], Protocol="sqs", Endpoint=arn)
    return queue


def subjects(aws_stack, queue: str) -> list[str]:
    out = []
    while True:
        got = aws_stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        out += [json.loads(m["Body"]).get("Subject", "") for m in got]
        for m in got:
            aws_stack.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


def test_a_rejected_candidate_is_retried_after_the_cooldown_until_one_is_promoted(
    aws_stack, ctx, clock, monkeypatch
):
    # Given a changed world and a first candidate that learnt only the old one (original rows only)
    drifted = generate_churn(3000, seed=41, concept_shift=1.0)
    log_traffic(aws_stack, ctx.registry, 1, drifted, NOW - timedelta(days=2), spacing=timedelta(seconds=50))
    real = run_module.InProcessEngine.train

    def old_world_only(self, data, spec, weights, test_data):
        original = weights == 1.0
        return real(self, data[original].reset_index(drop=True), spec, weights[original], test_data)

    monkeypatch.setattr(run_module.InProcessEngine, "train", old_world_only)

    # When the alarm fires: the candidate is rejected, and the condition stays open with a next attempt
    first = persistence.on_alarm(ctx, ALARM)
    assert first.outcome is Outcome.REJECTED
    condition = load_condition(ctx.registry)
    assert condition.state is ConditionState.OPEN and condition.failures == 1
    due = datetime.fromisoformat(condition.next_attempt_after.replace("Z", "+00:00"))
    assert due - NOW == timedelta(hours=1)  # the spec's cooldown (60 min), at least a monitor period

    # Then a tick before the cooldown does nothing, and a tick after it tries again and promotes
    clock.now = NOW + timedelta(minutes=30)
    assert persistence.resume(ctx).run_id == ""
    monkeypatch.setattr(run_module.InProcessEngine, "train", real)
    clock.now = due + timedelta(minutes=1)
    second = persistence.resume(ctx)
    assert second.outcome is Outcome.PROMOTED, second.gate_report["checks"]
    assert ctx.registry.champion().version == second.version
    condition = load_condition(ctx.registry)
    assert condition.state is ConditionState.REFINING and condition.promoted == [second.version]
    runs = ctx.registry.runs()
    assert [r["outcome"] for r in runs[:2]] == ["promoted", "rejected"]
    assert runs[0]["trigger"] == "retry" and runs[0]["attempt"] == 2 and "MetricGap" in runs[0]["reason"]
    checks = {c["name"]: c for c in second.gate_report["checks"]}
    beats = checks["beats_champion"]["figures"]
    assert beats["ci_low"] > 0 and beats["method"] == "paired DeLong"
    assert checks["original_test_guard"]["status"] == "passed"
    assert checks["min_primary_metric"]["status"] == "skipped"


def test_a_lock_skip_is_not_final_a_pause_holds_and_ok_closes(aws_stack, ctx, clock):
    # Given another run holding the lock when the alarm fires
    ctx.registry.acquire_lock("retrain", "other", ttl=timedelta(minutes=5), cooldown=timedelta(0))
    skipped = persistence.on_alarm(ctx, ALARM)
    assert skipped.outcome is Outcome.SKIPPED and "is running" in skipped.detail
    condition = load_condition(ctx.registry)
    assert condition.state is ConditionState.OPEN and condition.failures == 0
    assert condition.next_attempt_after.startswith("2026-11-20T12:05:00")
    # When a person pauses it, a due tick does nothing
    set_paused(ctx.registry, True, "cli:alice", "data pipeline repair", clock.now)
    clock.now = NOW + timedelta(minutes=10)
    runs_before = len(ctx.registry.runs())
    paused = persistence.resume(ctx)
    assert paused.run_id == "" and "paused by cli:alice" in paused.detail
    assert len(ctx.registry.runs()) == runs_before
    # Then once the alarm is back to OK, the next tick closes the condition (even if its event was lost)
    set_paused(ctx.registry, False, "cli:alice", "", clock.now)
    set_alarm(aws_stack, "OK")
    assert persistence.resume(ctx).run_id == ""
    closed = load_condition(ctx.registry)
    assert closed.state is ConditionState.CLOSED and closed.closed_reason == "no retraining alarm is in ALARM"


def test_people_are_told_after_repeated_failures_and_backoff_is_bounded(aws_stack, ctx, clock, monkeypatch):
    queue = inbox(aws_stack)

    def broken(self, data, spec, weights, test_data):
        raise RuntimeError("training engine unavailable")

    monkeypatch.setattr(run_module.InProcessEngine, "train", broken)
    log_traffic(aws_stack, ctx.registry, 1, generate_churn(600, seed=42), NOW - timedelta(hours=12))
    assert persistence.on_alarm(ctx, ALARM).outcome is Outcome.FAILED
    waits = []
    for _ in range(2):
        condition = load_condition(ctx.registry)
        due = datetime.fromisoformat(condition.next_attempt_after.replace("Z", "+00:00"))
        waits.append(due - clock.now)
        assert not any("keeps failing" in s for s in subjects(aws_stack, queue))
        clock.now = due
        assert persistence.resume(ctx).outcome is Outcome.FAILED
    assert waits == [timedelta(hours=1), timedelta(hours=2)]
    told = [s for s in subjects(aws_stack, queue) if "keeps failing" in s]
    assert len(told) == 1
    assert load_condition(ctx.registry).failures == 3


def test_an_alarm_still_in_alarm_once_the_champion_settled_reopens_retraining(aws_stack, ctx, clock):
    # Given a condition closed after a promotion, and the alarm never left ALARM
    condition = persistence.RetrainingCondition(state=ConditionState.CLOSED, closed_reason="refits converged")
    persistence.save_condition(ctx.registry, condition, None)
    # When the tick comes while the alarm's range still covers the promotion: nothing
    clock.now = NOW
    since = datetime.fromisoformat(ctx.registry.champion().since.replace("Z", "+00:00"))
    clock.now = since + timedelta(hours=1)
    assert persistence.resume(ctx).run_id == ""
    assert load_condition(ctx.registry).state is ConditionState.CLOSED
    # Then once it can only be about the champion, the condition opens again and a run is attempted
    clock.now = since + timedelta(hours=4)
    result = persistence.resume(ctx)
    assert result.run_id != ""
    reopened = load_condition(ctx.registry)
    assert reopened.state is ConditionState.OPEN and reopened.alarms == ["MetricGap"]


def test_the_period_holding_the_promotion_still_speaks_for_the_replaced_version(aws_stack, ctx, clock):
    # Given a condition closed after a promotion, an alarm still in ALARM, and hourly alarm periods
    # of which three are evaluated
    condition = persistence.RetrainingCondition(state=ConditionState.CLOSED, closed_reason="refits converged")
    persistence.save_condition(ctx.registry, condition, None)
    since = datetime.fromisoformat(ctx.registry.champion().since.replace("Z", "+00:00"))
    # When the tick comes exactly three periods after the promotion: the first evaluated period is the
    # one the promotion fell in, which also holds what the monitor published before it
    clock.now = since + timedelta(hours=3)
    quiet = persistence.resume(ctx)
    # Then nothing reopens; one period later the range is the champion's alone and retraining resumes
    assert quiet.run_id == "" and load_condition(ctx.registry).state is ConditionState.CLOSED
    clock.now = since + timedelta(hours=4)
    assert persistence.resume(ctx).run_id != ""
    assert load_condition(ctx.registry).state is ConditionState.OPEN


def test_an_alarm_on_the_replaced_versions_figures_does_not_reopen_a_refining_condition(ctx, clock):
    # Given a condition refining after a promotion that the alarm's evaluation range still covers
    condition = persistence.RetrainingCondition(state=ConditionState.REFINING, promoted=[1])
    persistence.save_condition(ctx.registry, condition, None)
    since = datetime.fromisoformat(ctx.registry.champion().since.replace("Z", "+00:00"))
    clock.now = since + timedelta(hours=1)
    # When the alarm fires on those figures
    result = persistence.on_alarm(ctx, ALARM)
    # Then nothing runs and the refit check goes on
    assert result.run_id == "" and "replaced version" in result.detail
    kept = load_condition(ctx.registry)
    assert kept.state is ConditionState.REFINING and kept.alarms == ["MetricGap"]
    assert ctx.registry.runs() == []


def test_an_alarm_holding_about_a_converged_champion_is_told_once_and_not_retried(aws_stack, ctx, clock):
    queue = inbox(aws_stack)
    # Given a champion the refit check could not beat, and a retraining alarm that stays in ALARM about
    # it once its range is the champion's alone (a floor above what the data allow)
    since = datetime.fromisoformat(ctx.registry.champion().since.replace("Z", "+00:00"))
    champion = ctx.registry.champion().version
    condition = persistence.RetrainingCondition(
        state=ConditionState.CLOSED,
        closed_at=(since + timedelta(hours=1)).isoformat(),
        closed_reason=f"a refit on the data there is is not significantly better than v{champion}",
        converged_on=champion,
    )
    persistence.save_condition(ctx.registry, condition, None)
    # When the retry tick comes, twice
    clock.now = since + timedelta(hours=4)
    first = persistence.resume(ctx)
    clock.now = since + timedelta(hours=8)
    second = persistence.resume(ctx)
    # Then nothing is retrained, people are told once why, and the condition stays closed
    assert first.run_id == "" and second.run_id == "" and "out of reach" in first.detail
    assert ctx.registry.runs() == []
    told = [s for s in subjects(aws_stack, queue) if "cannot reach" in s]
    assert told == ["[churn] retraining cannot reach what MetricGap asks"]
    held = load_condition(ctx.registry)
    assert held.state is ConditionState.CLOSED and held.held_at is not None
    # And once a person resumes retraining, the next tick attempts again
    set_paused(ctx.registry, False, "cli:alice", "", clock.now)
    clock.now = since + timedelta(hours=9)
    assert persistence.resume(ctx).run_id != ""
    assert load_condition(ctx.registry).state is ConditionState.OPEN


def test_a_converged_champion_is_retrained_again_once_the_window_holds_newer_data(aws_stack, ctx, clock):
    # Given a converged champion whose verdict is older than the production window
    since = datetime.fromisoformat(ctx.registry.champion().since.replace("Z", "+00:00"))
    condition = persistence.RetrainingCondition(
        state=ConditionState.CLOSED,
        closed_at=(since + timedelta(hours=1)).isoformat(),
        closed_reason="refits converged",
        converged_on=ctx.registry.champion().version,
    )
    persistence.save_condition(ctx.registry, condition, None)
    window = timedelta(days=persistence.champion_spec(ctx).retraining.production_window_days)
    # When the tick comes after the window moved past every row the verdict saw
    clock.now = since + timedelta(hours=1) + window
    # Then the condition opens again and a run is attempted
    assert persistence.resume(ctx).run_id != ""
    assert load_condition(ctx.registry).state is ConditionState.OPEN
