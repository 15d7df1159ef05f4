"""A monitor run of a regression model: drift of inputs, predictions and targets, the production
error against the reference with intervals, a label-free estimate, and error gaps between groups.

The classification monitor (`mlops.monitoring.run`) hands regression models here. Figures go to
CloudWatch under the same metric names and dimensions, so the same alarms watch both tasks;
what a figure means for regression:

- MetricGap: the production error's increase over the reference as a share of the reference
  (for r2: the absolute drop), alarmed above `regression.max_error_increase`.
- EstimatedMetricGap / EstimatedGapRatio: the label-free estimate's gap (as MetricGap), and that
  over `regression.max_error_increase`; the estimate carries an interval (`mlops.regression.uncertainty`).
- ConceptShiftSuspected: 1 when the labelled rows' errors differ significantly from what the loss
  model expects of the same rows (published from `monitoring.min_labels` labels on).
- PredictionDrift: PSI of the predicted values against the held-out predictions.
- FairnessGap: the largest gap in mean absolute error between groups, as a share of the MAE.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlops.cloud.logstore import (
    FirstSeen,
    RegressionPredictionRecord,
    prediction_objects,
)
from mlops.cloud.registry import Registry, VersionRecord
from mlops.cloud.storage import get_bytes, iso, parse_time, read_jsonl_gz, utcnow
from mlops.model import bundle
from mlops.model.spec import ModelSpec, spec_from_json
from mlops.monitoring.drift import DatasetDrift, DriftPolicy, PredictionDrift, dataset_drift, prediction_drift
from mlops.monitoring.labels import FeedbackReads
from mlops.monitoring.partials import PartialStore
from mlops.monitoring.profile import numeric_histogram
from mlops.monitoring.publish import _datum, put_metrics
from mlops.monitoring.report import AlarmCheck
from mlops.monitoring.run import MonitorResult, _status, record_history, versions_with_traffic, write_report
from mlops.regression.metrics import (
    MetricInterval,
    group_error_gap,
    lower_is_better,
    metric_interval,
)
from mlops.regression.partials import (
    RegressionWindow,
    ValueRows,
    profile_values,
    regression_window_from_partials,
)
from mlops.regression.profile import RegressionProfile, read_regression_profile
from mlops.regression.truths import window_truths
from mlops.regression.uncertainty import (
    LabelledLossSums,
    RegressionConceptShift,
    concept_shift_check,
    estimate_metric,
)
from mlops.shared.alarm_specs import DIM_MODEL, DIM_VERSION, Metric, alarm_specs
from mlops.shared.settings import MonitorSettings

REGRESSION_METRICS = frozenset({"rmse", "mae", "r2"})
_NORMAL = NormalDist()


def is_regression(record: VersionRecord) -> bool:
    """A version is a regression one when its primary metric is (the spec allows no other)."""
    return record.primary_metric in REGRESSION_METRICS


def metric_gap(metric: str, production: float, reference: float) -> float:
    """How much worse production is: the relative error increase, or the absolute drop of r2."""
    if lower_is_better(metric):
        return (production - reference) / reference if reference > 0 else float("inf")
    return reference - production


class Performance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    min_labels: int
    production: MetricInterval | None
    reference: MetricInterval
    # Worse-is-positive gap (see `metric_gap`), its limit, and the one-sided p-value of "worse".
    gap: float | None
    max_gap: float
    p_value: float | None
    breached: bool | None


class Estimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    value: float | None
    reference: float | None
    gap: float | None
    gap_ratio: float | None
    standard_error: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


class GroupErrors(BaseModel):
    model_config = ConfigDict(extra="forbid")

    groups: dict[str, dict[str, dict[str, float | int | None]]]
    # Largest MAE gap between groups of one attribute, as a share of the window's MAE.
    gap: float | None


class HourlyErrors(BaseModel):
    """The labelled errors of one hour partition of the window."""

    model_config = ConfigDict(extra="forbid")

    hour: str
    predictions: int
    labels: int
    rmse: float | None
    mae: float | None
    mean_error: float | None
    r2: float | None


class RegressionReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = "regression"
    model_name: str
    version: int
    champion: bool
    run_id: str
    generated_at: str
    window_start: str
    window_end: str
    status: str = ""
    prediction_count: int
    label_count: int
    drift: DatasetDrift | None
    prediction_drift: PredictionDrift
    target_drift: PredictionDrift
    # Labelled residuals (true - predicted) against the held-out rows' residuals.
    residual_drift: PredictionDrift | None = None
    performance: Performance
    estimate: Estimate
    concept_shift: RegressionConceptShift | None = None
    fairness: GroupErrors | None
    residual_mean: float | None
    hourly: list[HourlyErrors] = Field(default_factory=list)
    test_metrics: dict[str, float | None] = Field(default_factory=dict)
    alarms: list[AlarmCheck]
    report_key: str | None = None

    def figures(self) -> list[tuple[Metric, float]]:
        perf, est = self.performance, self.estimate
        values: list[tuple[Metric, float | None]] = [
            (Metric.PREDICTION_COUNT, self.prediction_count),
            (Metric.LABEL_COUNT, self.label_count),
            (
                Metric.LABEL_COVERAGE,
                self.label_count / self.prediction_count if self.prediction_count else None,
            ),
            (Metric.TEST_METRIC, perf.reference.value),
            (Metric.PRODUCTION_METRIC, perf.production.value if perf.production else None),
            (Metric.METRIC_GAP, perf.gap),
            (Metric.ESTIMATED_METRIC, est.value),
            (Metric.ESTIMATED_METRIC_GAP, est.gap),
            (Metric.ESTIMATED_GAP_RATIO, est.gap_ratio),
            (
                Metric.CONCEPT_SHIFT_SUSPECTED,
                None if self.concept_shift is None else float(self.concept_shift.suspected),
            ),
            (Metric.PREDICTION_DRIFT, self.prediction_drift.psi),
            (Metric.FAIRNESS_GAP, self.fairness.gap if self.fairness else None),
        ]
        if self.drift is not None and self.drift.drift_share is not None:
            values.append((Metric.DRIFT_SHARE, self.drift.drift_share))
        return [(m, float(v)) for m, v in values if v is not None and np.isfinite(v)]

    def summary(self) -> dict[str, Any]:
        perf = self.performance
        return {
            "model_name": self.model_name,
            "version": self.version,
            "champion": self.champion,
            "task": self.task,
            "generated_at": self.generated_at,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "status": self.status,
            "prediction_count": self.prediction_count,
            "label_count": self.label_count,
            "primary_metric": perf.metric,
            "production_metric": perf.production.value if perf.production else None,
            "test_metric": perf.reference.value,
            "metric_gap": perf.gap,
            "estimated_metric": self.estimate.value,
            "concept_shift_suspected": self.concept_shift.suspected if self.concept_shift else None,
            "prediction_psi": self.prediction_drift.psi,
            "target_psi": self.target_drift.psi,
            "drift_share": self.drift.drift_share if self.drift else None,
            "breached": [a.alarm for a in self.alarms if a.breached],
            "report_key": self.report_key,
        }


@dataclass
class Window:
    """A window's predictions of one version, as columns, with the hour partition each came from."""

    ids: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    columns: dict[str, list[Any]] = field(default_factory=dict)
    hours: list[str] = field(default_factory=list)

    def add(self, records: Sequence[RegressionPredictionRecord], features: Sequence[str], hour: str) -> None:
        for r in records:
            self.ids.append(r.prediction_id)
            self.values.append(r.value)
            self.hours.append(hour)
            for name in features:
                self.columns.setdefault(name, []).append(r.features.get(name))


