"""A monitor run: every version with traffic in the window -> statistics, metrics, reports.

Called by the scheduled Lambda, `mlops monitor run`, the local runtime and retraining.
A window is the merge of stored per-hour profiles (`mlops.monitoring.partials`): a run reads
only the hour partitions whose log objects changed since they were profiled.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, Self, TypeVar

import numpy as np

from mlops.cloud.logstore import (
    FeedbackRecord,
    FirstSeen,
    has_predictions,
    late_hours_since,
    latest_report_key,
    model_versions_logged,
    prediction_objects,
    report_prefix,
)
from mlops.cloud.registry import Registry, VersionRecord
from mlops.cloud.storage import get_bytes, iso, parse_time, put_bytes, utcnow
from mlops.model import bundle
from mlops.model.spec import ModelSpec, spec_from_json
from mlops.monitoring.drift import DriftPolicy, dataset_drift, prediction_drift
from mlops.monitoring.engine import scan_engine
from mlops.monitoring.history import HistoryRun, Promotion, history_run, update_history
from mlops.monitoring.labels import (
    LANDING_MARGIN,
    FeedbackReads,
    Label,
    advanced,
    labels_of,
    new_feedback,
    read_label_state,
    unique_feedback,
    write_label_state,
)
from mlops.monitoring.lease import release_lease, take_lease
from mlops.monitoring.partials import PartialStore, ReadStats, describe
from mlops.monitoring.performance import (
    concept_shift_check,
    estimate_performance,
    fairness,
    production_performance,
)
from mlops.monitoring.profile import ReferenceProfile, read_reference_profile
from mlops.monitoring.publish import metric_datums, put_metrics, report_figures
from mlops.monitoring.report import AlarmCheck, LabelStats, VersionReport, render_html
from mlops.monitoring.rollup import window_from_rollups
from mlops.monitoring.significance import gap_significance
from mlops.monitoring.window import PredictionBatch, WindowAccumulator, parse_prediction_log
from mlops.shared.alarm_specs import Metric, alarm_specs
from mlops.shared.collector import collections_deferred
from mlops.shared.errors import NotFoundError
from mlops.shared.observability import logger
from mlops.shared.settings import MonitorSettings


@dataclass(frozen=True)
class VersionReference:
    """What a version is compared against: its registry record, spec and reference profile."""

    record: VersionRecord
    spec: ModelSpec
    profile: ReferenceProfile


# Reference profiles are immutable per version: cache them for the life of the container,
# keyed by the artifact's hash so a (never expected) rewrite is not served stale.
_REFERENCES: dict[tuple[str, str, int, str], VersionReference] = {}


def load_reference(registry: Registry, s3: Any, artifact_bucket: str, version: int) -> VersionReference:
    record = registry.get_version(version)
    profile_ref = record.artifacts[bundle.PROFILE]
    key = (artifact_bucket, record.model_name, version, profile_ref.sha256)
    cached = _REFERENCES.get(key)
    if cached is not None:
        return cached
    profile = read_reference_profile(
        bundle.read_artifact(s3, artifact_bucket, profile_ref), f"reference profile of version {version}"
    )
    spec = spec_from_json(bundle.read_artifact(s3, artifact_bucket, record.artifacts[bundle.SPEC]).decode())
    reference = VersionReference(record=record, spec=spec, profile=profile)
    _REFERENCES[key] = reference
    return reference


def iter_prediction_batches(
    s3: Any,
    bucket: str,
    version: int,
    start: datetime,
    end: datetime,
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> Iterator[PredictionBatch]:
    """The window's predictions of one version as column batches, one S3 object at a time.

    A prediction SQS delivered twice is counted once (`FirstSeen`).
    """
    lo, hi = iso(start), iso(end)
    first = FirstSeen()
    for key in prediction_objects(s3, bucket, version, start, end):
        batch = parse_prediction_log(get_bytes(s3, bucket, key), numeric, categorical, lo, hi)
        keep = first.keep(key, batch.prediction_ids)
        yield batch if keep is None else batch.take(np.array(keep, dtype=bool))


def accumulate(
    reference: VersionReference, batches: Iterable[PredictionBatch], labels: Mapping[str, int]
) -> WindowAccumulator:
    acc = WindowAccumulator(reference.profile, reference.spec.sensitive_attributes)
    for batch in batches:
        acc.add(batch, labels)
    return acc


def _status(prediction_count: int, label_count: int, min_labels: int) -> str:
    if prediction_count == 0:
        return "empty window: no predictions"
    if label_count == 0:
        return "no labels yet"
    if label_count < min_labels:
        return f"too few labels ({label_count} of {min_labels})"
    return "ok"


def evaluate(
    acc: WindowAccumulator,
    reference: VersionReference,
    *,
    champion: bool,
    run_id: str,
    window_start: datetime,
    window_end: datetime,
    generated_at: datetime,
    feedback_received: int = 0,
    unmatched_feedback: int = 0,
    bootstrap_resamples: int = 200,
) -> VersionReport:
    """Every statistic of one version's window, from its accumulated counts (no I/O)."""
    spec, ref = reference.spec, reference.profile
    mon = spec.monitoring
    policy = DriftPolicy.from_spec(mon)
    primary = spec.primary_metric.value
    p, y, groups = acc.labelled.arrays()
    # An empty window has no distribution to compare: "no data", not a statistic of nothing.
    drift = (
        dataset_drift(ref.features, acc.dataset_profile(), policy, ref.seen_categories, mon.feature_weights)
        if acc.rows
        else None
    )
    pred_drift = prediction_drift(ref.scores, acc.score_histogram(), policy)
    perf = production_performance(y, p, primary, ref.test_metrics, mon.min_labels, bootstrap_resamples)
    estimate = estimate_performance(
        acc.score_grid,
        primary,
        ref.test_metrics,
        policy.min_count,
        ref.estimation,
        mon.max_estimated_metric_gap,
    )
    concept = concept_shift_check(y, p, perf, ref.estimation)
    fair = fairness(acc.selection, groups, y, p) if spec.sensitive_attributes else None
    significance = gap_significance(y, p, primary, ref.reference_metric, mon.significance_min_labels)
    labels = LabelStats(
        label_count=int(y.size),
        label_coverage=y.size / acc.rows if acc.rows else None,
        feedback_received=feedback_received,
        unmatched_feedback=unmatched_feedback,
    )
    report = VersionReport(
        model_name=spec.name,
        version=reference.record.version,
        champion=champion,
        run_id=run_id,
        generated_at=iso(generated_at),
        window_start=iso(window_start),
        window_end=iso(window_end),
        status=_status(acc.rows, int(y.size), mon.min_labels),
        prediction_count=acc.rows,
        labels=labels,
        drift=drift,
        prediction_drift=pred_drift,
        performance=perf,
        estimate=estimate,
        concept_shift=concept,
        fairness=fair,
        alarms=[],
        test_metrics=dict(ref.test_metrics),
        significance=significance,
    )
    return report.model_copy(update={"alarms": alarm_checks(report, spec)})


