"""The retraining condition: retraining keeps being attempted while it is wanted, not once per alarm.

An alarm that triggers retraining changes state once; if the one run it starts is skipped
(lock, cooldown) or its candidate is rejected, the alarm stays in ALARM and sends nothing
more. So the wish to retrain is stored in the registry as a *condition* with its attempts:

- ``open``: a retraining alarm is in ALARM. A retry tick (a schedule at the monitor's
  cadence) attempts again once ``next_attempt_after`` has passed: after the cooldown,
  doubling with each failed attempt up to ``retraining.max_backoff_minutes``. Lock and
  cooldown skips move the next attempt to when the lock allows one; they are not failures.
  After every ``retraining.notify_after_attempts`` failed attempts people are told (SNS).
- ``refining``: a candidate was promoted. The next attempts must beat the new champion
  *significantly* on recent labelled traffic (the gate's rule under a performance alarm);
  the first that does not closes the condition: the champion is as good as a refit on the
  data there is. A retraining alarm still in ALARM once it can only be about the new
  champion reopens it.
- ``closed``: the alarm went back to OK, a candidate awaits approval, or refits stopped
  improving.

A champion that the refit check could not beat is *converged*: it is as good as a refit on the
data there is. If a retraining alarm then stays in ALARM about it (an SLO above what the data
allow, say), another refit on the same data would only repeat that verdict, so the retry tick
does not reopen the condition: people are told once, and attempts resume when the production
window holds newer data than the verdict's, when the alarm leaves ALARM and fires again, or
when a person resumes retraining.

A person can pause it (``mlops retrain --pause``) and resume it; a paused condition is kept
and not acted on. On AWS the retry tick is an EventBridge schedule and the alarm state is
read with DescribeAlarms, so a missed state-change event cannot stall the loop either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from mlops.cloud.notify import notify
from mlops.cloud.registry import Registry
from mlops.cloud.storage import aws_call, iso, parse_time
from mlops.model.spec import ModelSpec
from mlops.retraining.run import (
    LOCK_NAME,
    Outcome,
    RetrainContext,
    RetrainResult,
    Trigger,
    TriggerKind,
    champion_spec,
    run_retraining,
)
from mlops.shared.alarm_specs import alarm_specs, evaluation_period_starts, schedule_period_seconds
from mlops.shared.errors import ConflictError

MIN_RETRY_DELAY = timedelta(hours=1)


class ConditionState(StrEnum):
    OPEN = "open"
    REFINING = "refining"
    CLOSED = "closed"


class RetrainingCondition(BaseModel):
    revision: int = 0
    state: ConditionState = ConditionState.CLOSED
    alarms: list[str] = Field(default_factory=list)
    opened_at: str | None = None
    reason: str = ""
    attempts: int = 0
    failures: int = 0
    last_attempt_at: str | None = None
    last_outcome: str | None = None
    last_detail: str | None = None
    next_attempt_after: str | None = None
    notified_failures: int = 0
    promoted: list[int] = Field(default_factory=list)
    paused: bool = False
    paused_by: str | None = None
    paused_reason: str | None = None
    paused_at: str | None = None
    closed_at: str | None = None
    closed_reason: str | None = None
    # The champion the last refit check could not beat, and when people were told that an alarm
    # still holds about it.
    converged_on: int | None = None
    held_at: str | None = None

    @property
    def active(self) -> bool:
        return self.state is not ConditionState.CLOSED


def load_condition(registry: Registry) -> RetrainingCondition | None:
    data = registry.retraining_condition()
    return RetrainingCondition.model_validate(data) if data else None


def save_condition(registry: Registry, condition: RetrainingCondition, read_revision: int | None) -> None:
    stored = condition.model_copy(update={"revision": (read_revision or 0) + 1})
    registry.put_retraining_condition(stored.model_dump(mode="json"), read_revision)
    condition.revision = stored.revision


def _read(registry: Registry) -> tuple[RetrainingCondition, int | None]:
    current = load_condition(registry)
    return (current, current.revision) if current else (RetrainingCondition(), None)


def _close(condition: RetrainingCondition, reason: str, now: datetime) -> None:
    condition.state = ConditionState.CLOSED
    condition.closed_at, condition.closed_reason = iso(now), reason
    condition.alarms = []
    condition.next_attempt_after = None


def _open(condition: RetrainingCondition, alarm: str, reason: str, now: datetime) -> None:
    if condition.state is ConditionState.CLOSED:
        condition.opened_at, condition.reason = iso(now), reason
        condition.attempts = condition.failures = condition.notified_failures = 0
        condition.promoted = []
        condition.closed_at = condition.closed_reason = None
        condition.converged_on = condition.held_at = None
    condition.state = ConditionState.OPEN
    if alarm not in condition.alarms:
        condition.alarms.append(alarm)


def retry_base(spec: ModelSpec) -> timedelta:
    """The first wait between attempts: the cooldown, but never less than a monitor period
    (new labels only count once the monitor has seen them) nor than an hour."""
    monitor = timedelta(seconds=schedule_period_seconds(spec.monitoring.schedule))
    return max(timedelta(minutes=spec.retraining.cooldown_minutes), monitor, MIN_RETRY_DELAY)


def backoff(spec: ModelSpec, failures: int) -> timedelta:
    """Wait after `failures` failed attempts: the base, doubled per failure, bounded."""
    base = retry_base(spec)
    bound = max(base, timedelta(minutes=spec.retraining.max_backoff_minutes))
    return min(bound, base * (2 ** max(0, failures - 1)))


def alarms_in_alarm(cloudwatch: Any, names: Sequence[str]) -> list[str] | None:
    """The named alarms now in ALARM; None when their state cannot be read here."""
    if cloudwatch is None or not names:
        return None
    with aws_call("describe the retraining alarms"):
        out = cloudwatch.describe_alarms(AlarmNames=list(names))
    return [a["AlarmName"] for a in out.get("MetricAlarms", []) if a.get("StateValue") == "ALARM"]


def _short(alarm_name: str) -> str:
    return alarm_name.rsplit("-", 1)[-1]


def _champion_settled(ctx: RetrainContext, spec: ModelSpec, now: datetime) -> bool:
    """Whether every retraining alarm's evaluation range lies after the last promotion, so its
    state speaks about the current champion and not about the version it replaced."""
    champion = ctx.registry.champion()
    if champion is None:
        return False
    since = parse_time(champion.since)
    # The state read now comes from an evaluation in the last minute. A datapoint stamped at the
    # promotion itself is the replaced version's (the monitor run of that tick reports it), so the
    # range must begin after it.
    return all(
        evaluation_period_starts(a, now)[0] > since for a in alarm_specs(spec) if a.triggers_retraining
    )


def _lock_allows_after(ctx: RetrainContext, spec: ModelSpec, now: datetime) -> datetime:
    lock = ctx.registry.lock_state(LOCK_NAME)
    if lock is None:
        return now
    candidates = [parse_time(lock.expires_at)]
    if lock.last_finished_at:
        candidates.append(
            parse_time(lock.last_finished_at) + timedelta(minutes=spec.retraining.cooldown_minutes)
        )
    return max(now, *candidates)


def _apply_outcome(
    ctx: RetrainContext, condition: RetrainingCondition, result: RetrainResult, spec: ModelSpec, now: datetime
) -> str | None:
    """Update the condition after an attempt; returns a message for people when one is due."""
    condition.attempts += 1
    condition.last_attempt_at = iso(now)
    condition.last_outcome, condition.last_detail = result.outcome.value, result.detail
    if result.outcome is Outcome.PROMOTED:
        condition.state = ConditionState.REFINING
        condition.failures = 0
        if result.version is not None:
            condition.promoted.append(result.version)
        condition.next_attempt_after = iso(now + retry_base(spec))
        return None
    if result.outcome is Outcome.APPROVED:
        _close(condition, f"v{result.version} passed the gate and awaits approval", now)
        return None
    if result.outcome is Outcome.REJECTED and condition.state is ConditionState.REFINING:
        champion = condition.promoted[-1] if condition.promoted else result.champion_before
        _close(condition, f"a refit on the data there is is not significantly better than v{champion}", now)
        condition.converged_on = champion
        return None
    if result.outcome is Outcome.SKIPPED:
        condition.next_attempt_after = iso(_lock_allows_after(ctx, spec, now))
        return None
    condition.failures += 1
    condition.next_attempt_after = iso(now + backoff(spec, condition.failures))
    every = spec.retraining.notify_after_attempts
    if condition.failures % every == 0 and condition.failures > condition.notified_failures:
        condition.notified_failures = condition.failures
        return (
            f"retraining has failed {condition.failures} times since {condition.opened_at} while "
            f"{', '.join(condition.alarms) or 'a retraining condition'} holds; last: {result.detail}. "
            f"Next attempt after {condition.next_attempt_after}. Pause with `mlops retrain --pause`."
        )
    return None


def attempt(ctx: RetrainContext, trigger: Trigger, force: bool = False) -> RetrainResult:
    """One retraining run, then the condition updated with its outcome (with up to one retry of
    the conditional write when another writer got there first)."""
    result = run_retraining(ctx, trigger, force=force)
    spec = champion_spec(ctx)
    if spec is None:
        return result
    now = ctx.now()
    for _ in range(3):
        condition, revision = _read(ctx.registry)
        if not condition.active:  # closed meanwhile (the alarm went back to OK)
            return result
        message = _apply_outcome(ctx, condition, result, spec, now)
        try:
            save_condition(ctx.registry, condition, revision)
        except ConflictError:
            continue
        if message:
            notify(
                ctx.sns,
                ctx.topic_arn,
                f"[{ctx.registry.model_name}] retraining keeps failing",
                {
                    "message": message,
                    "condition": condition.model_dump(mode="json"),
                },
            )
        return result
    return result


def on_alarm(ctx: RetrainContext, trigger: Trigger) -> RetrainResult:
    """A retraining alarm entered ALARM: open (or widen) the condition and attempt now."""
    now = ctx.now()
    alarm = trigger.alarm_name or "alarm"
    condition, revision = _read(ctx.registry)
    spec = champion_spec(ctx)
    if condition.state is ConditionState.REFINING and spec and not _champion_settled(ctx, spec, now):
        # The alarm's range still covers the version just replaced, whose figures fired it: noted,
        # the refit check goes on, and the retry tick reopens the condition if it stays in ALARM.
        if alarm not in condition.alarms:
            condition.alarms.append(alarm)
        save_condition(ctx.registry, condition, revision)
        return _idle(f"{alarm} in ALARM on the replaced version's figures; the refit check goes on")
    _open(condition, alarm, f"{alarm} in ALARM: {trigger.reason}", now)
    save_condition(ctx.registry, condition, revision)
    if condition.paused:
        return _paused_skip(ctx, condition, trigger, now)
    return attempt(ctx, replace(trigger, attempt=condition.attempts + 1))


def on_alarm_ok(ctx: RetrainContext, alarm_name: str) -> RetrainResult:
    """A retraining alarm went back to OK: an open condition without other alarms closes; a
    refining one goes on (the refit test decides when it ends)."""
    now = ctx.now()
    condition, revision = _read(ctx.registry)
    alarm = _short(alarm_name)
    if alarm in condition.alarms:
        condition.alarms.remove(alarm)
    if condition.state is ConditionState.OPEN and not condition.alarms:
        _close(condition, f"{alarm} back to OK", now)
    if revision is not None:
        save_condition(ctx.registry, condition, revision)
    return _idle(f"retraining condition {condition.state.value} after {alarm} went to OK")


def resume(ctx: RetrainContext) -> RetrainResult:
    """The retry tick: attempt again when the condition holds and its next attempt is due."""
    now = ctx.now()
    spec = champion_spec(ctx)
    if spec is None:
        return _idle("no champion")
    condition, revision = _read(ctx.registry)
    alarming = alarms_in_alarm(ctx.cloudwatch, ctx.retraining_alarms)
    settled = _champion_settled(ctx, spec, now)
    changed = False
    champion = ctx.registry.champion()
    if (
        alarming
        and settled
        and condition.state is ConditionState.CLOSED
        and champion is not None
        and condition.converged_on == champion.version
        and not _newer_data_since(condition, spec, now)
    ):
        return _hold(ctx, condition, revision, alarming, spec, now)
    if alarming and settled and condition.state is not ConditionState.OPEN:
        # In ALARM about the current champion without a state change to say so (a missed event,
        # or a promoted version that is no better): retraining is wanted again.
        for name in alarming:
            _open(condition, _short(name), f"{_short(name)} in ALARM while the champion serves", now)
        changed = True
    elif alarming == [] and condition.state is ConditionState.OPEN:
        _close(condition, "no retraining alarm is in ALARM", now)
        changed = True
    if changed:
        save_condition(ctx.registry, condition, revision)
    if not condition.active:
        return _idle("no retraining wanted")
    if condition.paused:
        return _idle(f"retraining paused by {condition.paused_by}: {condition.paused_reason}")
    if condition.next_attempt_after and now < parse_time(condition.next_attempt_after):
        return _idle(f"next attempt after {condition.next_attempt_after}")
    reason = (
        f"{', '.join(condition.alarms)} in ALARM since {condition.opened_at}"
        if condition.state is ConditionState.OPEN
        else f"refit check after the promotion of v{condition.promoted[-1] if condition.promoted else '?'}"
    )
    trigger = Trigger(
        TriggerKind.RETRY,
        reason=reason,
        alarm_name=condition.alarms[0] if condition.alarms else None,
        at=iso(now),
        attempt=condition.attempts + 1,
    )
    return attempt(ctx, trigger)


def _newer_data_since(condition: RetrainingCondition, spec: ModelSpec, now: datetime) -> bool:
    """Whether the production window has moved past every row the converging refit saw."""
    if condition.closed_at is None:
        return True
    return now >= parse_time(condition.closed_at) + timedelta(days=spec.retraining.production_window_days)


def _hold(
    ctx: RetrainContext,
    condition: RetrainingCondition,
    revision: int | None,
    alarming: Sequence[str],
    spec: ModelSpec,
    now: datetime,
) -> RetrainResult:
    """A retraining alarm holds about a champion no refit on the data there is beats: say so once."""
    names = ", ".join(_short(n) for n in alarming)
    retry_at = iso(
        parse_time(condition.closed_at or iso(now)) + timedelta(days=spec.retraining.production_window_days)
    )
    detail = (
        f"{names} in ALARM about v{condition.converged_on}, which a refit on the data there is did not "
        f"beat ({condition.closed_at}): what the alarm asks is out of reach of this model and data. "
        f"Retraining waits for newer data (from {retry_at}), for the alarm to fire again, or for "
        "`mlops retrain --resume`."
    )
    if condition.held_at is None:
        condition.held_at = iso(now)
        save_condition(ctx.registry, condition, revision)
        notify(
            ctx.sns,
            ctx.topic_arn,
            f"[{ctx.registry.model_name}] retraining cannot reach what {names} asks",
            {"message": detail, "condition": condition.model_dump(mode="json")},
        )
    return _idle(detail)


def note_run(ctx: RetrainContext, result: RetrainResult) -> None:
    """A scheduled or requested run's outcome also settles an active condition (a promotion
    moves it to refining, an approval closes it)."""
    if result.outcome not in (Outcome.PROMOTED, Outcome.APPROVED):
        return
    spec = champion_spec(ctx)
    condition, revision = _read(ctx.registry)
    if spec is None or not condition.active:
        return
    _apply_outcome(ctx, condition, result, spec, ctx.now())
    save_condition(ctx.registry, condition, revision)


def set_paused(
    registry: Registry, paused: bool, actor: str, reason: str, now: datetime
) -> RetrainingCondition:
    """A person pauses (or resumes) retraining for the condition; kept until changed back."""
    if paused and not reason.strip():
        raise ValueError("a reason is required to pause retraining")
    condition, revision = _read(registry)
    condition.paused = paused
    if not paused:  # a person asks for attempts again, also about a converged champion
        condition.converged_on = condition.held_at = None
    condition.paused_by, condition.paused_reason, condition.paused_at = (
        (actor, reason, iso(now)) if paused else (None, None, None)
    )
    save_condition(registry, condition, revision)
    return condition


def _paused_skip(
    ctx: RetrainContext, condition: RetrainingCondition, trigger: Trigger, now: datetime
) -> RetrainResult:
    detail = f"retraining paused by {condition.paused_by} ({condition.paused_reason}); {trigger.reason}"
    result = RetrainResult("paused", Outcome.SKIPPED, detail)
    ctx.registry.record_run(
        {
            "run_id": f"paused-{int(now.timestamp())}",
            "started_at": iso(now),
            "trigger": trigger.kind.value,
            "reason": trigger.reason,
            "outcome": result.outcome.value,
            "detail": detail,
        }
    )
    return result


def _idle(detail: str) -> RetrainResult:
    """Nothing ran: the answer of a tick with nothing due (not recorded as a run)."""
    return RetrainResult("", Outcome.SKIPPED, detail)
