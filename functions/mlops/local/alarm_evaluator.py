"""CloudWatch alarm semantics for the local stack, where moto stores metrics but evaluates no alarm.

The alarms are the ones `mlops.shared.alarm_specs.alarm_specs` defines for the stack. Evaluation
follows CloudWatch: the last `evaluation_periods` periods ending at the evaluation time,
one statistic per period, "M out of N" (`datapoints_to_alarm` of `evaluation_periods`),
and the treatment of missing data:

- ``missing``: only present datapoints count; none present -> INSUFFICIENT_DATA; when
  fewer than M are present, ALARM needs every present one to breach;
- ``ignore``: like ``missing``, but none present keeps the current state;
- ``breaching`` / ``notBreaching``: a missing period counts as breaching / not breaching.

A state change is published to the SNS topic as CloudWatch does, and returned as the
EventBridge "CloudWatch Alarm State Change" event the retrain function receives.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from mlops.shared.alarm_specs import (
    DIM_MODEL,
    EVALUATION_INTERVAL_S,
    NAMESPACE,
    AlarmSpec,
    MissingData,
    evaluation_period_starts,
)


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


def period_starts(spec: AlarmSpec, now: datetime) -> list[datetime]:
    """Start times of the periods CloudWatch's first evaluation after `now` looks at, oldest first.

    The local stack evaluates right after the monitor published at `now`; on AWS the next
    once-a-minute evaluation sees that datapoint, so the range ends at the next whole minute.
    """
    next_minute = datetime.fromtimestamp(
        (int(now.timestamp()) // EVALUATION_INTERVAL_S + 1) * EVALUATION_INTERVAL_S, tz=UTC
    )
    return evaluation_period_starts(spec, next_minute)


def evaluate(spec: AlarmSpec, values: Sequence[float | None], current: AlarmState) -> tuple[AlarmState, str]:
    """New state and reason from one value (or None for missing) per evaluated period."""
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    treat = spec.treat_missing_data
    if treat in (MissingData.BREACHING, MissingData.NOT_BREACHING):
        breaching = sum(spec.breaches(v) for v in present)
        if treat is MissingData.BREACHING:
            breaching += missing
        state = AlarmState.ALARM if breaching >= spec.datapoints_to_alarm else AlarmState.OK
        return state, (
            f"{breaching} of the last {len(values)} periods breaching "
            f"(missing treated as {treat.value}); {spec.datapoints_to_alarm} needed"
        )
    if not present:
        if treat is MissingData.IGNORE:
            return current, "no datapoints; state kept (missing data ignored)"
        return AlarmState.INSUFFICIENT_DATA, f"no datapoints in the last {len(values)} periods"
    breaching = sum(spec.breaches(v) for v in present)
    needed = min(spec.datapoints_to_alarm, len(present))
    state = AlarmState.ALARM if breaching >= needed else AlarmState.OK
    return state, (
        f"{breaching} of {len(present)} present datapoints breaching the threshold "
        f"({spec.comparison.value} {spec.threshold}); {needed} needed"
    )


@dataclass
class Transition:
    spec: AlarmSpec
    alarm_name: str
    old: AlarmState
    new: AlarmState
    reason: str
    at: datetime
    values: list[float | None]

    def event(self, account: str, region: str, model_name: str) -> dict[str, Any]:
        """The EventBridge event CloudWatch sends for this change."""
        stamp = self.at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        return {
            "version": "0",
            "id": f"local-{self.alarm_name}-{int(self.at.timestamp())}",
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": account,
            "time": self.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [f"arn:aws:cloudwatch:{region}:{account}:alarm:{self.alarm_name}"],
            "detail": {
                "alarmName": self.alarm_name,
                "state": {"value": self.new.value, "reason": self.reason, "timestamp": stamp},
                "previousState": {"value": self.old.value, "reason": "", "timestamp": stamp},
                "configuration": {
                    "metrics": [
                        {
                            "id": "m1",
                            "metricStat": {
                                "metric": {
                                    "namespace": NAMESPACE,
                                    "name": self.spec.metric.value,
                                    "dimensions": {DIM_MODEL: model_name},
                                },
                                "period": self.spec.period_s,
                                "stat": self.spec.statistic,
                            },
                            "returnData": True,
                        }
                    ]
                },
            },
        }


class AlarmEvaluator:
    """Evaluates alarm specs over metrics in a (moto) CloudWatch and acts on state changes."""

    def __init__(
        self,
        cloudwatch: Any,
        sns: Any,
        topic_arn: str | None,
        specs: Sequence[AlarmSpec],
        model_name: str,
        prefix: str,
        on_transition: Callable[[Transition, dict[str, Any]], None] | None = None,
        account: str = "123456789012",
        region: str = "us-east-1",
    ) -> None:
        self.cloudwatch = cloudwatch
        self.sns = sns
        self.topic_arn = topic_arn
        self.specs = list(specs)
        self.model_name = model_name
        self.prefix = prefix
        self.on_transition = on_transition
        self.account = account
        self.region = region
        self.states: dict[str, AlarmState] = {}
        self.created_at: datetime | None = None
        self.transitions: list[Transition] = []

    def create_alarms(self, at: datetime | None = None) -> None:
        """Define the alarms in CloudWatch too, so `describe_alarms` shows them and their state."""
        self.created_at = at
        for spec in self.specs:
            name = spec.alarm_name(self.prefix, self.model_name)
            self.cloudwatch.put_metric_alarm(
                AlarmName=name,
                AlarmDescription=spec.description,
                Namespace=NAMESPACE,
                MetricName=spec.metric.value,
                Dimensions=[{"Name": DIM_MODEL, "Value": self.model_name}],
                Statistic=spec.statistic,
                Period=spec.period_s,
                EvaluationPeriods=spec.evaluation_periods,
                DatapointsToAlarm=spec.datapoints_to_alarm,
                Threshold=spec.threshold,
                ComparisonOperator=spec.comparison.value,
                TreatMissingData=spec.treat_missing_data.value,
                AlarmActions=[self.topic_arn] if self.topic_arn else [],
                OKActions=[self.topic_arn] if self.topic_arn else [],
            )
            self.states[name] = AlarmState.INSUFFICIENT_DATA

    def period_values(self, spec: AlarmSpec, now: datetime) -> list[float | None]:
        """Values of the evaluated periods; periods that began before the alarm existed are left
        out, so a fresh stack does not alarm on the silence before it was started."""
        starts = [s for s in period_starts(spec, now) if self.created_at is None or s >= self.created_at]
        if not starts:
            return []
        points = exact_series(
            self.cloudwatch,
            spec.metric.value,
            {DIM_MODEL: self.model_name},
            starts[0],
            starts[-1] + timedelta(seconds=spec.period_s),
            spec.period_s,
            spec.statistic,
        )
        return bucket_datapoints(points, spec, starts)

    def evaluate_all(self, now: datetime) -> list[Transition]:
        changes = []
        for spec in self.specs:
            name = spec.alarm_name(self.prefix, self.model_name)
            old = self.states.get(name, AlarmState.INSUFFICIENT_DATA)
            values = self.period_values(spec, now)
            if not values:
                continue
            new, reason = evaluate(spec, values, old)
            self.states[name] = new
            if new is old:
                continue
            transition = Transition(spec, name, old, new, reason, now, values)
            self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=new.value, StateReason=reason[:1000])
            event = transition.event(self.account, self.region, self.model_name)
            if self.topic_arn and new in (AlarmState.ALARM, AlarmState.OK):
                self.sns.publish(
                    TopicArn=self.topic_arn,
                    Subject=f'{new.value}: "{name}"'[:100],
                    Message=json.dumps(sns_alarm_message(transition, self.region, self.account)),
                )
            self.transitions.append(transition)
            changes.append(transition)
            if self.on_transition:
                self.on_transition(transition, event)
        return changes


def exact_series(
    cloudwatch: Any,
    metric_name: str,
    dimensions: Mapping[str, str],
    start: datetime,
    end: datetime,
    period_s: int,
    statistic: str,
) -> list[dict[str, Any]]:
    """Datapoints of the series with exactly these dimensions, as a CloudWatch alarm sees it.

    An alarm on {ModelName} must not see the {ModelName, ModelVersion} series of a retired
    version: CloudWatch matches dimension sets exactly. GetMetricStatistics in the stand-in
    matches them as a subset, so the query goes through GetMetricData, which matches exactly,
    and every answer is checked against the metric it asked for.
    """
    query = {
        "Id": "m1",
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": metric_name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            },
            "Period": period_s,
            "Stat": statistic,
        },
        "ReturnData": True,
    }
    points: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"MetricDataQueries": [query], "StartTime": start, "EndTime": end}
    while True:
        out = cloudwatch.get_metric_data(**kwargs)
        for result in out.get("MetricDataResults", []):
            if result.get("Id") != "m1":
                continue
            for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=True):
                points.append({"Timestamp": ts, statistic: float(value)})
        token = out.get("NextToken")
        if not token:
            return points
        kwargs["NextToken"] = token


def bucket_datapoints(
    datapoints: Sequence[Mapping[str, Any]], spec: AlarmSpec, starts: Sequence[datetime]
) -> list[float | None]:
    """One value per period start (None where the period has no datapoint). Periods start where the
    evaluation range does, not at multiples of the period."""
    by_start: dict[int, float] = {}
    if not starts:
        return []
    first = int(starts[0].timestamp())
    for dp in datapoints:
        ts = dp["Timestamp"]
        ts = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))
        key = first + (int(ts.timestamp()) - first) // spec.period_s * spec.period_s
        value = float(dp[spec.statistic])
        held = by_start.get(key)
        by_start[key] = value if held is None else _combine(spec.statistic, held, value)
    return [by_start.get(int(s.timestamp())) for s in starts]


def _combine(statistic: str, a: float, b: float) -> float:
    if statistic == "Maximum":
        return max(a, b)
    if statistic == "Minimum":
        return min(a, b)
    return a + b if statistic in ("Sum", "SampleCount") else (a + b) / 2


def sns_alarm_message(t: Transition, region: str, account: str) -> dict[str, Any]:
    """The JSON body CloudWatch publishes to an alarm's SNS topic."""
    return {
        "AlarmName": t.alarm_name,
        "AlarmDescription": t.spec.description,
        "AWSAccountId": account,
        "NewStateValue": t.new.value,
        "NewStateReason": t.reason,
        "StateChangeTime": t.at.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "Region": region,
        "OldStateValue": t.old.value,
        "Trigger": {
            "MetricName": t.spec.metric.value,
            "Namespace": NAMESPACE,
            "Statistic": t.spec.statistic.upper(),
            "Period": t.spec.period_s,
            "EvaluationPeriods": t.spec.evaluation_periods,
            "DatapointsToAlarm": t.spec.datapoints_to_alarm,
            "ComparisonOperator": t.spec.comparison.value,
            "Threshold": t.spec.threshold,
            "TreatMissingData": t.spec.treat_missing_data.value,
        },
    }