def alarm_checks(report: VersionReport, spec: ModelSpec) -> list[AlarmCheck]:
    """Each model-quality alarm spec applied to this run's value (one datapoint of its period)."""
    values = {m: v for m, v, dims in report_figures(report) if not dims}
    checks = []
    for alarm in alarm_specs(spec):
        if alarm.metric is Metric.MONITOR_HEARTBEAT:
            continue
        value = values.get(alarm.metric)
        checks.append(
            AlarmCheck(
                alarm=alarm.name,
                metric=alarm.metric.value,
                value=value,
                threshold=alarm.threshold,
                breached=None if value is None else alarm.breaches(value),
                severity=alarm.severity.value,
            )
        )
    return checks


@dataclass
class MonitorResult:
    run_id: str
    model_name: str
    window_start: datetime
    window_end: datetime
    champion: int | None
    reports: list[VersionReport] = field(default_factory=list)
    report_keys: dict[int, str] = field(default_factory=dict)
    max_metric_gaps: dict[int, float] = field(default_factory=dict)
    datums: int = 0
    metric_calls: int = 0
    history_key: str | None = None
    reads: ReadStats = field(default_factory=ReadStats)
    # Why nothing ran (another run held the lease), or None for a run that ran.
    skipped: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "outcome": "skipped" if self.skipped else "ran",
            **({"skipped": self.skipped} if self.skipped else {}),
            "model_name": self.model_name,
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "champion": self.champion,
            "metrics_published": self.datums,
            "history_key": self.history_key,
            "reads": describe(self.reads),
            "versions": [r.summary() for r in self.reports],
        }


def versions_with_traffic(s3: Any, log_bucket: str, start: datetime, end: datetime) -> list[int]:
    return [
        v for v in model_versions_logged(s3, log_bucket) if has_predictions(s3, log_bucket, v, start, end)
    ]