def _partition_hour(key: str) -> str:
    """The hour of a log object's partition (``.../dt=YYYY-MM-DD/hour=HH/<name>``), as a timestamp."""
    day, hour = key.rsplit("/", 3)[1:3]
    return iso(datetime.strptime(day[3:] + hour[5:], "%Y-%m-%d%H").replace(tzinfo=UTC))


def read_window(
    s3: Any, bucket: str, version: int, start: datetime, end: datetime, features: Sequence[str]
) -> Window:
    """The whole window's predictions in memory, each prediction id once (`FirstSeen`).

    Monitor runs read stored hour partials instead (`regression_window_from_partials`); this
    from-scratch read is what they are checked against.
    """
    window = Window(columns={name: [] for name in features})
    lo, hi = iso(start), iso(end)
    first = FirstSeen()
    for key in prediction_objects(s3, bucket, version, start, end):
        rows = [
            RegressionPredictionRecord.model_validate(r) for r in read_jsonl_gz(get_bytes(s3, bucket, key))
        ]
        keep = first.keep(key, [r.prediction_id for r in rows])
        if keep is not None:
            rows = [r for r, k in zip(rows, keep, strict=True) if k]
        window.add(
            [r for r in rows if lo <= iso(parse_time(r.timestamp)) < hi], features, _partition_hour(key)
        )
    return window


