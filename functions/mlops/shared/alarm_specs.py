"""Metric names and alarm specs, defined once.

Monitoring publishes these metrics; the CDK stack builds one CloudWatch alarm per
`AlarmSpec`; the local runtime evaluates the same specs over metrics in moto.
Model-quality alarms watch the series with only the `ModelName` dimension, which the
monitor publishes for the champion, so an alarm keeps working across promotions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from statistics import NormalDist
from typing import TYPE_CHECKING

from mlops.shared.resources import METRICS_NAMESPACE

if TYPE_CHECKING:
    from mlops.model.spec import ModelSpec

NAMESPACE = METRICS_NAMESPACE
DIM_MODEL = "ModelName"
DIM_VERSION = "ModelVersion"
DIM_FEATURE = "Feature"


class Metric(StrEnum):
    # Monitoring (per window)
    METRIC_GAP = "MetricGap"
    PRODUCTION_METRIC = "ProductionMetric"
    TEST_METRIC = "TestMetric"
    ESTIMATED_METRIC = "EstimatedMetric"
    ESTIMATED_METRIC_GAP = "EstimatedMetricGap"
    # Label-free estimation: the estimated gap over its limit from the test set's variability
    # (alarms from 1), and 1 when realized and estimated performance part ways on the same rows.
    ESTIMATED_GAP_RATIO = "EstimatedGapRatio"
    CONCEPT_SHIFT_SUSPECTED = "ConceptShiftSuspected"
    DRIFT_SHARE = "DriftShare"
    DATASET_DRIFT = "DatasetDrift"
    FEATURE_DRIFT = "FeatureDrift"
    PREDICTION_DRIFT = "PredictionDrift"
    LABEL_COUNT = "LabelCount"
    LABEL_COVERAGE = "LabelCoverage"
    PREDICTION_COUNT = "PredictionCount"
    FAIRNESS_GAP = "FairnessGap"
    MONITOR_HEARTBEAT = "MonitorHeartbeat"
    # Monitoring: per-feature drift and the significance of a performance loss
    FEATURE_DRIFT_MAX = "FeatureDriftMax"
    METRIC_GAP_Z = "MetricGapZ"
    # Serving (per request, EMF)
    PREDICTIONS = "Predictions"
    PREDICTION_LATENCY = "PredictionLatency"
    UNSEEN_CATEGORIES = "UnseenCategories"
    CHAMPION_LOAD_FAILURES = "ChampionLoadFailures"
    PREDICTION_LOG_FAILURES = "PredictionLogFailures"
    # Retraining
    RETRAIN_RUNS = "RetrainRuns"
    RETRAIN_FAILURES = "RetrainFailures"
    CANDIDATES_REJECTED = "CandidatesRejected"


class Comparison(StrEnum):
    GREATER = "GreaterThanThreshold"
    GREATER_OR_EQUAL = "GreaterThanOrEqualToThreshold"
    LESS = "LessThanThreshold"
    LESS_OR_EQUAL = "LessThanOrEqualToThreshold"

    def holds(self, value: float, threshold: float) -> bool:
        """Whether `value` breaches `threshold` by this comparison (as CloudWatch compares)."""
        if self is Comparison.GREATER:
            return value > threshold
        if self is Comparison.GREATER_OR_EQUAL:
            return value >= threshold
        if self is Comparison.LESS:
            return value < threshold
        return value <= threshold


class MissingData(StrEnum):
    MISSING = "missing"
    BREACHING = "breaching"
    NOT_BREACHING = "notBreaching"
    IGNORE = "ignore"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    metric: Metric
    statistic: str
    period_s: int
    comparison: Comparison
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: MissingData
    severity: Severity
    triggers_retraining: bool
    description: str

    def alarm_name(self, prefix: str, model_name: str) -> str:
        return f"{prefix}-{model_name}-{self.name}"

    def breaches(self, value: float) -> bool:
        return self.comparison.holds(value, self.threshold)


# CloudWatch evaluates every alarm once a minute, over the `evaluation_periods` periods that end at that
# minute: the range slides with the clock and is not aligned to period boundaries, so a datapoint is
# seen by the first evaluation after it was published, not one period later.
EVALUATION_INTERVAL_S = 60


def evaluation_period_starts(alarm: AlarmSpec, evaluated_at: datetime) -> list[datetime]:
    """Start times of the periods an evaluation at `evaluated_at` looks at, oldest first."""
    end = int(evaluated_at.timestamp()) // EVALUATION_INTERVAL_S * EVALUATION_INTERVAL_S
    return [
        datetime.fromtimestamp(end - alarm.period_s * k, tz=UTC)
        for k in range(alarm.evaluation_periods, 0, -1)
    ]


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_period_seconds(expression: str) -> int:
    """Seconds between runs of an EventBridge `rate(...)` expression; cron counts as hourly."""
    m = _RATE.match(expression.strip())
    if not m:
        return 3600
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2).rstrip("s")]


def alarm_specs(spec: ModelSpec) -> list[AlarmSpec]:
    """Every model-quality alarm for a model, thresholds taken from its spec."""
    mon = spec.monitoring
    # CloudWatch periods must be 10, 30 or a multiple of 60 s, and alarms look back at most a day
    # per datapoint; the monitor publishes once per schedule tick.
    period = monitor_alarm_period(mon.schedule)
    # A regression model's gap is its error's relative increase (mlops.regression.monitoring).
    max_gap = spec.regression.max_error_increase if spec.regression is not None else mon.max_metric_gap
    return [
        AlarmSpec(
            name="MetricGap",
            metric=Metric.METRIC_GAP,
            statistic="Maximum",
            period_s=period,
            comparison=Comparison.GREATER,
            threshold=max_gap,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            # No gap is published below the minimum label count: that is "not known", not "fine".
            treat_missing_data=MissingData.MISSING,
            severity=Severity.CRITICAL,
            triggers_retraining=True,
            description=(
                f"Test-set {spec.primary_metric.value} minus production value exceeds {mon.max_metric_gap}"
                if spec.regression is None
                else f"Production {spec.primary_metric.value} worse than its reference by over {max_gap:.0%}"
            ),
        ),
        # -- label-free estimation: limits scale with each window, so the monitor publishes the
        # gap as a share of its limit (the limit comes from the test set's chunk-to-chunk
        # variability, or monitoring.max_estimated_metric_gap when the spec fixes one).
        AlarmSpec(
            name="EstimatedMetricGap",
            metric=Metric.ESTIMATED_GAP_RATIO,
            statistic="Maximum",
            period_s=period,
            comparison=Comparison.GREATER_OR_EQUAL,
            threshold=1.0,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            treat_missing_data=MissingData.MISSING,
            severity=Severity.WARNING,
            triggers_retraining=False,
            description=(
                "Label-free estimate of the metric gap reached its limit from the test set's variability "
                "(early warning)"
            ),
        ),
        AlarmSpec(
            name="ConceptShiftSuspected",
            metric=Metric.CONCEPT_SHIFT_SUSPECTED,
            statistic="Maximum",
            period_s=period,
            comparison=Comparison.GREATER_OR_EQUAL,
            threshold=1.0,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            # Published only from min_labels labels on; no labels is "not known".
            treat_missing_data=MissingData.MISSING,
            severity=Severity.WARNING,
            triggers_retraining=False,
            description=(
                "Realized and label-free estimated performance disagree beyond their intervals: "
                "the relation between inputs and outcome may have changed"
            ),
        ),
        AlarmSpec(
            name="DataDrift",
            metric=Metric.DRIFT_SHARE,
            statistic="Maximum",
            period_s=period,
            comparison=Comparison.GREATER_OR_EQUAL,
            threshold=mon.drift_share,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=MissingData.NOT_BREACHING,
            severity=Severity.WARNING,
            triggers_retraining=False,
            description=f"At least {mon.drift_share:.0%} of features drifted from the reference",
        ),
        AlarmSpec(
            name="PredictionDrift",
            metric=Metric.PREDICTION_DRIFT,
            statistic="Maximum",
            period_s=period,
            comparison=Comparison.GREATER,
            threshold=mon.psi_drift,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=MissingData.NOT_BREACHING,
            severity=Severity.WARNING,
            triggers_retraining=False,
            description=f"PSI of predicted scores above {mon.psi_drift}",
        ),
        AlarmSpec(
            name="FairnessGap",
            metric=Metric.FAIRNESS_GAP,
            statistic="Maximum",
            period_s=period,
            comparison=Comparison.GREATER,
            threshold=mon.max_fairness_gap,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=MissingData.NOT_BREACHING,
            severity=Severity.WARNING,
            triggers_retraining=False,
            description=f"Largest selection-rate or TPR gap between groups above {mon.max_fairness_gap}",
        ),
        AlarmSpec(
            name="MonitorHeartbeat",
            metric=Metric.MONITOR_HEARTBEAT,
            statistic="Sum",
            period_s=period,
            comparison=Comparison.LESS,
            threshold=1.0,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            # A monitor that stopped running publishes nothing: missing data is the failure.
            treat_missing_data=MissingData.BREACHING,
            severity=Severity.CRITICAL,
            triggers_retraining=False,
            description="The monitor has not run for two schedule periods",
        ),
        *label_alarm_specs(spec),
        *quality_alarm_specs(spec, period),
    ]


# --- Labels drying up, and operational alarms -----------------------------------------------------
# Failures no model-quality figure shows. CloudWatch matches an alarm's dimensions exactly, so each
# alarm names the exact dimension set its publisher uses.


def label_alarm_specs(spec: ModelSpec) -> list[AlarmSpec]:
    """Too few labels for a whole window: MetricGap is then not published and its alarm sees only
    missing data, which it must not take for "fine" (nor retrain on). This one says so. A missing
    LabelCount means the monitor made no report for the champion (no traffic in the window), which
    leaves performance just as unknown, so missing data breaches; MonitorHeartbeat tells apart a
    monitor that stopped."""
    mon = spec.monitoring
    period = monitor_alarm_period(mon.schedule)
    # One datapoint per run over one monitoring window (CloudWatch evaluates at most one day).
    periods = max(1, min(mon.window_hours * 3600, 86400) // period)
    return [
        AlarmSpec(
            name="LabelsDryingUp",
            metric=Metric.LABEL_COUNT,
            statistic="Maximum",
            period_s=period,
            comparison=Comparison.LESS,
            threshold=float(mon.min_labels),
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=MissingData.BREACHING,
            severity=Severity.WARNING,
            triggers_retraining=False,
            description=(
                f"Fewer than {mon.min_labels} labels per {mon.window_hours} h window for a whole window: "
                "production performance (MetricGap) is unknown"
            ),
        )
    ]


def monitor_alarm_period(schedule: str) -> int:
    """The alarm period of the monitor's metrics: one schedule tick, within CloudWatch's limits."""
    return min(max(60, schedule_period_seconds(schedule) // 60 * 60), 86400)


DIM_SERVICE = "service"  # Powertools adds it to every EMF metric (mlops.shared.observability.SERVICE)
# The failure counts the functions publish as EMF, each in a document of its own with exactly
# these dimensions (a request's own metrics also carry its model version, which no alarm can name).
FAILURE_DIMENSIONS = (DIM_MODEL, DIM_SERVICE)
AWS_SQS = "AWS/SQS"
AWS_LAMBDA = "AWS/Lambda"
AWS_EVENTS = "AWS/Events"


class Subject(StrEnum):
    """What an operational alarm's dimensions name; the stack binds them to its resources."""

    MODEL = "model"  # FAILURE_DIMENSIONS: the model name and the Powertools service
    PREDICTION_QUEUE = "prediction-queue"  # QueueName of the prediction queue
    DEAD_LETTER_QUEUES = "dead-letter-queues"  # QueueName, one alarm per dead-letter queue
    ASYNC_FUNCTIONS = "async-functions"  # FunctionName, one alarm per asynchronously invoked function
    RULES = "rules"  # RuleName, one alarm per EventBridge rule