class StoredReport(Protocol):
    """What storing a run's report needs of it, whichever task's report it is."""

    @property
    def version(self) -> int: ...

    @property
    def run_id(self) -> str: ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...

    def model_dump_json(self, *, indent: int | None = None) -> str: ...

    def summary(self) -> dict[str, Any]: ...


ReportT = TypeVar("ReportT", bound=StoredReport)


def write_report(
    s3: Any, bucket: str, report: ReportT, window_end: datetime, render: Callable[[ReportT], str]
) -> str:
    """report.json and report.html under the run's prefix, and the version's latest summary."""
    prefix = report_prefix(report.version, window_end, report.run_id)
    report = report.model_copy(update={"report_key": prefix + "report.json"})
    put_bytes(
        s3, bucket, prefix + "report.json", report.model_dump_json(indent=1).encode(), "application/json"
    )
    put_bytes(s3, bucket, prefix + "report.html", render(report).encode(), "text/html; charset=utf-8")
    put_bytes(
        s3, bucket, latest_report_key(report.version), bundle.json_bytes(report.summary()), "application/json"
    )
    return prefix


def received_in(feedback: Iterable[FeedbackRecord], start: datetime, end: datetime) -> list[FeedbackRecord]:
    """Feedback received in [start, end]: a record counts in the window it arrived in.

    Feedback received before a window began cannot be about its predictions, and feedback
    received after it ended is counted by a later window, so the unmatched count of a window
    holds only ids that could have been this window's predictions and were not.
    """
    lo, hi = iso(start), iso(end)
    return [fb for fb in feedback if lo <= iso(parse_time(fb.received_at)) <= hi]


def record_history(
    s3: Any, bucket: str, registry: Registry, model_name: str, rows: Sequence[HistoryRun], now: datetime
) -> str:
    """Add this run's rows to the model's history and rewrite its page; returns the page's key."""
    promotions = [
        Promotion(at=h.at, action=h.action.value, from_version=h.from_version, to_version=h.to_version)
        for h in registry.history()
    ]
    return update_history(
        s3,
        bucket,
        model_name,
        lambda history: history.add(rows, iso(now)).model_copy(update={"promotions": promotions}),
    )[1]


def run_monitor(
    s3: Any,
    cloudwatch: Any,
    dynamodb: Any,
    settings: MonitorSettings,
    *,
    window_end: datetime | None = None,
    window: timedelta | None = None,
    versions: Sequence[int] | None = None,
    now: datetime | None = None,
    run_id: str | None = None,
    athena: Any = None,
) -> MonitorResult:
    """Monitor every version with traffic in ``[window_end - window, window_end)`` (the champion always).

    ``now`` stamps the metrics and the report (the local runtime runs a faster clock);
    ``window`` defaults to the champion spec's ``monitoring.window_hours``. Feedback
    received up to ``now`` counts, so re-running a window picks up late labels. ``athena`` is the
    client of the Athena scan engine (only when ``settings.scan_engine`` is "athena").
    """
    now = now or utcnow()
    end = window_end or now
    run_id = run_id or f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    busy = take_lease(s3, settings.report_bucket, run_id)
    if busy is not None:
        logger.warning("monitor run skipped", extra={"run_id": run_id, "reason": busy})
        start = end - window if window is not None else end
        return MonitorResult(run_id, settings.model_name, start, end, champion=None, skipped=busy)
    try:
        with collections_deferred():
            return _run_monitor(
                s3, cloudwatch, dynamodb, settings, end, window, versions, now, run_id, athena
            )
    finally:
        release_lease(s3, settings.report_bucket, run_id)