def window_in_memory(
    spec: ModelSpec, profile: RegressionProfile, window: Window, truths: Mapping[str, float]
) -> RegressionWindow:
    """A whole in-memory window summarised at once, with labels joined hour by hour as the partials are."""
    predicted = np.asarray(window.values, dtype=np.float64)
    out = RegressionWindow(label_groups={a: [] for a in spec.sensitive_attributes})
    profiled = profile_values(spec, profile, window.columns, predicted)
    out.add_profile(predicted.size, profiled.features, profiled.predictions, profiled.expected_losses)
    by_hour: dict[str, list[int]] = {}
    for i, hour in enumerate(window.hours):
        by_hour.setdefault(hour, []).append(i)
    for hour, idx in sorted(by_hour.items()):
        rows = ValueRows(
            prediction_ids=[window.ids[i] for i in idx],
            values=[window.values[i] for i in idx],
            expected_absolute=[float(profiled.expected_absolute[i]) for i in idx],
            expected_squared=[float(profiled.expected_squared[i]) for i in idx],
            groups={a: [window.columns[a][i] for i in idx] for a in spec.sensitive_attributes},
        )
        out.join_labels(hour, rows, truths)
    return out


def _performance(spec: ModelSpec, profile: RegressionProfile, y: np.ndarray, p: np.ndarray) -> Performance:
    metric = spec.primary_metric.value
    reference = profile.reference_metric
    limit = spec.regression_settings.max_error_increase
    if y.size < spec.monitoring.min_labels or reference.value is None:
        return Performance(
            metric=metric,
            min_labels=spec.monitoring.min_labels,
            production=None,
            reference=reference,
            gap=None,
            max_gap=limit,
            p_value=None,
            breached=None,
        )
    production = metric_interval(y, p, metric, seed=spec.split.seed, source="labelled production rows")
    gap = metric_gap(metric, production.value or 0.0, reference.value)
    p_value = None
    if production.standard_error is not None and reference.standard_error is not None:
        worse = (production.value or 0.0) - reference.value
        worse = worse if lower_is_better(metric) else -worse
        se = float(np.hypot(production.standard_error, reference.standard_error))
        p_value = 1.0 - _NORMAL.cdf(worse / se) if se > 0 else None
    return Performance(
        metric=metric,
        min_labels=spec.monitoring.min_labels,
        production=production,
        reference=reference,
        gap=gap,
        max_gap=limit,
        p_value=p_value,
        breached=gap > limit,
    )


def _estimate(spec: ModelSpec, profile: RegressionProfile, window: RegressionWindow) -> Estimate:
    metric = spec.primary_metric.value
    if window.rows < spec.monitoring.min_feature_count:
        return Estimate(metric=metric, value=None, reference=None, gap=None, gap_ratio=None)
    # The window's stored sums of expected losses, as `LossSums.of` gives them over its rows.
    estimated = estimate_metric(window.expected_losses, profile.loss_model, metric)
    interval = {
        "standard_error": estimated.standard_error,
        "ci_low": estimated.ci_low,
        "ci_high": estimated.ci_high,
    }
    reference = profile.test_metrics.get(metric)
    if estimated.value is None or reference is None or (lower_is_better(metric) and not reference):
        return Estimate(
            metric=metric, value=estimated.value, reference=reference, gap=None, gap_ratio=None, **interval
        )
    gap = metric_gap(metric, estimated.value, reference)
    return Estimate(
        metric=metric,
        value=estimated.value,
        reference=reference,
        gap=gap,
        gap_ratio=gap / spec.regression_settings.max_error_increase,
        **interval,
    )