SUBJECT_DIMENSIONS: dict[Subject, tuple[str, ...]] = {
    Subject.MODEL: FAILURE_DIMENSIONS,
    Subject.PREDICTION_QUEUE: ("QueueName",),
    Subject.DEAD_LETTER_QUEUES: ("QueueName",),
    Subject.ASYNC_FUNCTIONS: ("FunctionName",),
    Subject.RULES: ("RuleName",),
}


@dataclass(frozen=True)
class OperationalAlarmSpec:
    name: str
    namespace: str
    metric_name: str
    subject: Subject
    statistic: str
    period_s: int
    comparison: Comparison
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: MissingData
    severity: Severity
    description: str

    @property
    def dimensions(self) -> tuple[str, ...]:
        return SUBJECT_DIMENSIONS[self.subject]

    def alarm_name(self, prefix: str, model_name: str, resource: str | None = None) -> str:
        """`resource` names the queue, function or rule when the spec makes one alarm per resource."""
        return (
            f"{prefix}-{model_name}-{resource}-{self.name}"
            if resource
            else f"{prefix}-{model_name}-{self.name}"
        )

    def breaches(self, value: float) -> bool:
        return self.comparison.holds(value, self.threshold)


# A prediction record older than this on the queue is not reaching S3: the writer batches for at
# most 60 s and retries within its 240 s visibility timeout, so 15 minutes means it is failing.
QUEUE_AGE_LIMIT_S = 900


