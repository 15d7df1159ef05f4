"""CloudWatch datums of a monitor run, and the put_metric_data calls that send them.

Every figure goes out with ModelName+ModelVersion; the champion's also with ModelName
alone, the series the alarms of `mlops.shared.alarm_specs` watch. A figure that is unknown (too few
labels, empty window) is left out, so alarms see missing data rather than a false zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mlops.cloud.storage import aws_call
from mlops.monitoring.report import VersionReport
from mlops.shared.alarm_specs import DIM_FEATURE, DIM_MODEL, DIM_VERSION, NAMESPACE, Metric

# CloudWatch accepts at most 1,000 datums per PutMetricData call.
MAX_DATUMS_PER_CALL = 1000
_COUNTS = frozenset({Metric.LABEL_COUNT, Metric.PREDICTION_COUNT, Metric.MONITOR_HEARTBEAT})


def _datum(metric: Metric, value: float, dims: dict[str, str], timestamp: datetime) -> dict[str, Any]:
    return {
        "MetricName": metric.value,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
        "Timestamp": timestamp,
        "Value": float(value),
        "Unit": "Count" if metric in _COUNTS else "None",
    }


def report_figures(report: VersionReport) -> list[tuple[Metric, float, dict[str, str]]]:
    """(metric, value, extra dimensions) for every figure this report knows."""
    perf, est = report.performance, report.estimate
    figures: list[tuple[Metric, float | None, dict[str, str]]] = [
        (Metric.PREDICTION_COUNT, report.prediction_count, {}),
        (Metric.LABEL_COUNT, report.labels.label_count, {}),
        (Metric.LABEL_COVERAGE, report.labels.label_coverage, {}),
        (Metric.TEST_METRIC, perf.test_value, {}),
        (Metric.PRODUCTION_METRIC, perf.value, {}),
        (Metric.METRIC_GAP, perf.metric_gap, {}),
        (Metric.ESTIMATED_METRIC, est.value, {}),
        (Metric.ESTIMATED_METRIC_GAP, est.estimated_gap, {}),
        (Metric.ESTIMATED_GAP_RATIO, est.gap_ratio, {}),
        (
            Metric.CONCEPT_SHIFT_SUSPECTED,
            None if report.concept_shift is None else float(report.concept_shift.suspected),
            {},
        ),
        (Metric.PREDICTION_DRIFT, report.prediction_drift.psi if report.prediction_drift else None, {}),
        (Metric.FAIRNESS_GAP, report.fairness.gap if report.fairness else None, {}),
    ]
    if report.drift is not None and report.drift.drift_share is not None:
        figures.append((Metric.DRIFT_SHARE, report.drift.drift_share, {}))
        figures.append((Metric.DATASET_DRIFT, 1.0 if report.drift.dataset_drift else 0.0, {}))
        figures.append((Metric.FEATURE_DRIFT_MAX, report.drift.largest_drift, {}))
        for f in report.drift.features:
            if f.tested and f.psi is not None:
                figures.append((Metric.FEATURE_DRIFT, f.psi, {DIM_FEATURE: f.feature}))
    sig = report.significance
    if sig is not None and sig.published:
        figures.append((Metric.METRIC_GAP_Z, sig.z, {}))
    return [(m, float(v), d) for m, v, d in figures if v is not None]


def metric_datums(
    reports: Sequence[VersionReport], model_name: str, timestamp: datetime
) -> list[dict[str, Any]]:
    """Datums of every report, plus the heartbeat (published even when no version had traffic)."""
    datums = [_datum(Metric.MONITOR_HEARTBEAT, 1.0, {DIM_MODEL: model_name}, timestamp)]
    for report in reports:
        for metric, value, extra in report_figures(report):
            datums.append(
                _datum(
                    metric,
                    value,
                    {DIM_MODEL: model_name, DIM_VERSION: str(report.version), **extra},
                    timestamp,
                )
            )
            if report.champion:
                datums.append(_datum(metric, value, {DIM_MODEL: model_name, **extra}, timestamp))
    return datums


def put_metrics(cloudwatch: Any, datums: Sequence[dict[str, Any]]) -> int:
    """Send datums in calls of at most MAX_DATUMS_PER_CALL; returns the number of calls."""
    calls = 0
    for start in range(0, len(datums), MAX_DATUMS_PER_CALL):
        with aws_call(f"put {NAMESPACE} metrics"):
            cloudwatch.put_metric_data(
                Namespace=NAMESPACE, MetricData=list(datums[start : start + MAX_DATUMS_PER_CALL])
            )
        calls += 1
    return calls
