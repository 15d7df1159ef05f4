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

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlops import bundle
from mlops.alarms import DIM_MODEL, DIM_VERSION, Metric, alarm_specs
from mlops.config import MonitorSettings
from mlops.logstore import (
    FirstSeen,
    RegressionPredictionRecord,
    iter_feedback,
    latest_values,
    prediction_objects,
    report_prefix,
)
from mlops.monitoring.drift import DatasetDrift, DriftPolicy, PredictionDrift, dataset_drift, prediction_drift
from mlops.monitoring.publish import _datum, put_metrics
from mlops.monitoring.report import AlarmCheck
from mlops.monitoring.run import MonitorResult, versions_with_traffic
from mlops.profile import numeric_histogram, profile_columns
from mlops.registry import Registry, VersionRecord
from mlops.regression.metrics import (
    MetricInterval,
    group_error_gap,
    group_error_metrics,
    lower_is_better,
    metric_interval,
)
from mlops.regression.profile import RegressionProfile, read_regression_profile
from mlops.regression.uncertainty import (
    LabelledLossSums,
    LossSums,
    RegressionConceptShift,
    concept_shift_check,
    estimate_metric,
)
from mlops.spec import ModelSpec, spec_from_json
from mlops.storage import get_bytes, iso, parse_time, put_bytes, read_jsonl_gz, utcnow

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
    prediction_count: int
    label_count: int
    drift: DatasetDrift | None
    prediction_drift: PredictionDrift
    target_drift: PredictionDrift
    performance: Performance
    estimate: Estimate
    concept_shift: RegressionConceptShift | None = None
    fairness: GroupErrors | None
    residual_mean: float | None
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
            "version": self.version,
            "champion": self.champion,
            "task": self.task,
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
    """A window's predictions of one version, as columns."""

    ids: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    columns: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, records: Sequence[RegressionPredictionRecord], features: Sequence[str]) -> None:
        for r in records:
            self.ids.append(r.prediction_id)
            self.values.append(r.value)
            for name in features:
                self.columns.setdefault(name, []).append(r.features.get(name))


def read_window(
    s3: Any, bucket: str, version: int, start: datetime, end: datetime, features: Sequence[str]
) -> Window:
    """The window's predictions, each prediction id once (`FirstSeen`)."""
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
        window.add([r for r in rows if lo <= iso(parse_time(r.timestamp)) < hi], features)
    return window


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


def _estimate(spec: ModelSpec, profile: RegressionProfile, window: Window) -> Estimate:
    metric = spec.primary_metric.value
    predicted = np.asarray(window.values, dtype=np.float64)
    if predicted.size < spec.monitoring.min_feature_count:
        return Estimate(metric=metric, value=None, reference=None, gap=None, gap_ratio=None)
    estimated = estimate_metric(
        LossSums.of(profile.loss_model, window.columns, predicted), profile.loss_model, metric
    )
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


def evaluate_window(
    spec: ModelSpec,
    profile: RegressionProfile,
    window: Window,
    truths: dict[str, float],
    *,
    version: int,
    champion: bool,
    run_id: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> RegressionReport:
    """Every statistic of one version's window (no I/O)."""
    policy = DriftPolicy.from_spec(spec.monitoring)
    predicted = np.asarray(window.values, dtype=np.float64)
    current = profile_columns(window.columns, profile.features.edges(), spec.categorical_features)
    drift = (
        dataset_drift(
            profile.features, current, policy, profile.seen_categories, spec.monitoring.feature_weights
        )
        if predicted.size
        else None
    )
    labelled = np.array([i for i, pid in enumerate(window.ids) if pid in truths], dtype=np.int64)
    y = np.array([truths[window.ids[i]] for i in labelled], dtype=np.float64)
    p = predicted[labelled] if labelled.size else np.zeros(0)
    fairness = None
    if spec.sensitive_attributes and y.size >= spec.monitoring.min_labels:
        groups = group_error_metrics(
            {a: [window.columns[a][i] for i in labelled] for a in spec.sensitive_attributes},
            y,
            p,
            min_group_size=max(10, spec.monitoring.min_labels // 10),
        )
        mae = float(np.mean(np.abs(y - p)))
        gaps = [g for per in groups.values() if (g := group_error_gap(per, "mae")) is not None]
        fairness = GroupErrors(groups=groups, gap=max(gaps) / mae if gaps and mae > 0 else None)
    report = RegressionReport(
        model_name=spec.name,
        version=version,
        champion=champion,
        run_id=run_id,
        generated_at=iso(now),
        window_start=iso(start),
        window_end=iso(end),
        prediction_count=int(predicted.size),
        label_count=int(y.size),
        drift=drift,
        prediction_drift=prediction_drift(
            profile.predictions, numeric_histogram(predicted, profile.predictions.edges), policy
        ),
        target_drift=prediction_drift(
            profile.training_targets, numeric_histogram(y, profile.training_targets.edges), policy
        ),
        performance=_performance(spec, profile, y, p),
        estimate=_estimate(spec, profile, window),
        concept_shift=concept_shift_check(
            LabelledLossSums.of(
                profile.loss_model, {c: [v[i] for i in labelled] for c, v in window.columns.items()}, p, y
            ),
            profile.loss_model,
            spec.primary_metric.value,
            spec.monitoring.min_labels,
        ),
        fairness=fairness,
        residual_mean=float(np.mean(y - p)) if y.size else None,
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
    truths = latest_values(
        iter_feedback(s3, settings.log_bucket, start, max(end, now) + timedelta(microseconds=1))
    )
    for version in selected:
        version_spec, profile = reference(version)
        window_rows = read_window(s3, settings.log_bucket, version, start, end, version_spec.feature_names)
        report = evaluate_window(
            version_spec,
            profile,
            window_rows,
            truths,
            version=version,
            champion=version == champion_version,
            run_id=run_id,
            start=start,
            end=end,
            now=now,
        )
        prefix = report_prefix(version, end, run_id)
        report = report.model_copy(update={"report_key": prefix + "report.json"})
        put_bytes(
            s3,
            settings.report_bucket,
            prefix + "report.json",
            report.model_dump_json(indent=1).encode(),
            "application/json",
        )
        result.report_keys[version] = prefix
        result.regression_reports.append(report)
    sent = datums(result.regression_reports, settings.model_name, now)
    result.metric_calls = put_metrics(cloudwatch, sent)
    result.datums = len(sent)
    return result