def _run_monitor(
    s3: Any,
    cloudwatch: Any,
    dynamodb: Any,
    settings: MonitorSettings,
    end: datetime,
    window: timedelta | None,
    versions: Sequence[int] | None,
    now: datetime,
    run_id: str,
    athena: Any,
) -> MonitorResult:
    registry = Registry(dynamodb, settings.registry_table, settings.model_name)
    champion = registry.champion()
    if champion is not None:
        from mlops.regression.monitoring import is_regression, run_regression_monitor

        if is_regression(registry.get_version(champion.version)):
            return run_regression_monitor(
                s3,
                cloudwatch,
                registry,
                settings,
                champion_version=champion.version,
                window_end=end,
                window=window,
                versions=versions,
                now=now,
                run_id=run_id,
            )
    champion_ref = (
        load_reference(registry, s3, settings.artifact_bucket, champion.version)
        if champion is not None
        else None
    )
    span = window or timedelta(hours=champion_ref.spec.monitoring.window_hours if champion_ref else 24)
    start = end - span
    result = MonitorResult(
        run_id=run_id,
        model_name=settings.model_name,
        window_start=start,
        window_end=end,
        champion=champion.version if champion else None,
    )
    if versions is not None:
        selected = sorted(set(versions))
    else:
        selected = sorted(set(versions_with_traffic(s3, settings.log_bucket, start, end)))
        if champion is not None and champion.version not in selected:
            selected.append(champion.version)
    # Labels: the feedback that arrived since the last run, and the labels still waiting for a prediction.
    state, state_etag = read_label_state(s3, settings.report_bucket)
    feedback_reads = FeedbackReads()
    records: list[FeedbackRecord] = []
    seen: list[str] = list(state.seen)
    if selected:
        records, seen = new_feedback(s3, settings.log_bucket, state, start, now, feedback_reads)
    # Hours that late log objects were written to since the last run (markers stamped just before it
    # can land just after it, as feedback can). Before a first run, every hour is listed.
    late: set[tuple[int, datetime]] | None = None
    if selected and state.read_until is not None:
        late = late_hours_since(s3, settings.log_bucket, parse_time(state.read_until) - LANDING_MARGIN)
    # Copies of what an earlier run read (a message SQS delivered twice) wait and count once.
    pending = state.pending_labels()
    records = unique_feedback(records, pending)
    waiting: list[Label] = [*pending, *labels_of(records)]
    labels: dict[str, list[Label]] = {}
    for label in waiting:
        labels.setdefault(label.prediction_id, []).append(label)
    arrived = {r.prediction_id for r in records}
    matched_stored: set[str] = set()
    held_already: set[Label] = set()
    received_matched = 0
    accumulated: list[tuple[VersionReference, WindowAccumulator]] = []
    for version in selected:
        try:
            reference = (
                champion_ref
                if champion_ref is not None and champion_ref.record.version == version
                else load_reference(registry, s3, settings.artifact_bucket, version)
            )
        except NotFoundError:
            logger.warning("logs of a version the registry does not know", extra={"version": version})
            continue
        acc, found = window_from_rollups(
            PartialStore(s3, settings.log_bucket, settings.report_bucket),
            reference.profile,
            reference.spec.sensitive_attributes,
            reference.spec.numeric_features,
            reference.spec.categorical_features,
            version,
            start,
            end,
            labels,
            choose_engine=scan_engine(settings, reference.spec, athena, labels_between=(start, now)),
            stats=result.reads,
            now=now,
            late=None if late is None else {hour for v, hour in late if v == version},
            arrived=arrived,
        )
        matched_stored |= found.matched_stored
        received_matched += found.received_matched
        held_already |= found.held_already
        accumulated.append((reference, acc))
    counted = [r for r in records if Label.of(r) not in held_already]
    after = advanced(state, counted, seen, matched_stored, now)
    if selected and not write_label_state(s3, settings.report_bucket, after, state_etag):
        logger.warning("another run moved the label state; the next run reads from the older point")
    result.reads.feedback_gets += feedback_reads.gets
    result.reads.feedback_bytes += feedback_reads.bytes
    received = after.received_between(start, end)
    unmatched = received - received_matched
    for reference, acc in accumulated:
        is_champion = champion is not None and reference.record.version == champion.version
        if acc.rows == 0 and not is_champion and versions is None:
            # A retired version whose last logs only touch the window's first hour: nothing to report.
            continue
        report = evaluate(
            acc,
            reference,
            champion=is_champion,
            run_id=run_id,
            window_start=start,
            window_end=end,
            generated_at=now,
            feedback_received=received,
            unmatched_feedback=unmatched,
        )
        render = functools.partial(render_html, max_metric_gap=reference.spec.monitoring.max_metric_gap)
        prefix = write_report(s3, settings.report_bucket, report, end, render)
        result.report_keys[report.version] = prefix
        result.max_metric_gaps[report.version] = reference.spec.monitoring.max_metric_gap
        result.reports.append(report.model_copy(update={"report_key": prefix + "report.json"}))
    datums = metric_datums(result.reports, settings.model_name, now)
    result.metric_calls = put_metrics(cloudwatch, datums)
    result.datums = len(datums)
    if result.reports:
        rows = [
            history_run(r, result.max_metric_gaps[r.version], result.report_keys[r.version] + "report.html")
            for r in result.reports
        ]
        result.history_key = record_history(
            s3, settings.report_bucket, registry, result.model_name, rows, now
        )
    logger.info(
        "monitor run finished",
        extra={"run_id": run_id, "versions": [r.version for r in result.reports], "datums": result.datums},
    )
    return result