def operational_alarm_specs() -> list[OperationalAlarmSpec]:
    """Every operational alarm. Quiet periods publish nothing, and nothing is not a failure."""

    def failures(
        name: str, metric: str, namespace: str, subject: Subject, severity: Severity, description: str
    ) -> OperationalAlarmSpec:
        return OperationalAlarmSpec(
            name=name,
            namespace=namespace,
            metric_name=metric,
            subject=subject,
            statistic="Sum",
            period_s=300,
            comparison=Comparison.GREATER,
            threshold=0.0,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=MissingData.NOT_BREACHING,
            severity=severity,
            description=description,
        )

    return [
        failures(
            "PredictionLogFailures",
            Metric.PREDICTION_LOG_FAILURES.value,
            NAMESPACE,
            Subject.MODEL,
            Severity.CRITICAL,
            "Predictions were answered but could not be queued for the log: they are only in CloudWatch Logs",
        ),
        failures(
            "ChampionLoadFailures",
            Metric.CHAMPION_LOAD_FAILURES.value,
            NAMESPACE,
            Subject.MODEL,
            Severity.CRITICAL,
            "A promoted champion was refused by predict (unreadable or tampered); the previous one serves",
        ),
        failures(
            "RetrainFailures",
            Metric.RETRAIN_FAILURES.value,
            NAMESPACE,
            Subject.MODEL,
            Severity.CRITICAL,
            "A retraining run failed; the registry and the champion are unchanged",
        ),
        failures(
            "CandidatesRejected",
            Metric.CANDIDATES_REJECTED.value,
            NAMESPACE,
            Subject.MODEL,
            Severity.WARNING,
            "A retrained candidate failed the gate; its gate report says which checks",
        ),
        OperationalAlarmSpec(
            name="OldestPredictionRecord",
            namespace=AWS_SQS,
            metric_name="ApproximateAgeOfOldestMessage",
            subject=Subject.PREDICTION_QUEUE,
            statistic="Maximum",
            period_s=300,
            comparison=Comparison.GREATER,
            threshold=float(QUEUE_AGE_LIMIT_S),
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=MissingData.NOT_BREACHING,
            severity=Severity.CRITICAL,
            description=f"Prediction records wait over {QUEUE_AGE_LIMIT_S} s for the log writer",
        ),
        OperationalAlarmSpec(
            name="DeadLetters",
            namespace=AWS_SQS,
            metric_name="ApproximateNumberOfMessagesVisible",
            subject=Subject.DEAD_LETTER_QUEUES,
            statistic="Maximum",
            period_s=300,
            comparison=Comparison.GREATER,
            threshold=0.0,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=MissingData.NOT_BREACHING,
            severity=Severity.CRITICAL,
            description="Messages reached a dead-letter queue: records not logged, or runs that failed",
        ),
        failures(
            "AsyncEventsDropped",
            "AsyncEventsDropped",
            AWS_LAMBDA,
            Subject.ASYNC_FUNCTIONS,
            Severity.CRITICAL,
            "Lambda dropped asynchronous events (too old or out of retries) without running them",
        ),
        failures(
            "FailedInvocations",
            "FailedInvocations",
            AWS_EVENTS,
            Subject.RULES,
            Severity.CRITICAL,
            "EventBridge could not start the rule's target",
        ),
    ]


