"""Metric names and alarm specs, defined once.

Monitoring publishes these metrics; the CDK stack builds one CloudWatch alarm per
`AlarmSpec`; the local runtime evaluates the same specs over metrics in moto.
Model-quality alarms watch the series with only the `ModelName` dimension, which the
monitor publishes for the champion, so an alarm keeps working across promotions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist

from mlops.resources import METRICS_NAMESPACE
from mlops.spec import ModelSpec

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
        if self.comparison is Comparison.GREATER:
            return value > self.threshold
        if self.comparison is Comparison.GREATER_OR_EQUAL:
            return value >= self.threshold
        if self.comparison is Comparison.LESS:
            return value < self.threshold
        return value <= self.threshold


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
    period = min(max(60, schedule_period_seconds(mon.schedule) // 60 * 60), 86400)
    return [
        AlarmSpec(
            name="MetricGap",
            metric=Metric.METRIC_GAP,
            statistic="Maximum",
            period_s=period,
            comparison=Comparison.GREATER,
            threshold=mon.max_metric_gap,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            # No gap is published below the minimum label count: that is "not known", not "fine".
            treat_missing_data=MissingData.MISSING,
            severity=Severity.CRITICAL,
            triggers_retraining=True,
            description=(
                f"Test-set {spec.primary_metric.value} minus production value exceeds {mon.max_metric_gap}"
            ),
        ),
        AlarmSpec(
            name="EstimatedMetricGap",
            metric=Metric.ESTIMATED_METRIC_GAP,
            statistic="Maximum",
            period_s=period,
            comparison=Comparison.GREATER,
            threshold=mon.max_estimated_metric_gap,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            treat_missing_data=MissingData.MISSING,
            severity=Severity.WARNING,
            triggers_retraining=False,
            description="Label-free estimate of the metric gap exceeds its limit (early warning)",
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
        *quality_alarm_specs(spec, period),
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