def _fairness(spec: ModelSpec, window: RegressionWindow) -> GroupErrors | None:
    """Errors per group from the window's merged group sums; the gap is the largest MAE gap / MAE."""
    if not spec.sensitive_attributes or window.errors.n < spec.monitoring.min_labels:
        return None
    min_group_size = max(10, spec.monitoring.min_labels // 10)
    groups: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for attribute in spec.sensitive_attributes:
        per: dict[str, dict[str, float | int | None]] = {}
        for group, sums in sorted(window.group_errors.get(attribute, {}).items()):
            if sums.n >= min_group_size:
                m = sums.metrics()
                per[group] = {"n": sums.n, "mae": m["mae"], "rmse": m["rmse"], "mean_error": m["mean_error"]}
        groups[attribute] = per
    mae = window.errors.metrics()["mae"] or 0.0
    gaps = [g for per in groups.values() if (g := group_error_gap(per, "mae")) is not None]
    return GroupErrors(groups=groups, gap=max(gaps) / mae if gaps and mae > 0 else None)


def evaluate_window(
    spec: ModelSpec,
    profile: RegressionProfile,
    window: RegressionWindow,
    *,
    version: int,
    champion: bool,
    run_id: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> RegressionReport:
    """Every statistic of one version's window, from its merged counts and labelled rows (no I/O)."""
    policy = DriftPolicy.from_spec(spec.monitoring)
    drift = (
        dataset_drift(
            profile.features,
            window.features,
            policy,
            profile.seen_categories,
            spec.monitoring.feature_weights,
        )
        if window.rows and window.features is not None
        else None
    )
    y, p, _ = window.labelled()
    predictions = window.predictions or numeric_histogram(np.zeros(0), profile.predictions.edges)
    errors = window.errors.metrics()
    report = RegressionReport(
        model_name=spec.name,
        version=version,
        champion=champion,
        run_id=run_id,
        generated_at=iso(now),
        window_start=iso(start),
        window_end=iso(end),
        status=_status(window.rows, int(y.size), spec.monitoring.min_labels),
        prediction_count=window.rows,
        label_count=int(y.size),
        drift=drift,
        prediction_drift=prediction_drift(profile.predictions, predictions, policy),
        target_drift=prediction_drift(
            profile.training_targets, numeric_histogram(y, profile.training_targets.edges), policy
        ),
        residual_drift=prediction_drift(
            profile.residuals, numeric_histogram(y - p, profile.residuals.edges), policy
        ),
        performance=_performance(spec, profile, y, p),
        estimate=_estimate(spec, profile, window),
        concept_shift=concept_shift_check(
            LabelledLossSums.from_losses(
                np.asarray(window.label_expected_absolute, dtype=np.float64),
                np.asarray(window.label_expected_squared, dtype=np.float64),
                p,
                y,
            ),
            profile.loss_model,
            spec.primary_metric.value,
            spec.monitoring.min_labels,
        ),
        fairness=_fairness(spec, window),
        residual_mean=errors["mean_error"],
        hourly=[
            HourlyErrors(hour=h.hour, predictions=h.rows, labels=h.errors.n, **h.errors.metrics())
            for h in window.hours
        ],
        test_metrics=dict(profile.test_metrics),
        alarms=[],
    )
    values = dict(report.figures())
    checks = [
        AlarmCheck(
            alarm=a.name,
            metric=a.metric.value,
            value=values.get(a.metric),
            threshold=a.threshold,
            breached=None if values.get(a.metric) is None else a.breaches(values[a.metric]),
            severity=a.severity.value,
        )
        for a in alarm_specs(spec)
        if a.metric is not Metric.MONITOR_HEARTBEAT
    ]
    return report.model_copy(update={"alarms": checks})


@dataclass
class RegressionMonitorResult(MonitorResult):
    regression_reports: list[RegressionReport] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return super().summary() | {"versions": [r.summary() for r in self.regression_reports]}


def datums(reports: Sequence[RegressionReport], model_name: str, now: datetime) -> list[dict[str, Any]]:
    out = [_datum(Metric.MONITOR_HEARTBEAT, 1.0, {DIM_MODEL: model_name}, now)]
    for report in reports:
        for metric, value in report.figures():
            out.append(_datum(metric, value, {DIM_MODEL: model_name, DIM_VERSION: str(report.version)}, now))
            if report.champion:
                out.append(_datum(metric, value, {DIM_MODEL: model_name}, now))
    return out


def run_regression_monitor(
    s3: Any,
    cloudwatch: Any,
    registry: Registry,
    settings: MonitorSettings,
    *,
    champion_version: int,
    window_end: datetime | None = None,
    window: timedelta | None = None,
    versions: Sequence[int] | None = None,
    now: datetime | None = None,
    run_id: str | None = None,
) -> RegressionMonitorResult:
    """Monitor the champion (and any version with traffic) of a regression model; see `run_monitor`."""
    now = now or utcnow()
    end = window_end or now
    run_id = run_id or f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    references: dict[int, tuple[ModelSpec, RegressionProfile]] = {}

    def reference(version: int) -> tuple[ModelSpec, RegressionProfile]:
        if version not in references:
            record = registry.get_version(version)
            read = lambda name: bundle.read_artifact(s3, settings.artifact_bucket, record.artifacts[name])  # noqa: E731
            references[version] = (
                spec_from_json(read(bundle.SPEC).decode()),
                read_regression_profile(read(bundle.PROFILE), f"reference profile of version {version}"),
            )
        return references[version]

    spec, _ = reference(champion_version)
    start = end - (window or timedelta(hours=spec.monitoring.window_hours))
    result = RegressionMonitorResult(
        run_id=run_id,
        model_name=settings.model_name,
        window_start=start,
        window_end=end,
        champion=champion_version,
    )
    selected = sorted(
        set(versions if versions is not None else versions_with_traffic(s3, settings.log_bucket, start, end))
        | ({champion_version} if versions is None else set())
    )
    feedback_reads = FeedbackReads()
    truths = window_truths(
        s3, settings.log_bucket, settings.report_bucket, start, max(end, now), feedback_reads
    )
    result.reads.feedback_gets += feedback_reads.gets
    result.reads.feedback_bytes += feedback_reads.bytes
    store_at = PartialStore(s3, settings.log_bucket, settings.report_bucket)
    for version in selected:
        version_spec, profile = reference(version)
        window_rows = regression_window_from_partials(
            store_at, version_spec, profile, version, start, end, truths, stats=result.reads
        )
        report = evaluate_window(
            version_spec,
            profile,
            window_rows,
            version=version,
            champion=version == champion_version,
            run_id=run_id,
            start=start,
            end=end,
            now=now,
        )
        prefix = write_regression_report(s3, settings.report_bucket, report, end, version_spec)
        result.report_keys[version] = prefix
        result.max_metric_gaps[version] = version_spec.regression_settings.max_error_increase
        result.regression_reports.append(report.model_copy(update={"report_key": prefix + "report.json"}))
    sent = datums(result.regression_reports, settings.model_name, now)
    result.metric_calls = put_metrics(cloudwatch, sent)
    result.datums = len(sent)
    if result.regression_reports:
        from mlops.regression.report import regression_history_run

        rows = [
            regression_history_run(
                r, result.max_metric_gaps[r.version], result.report_keys[r.version] + "report.html"
            )
            for r in result.regression_reports
        ]
        result.history_key = record_history(
            s3, settings.report_bucket, registry, result.model_name, rows, now
        )
    return result


def write_regression_report(
    s3: Any, bucket: str, report: RegressionReport, window_end: datetime, spec: ModelSpec
) -> str:
    """report.json and report.html under the run's prefix, and the version's latest summary."""
    from mlops.regression.report import render_regression_html

    render = functools.partial(render_regression_html, max_gap=spec.regression_settings.max_error_increase)
    return write_report(s3, bucket, report, window_end, render)