def quality_alarm_specs(spec: ModelSpec, period: int) -> list[AlarmSpec]:
    """Alarms that see what the share and point-gap rules miss: one strongly drifted feature,
    a small but significant performance loss, and an absolute production floor (SLO)."""
    mon = spec.monitoring
    z = NormalDist().inv_cdf(1.0 - mon.drop_alpha)
    specs = [
        AlarmSpec(
            name="FeatureDrift",
            metric=Metric.FEATURE_DRIFT_MAX,
            statistic="Maximum",
            period_s=period,
            comparison=Comparison.GREATER_OR_EQUAL,
            threshold=mon.psi_drift,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=MissingData.NOT_BREACHING,
            severity=Severity.WARNING,
            triggers_retraining=False,
            description=(
                f"A feature drifted significantly with a (weighted) PSI of at least {mon.psi_drift}"
            ),
        ),
        AlarmSpec(
            name="MetricDrop",
            metric=Metric.METRIC_GAP_Z,
            statistic="Maximum",
            period_s=period,
            comparison=Comparison.GREATER,
            threshold=round(z, 4),
            evaluation_periods=3,
            datapoints_to_alarm=2,
            # Published only from `significance_min_labels` labels on: fewer is "not known".
            treat_missing_data=MissingData.MISSING,
            severity=Severity.CRITICAL,
            triggers_retraining=True,
            description=(
                f"Production {spec.primary_metric.value} is significantly below the reference "
                f"(one-sided p < {mon.drop_alpha}, both samples' errors counted)"
            ),
        ),
    ]
    if mon.min_production_metric is not None:
        specs.append(
            AlarmSpec(
                name="ProductionFloor",
                metric=Metric.PRODUCTION_METRIC,
                statistic="Minimum",
                period_s=period,
                comparison=Comparison.LESS,
                threshold=mon.min_production_metric,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data=MissingData.MISSING,
                severity=Severity.CRITICAL,
                triggers_retraining=True,
                description=(
                    f"Production {spec.primary_metric.value} below the floor "
                    f"{mon.min_production_metric} (SLO)"
                ),
            )
        )
    return specs
