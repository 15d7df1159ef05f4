"""The monitoring history of a model: one compact row per monitor run and version, and its HTML page.

Each monitor run appends its rows to ``reports/history/<model>.json`` and rewrites
``reports/history/<model>.html`` next to the per-run reports, so the trend across runs
(when a shift started, when alarms fired, when a version was promoted) is one page, and
``mlops reports list`` is one read. The page links each run to its full report by a
relative key, which resolves on S3, behind the local stack and in a local copy alike.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from mlops.cloud.logstore import history_keys
from mlops.cloud.storage import get_bytes, get_versioned, parse_time, put_bytes, put_if_unchanged
from mlops.shared.alarm_specs import Metric
from mlops.shared.errors import ConflictError, NotFoundError
from mlops.shared.svgplot import PALETTE, THRESHOLD_COLOUR, Marker, Series, format_time, line_chart

if TYPE_CHECKING:  # the statistics stack is not needed to read or draw a history
    from mlops.monitoring.report import VersionReport

HISTORY_FORMAT = 1
# About three months of hourly runs; older rows stay in their per-run reports.
MAX_RUNS = 2500
_SHIFT_COLOUR = "#8250df"


class AlarmFlag(BaseModel):
    model_config = ConfigDict(extra="ignore")

    alarm: str
    metric: str
    value: float | None
    threshold: float
    breached: bool | None


class HistoryRun(BaseModel):
    """The figures of one version in one monitor run (what the history page and `reports list` show)."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    generated_at: str
    window_start: str
    window_end: str
    version: int
    champion: bool
    status: str
    prediction_count: int
    label_count: int
    label_coverage: float | None
    primary_metric: str
    test_value: float | None
    production_value: float | None
    production_interval: list[float] | None
    estimated_value: float | None
    metric_gap: float | None
    estimated_gap: float | None
    max_metric_gap: float
    # Where MetricGap breaches when it is not the test-set value minus the gap (regression errors).
    alarm_level: float | None = None
    task: str = "classification"
    drift_share: float | None
    dataset_drift: bool | None
    drifted_features: list[str] = Field(default_factory=list)
    prediction_psi: float | None
    alarms: list[AlarmFlag] = Field(default_factory=list)
    report_json: str | None = None
    report_html: str | None = None

    @property
    def at(self) -> datetime:
        return parse_time(self.generated_at)

    @property
    def alarms_met(self) -> list[str]:
        return [a.alarm for a in self.alarms if a.breached]

    @property
    def drift_flagged(self) -> bool:
        return bool(self.dataset_drift) or any(
            a.breached for a in self.alarms if a.metric in (Metric.DRIFT_SHARE, Metric.PREDICTION_DRIFT)
        )

    def threshold(self, metric: Metric) -> float | None:
        return next((a.threshold for a in self.alarms if a.metric == metric), None)


class Promotion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    at: str
    action: str
    from_version: int | None
    to_version: int


class ModelHistory(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: int = HISTORY_FORMAT
    model_name: str
    updated_at: str | None = None
    runs: list[HistoryRun] = Field(default_factory=list)
    promotions: list[Promotion] = Field(default_factory=list)

    def add(self, runs: Sequence[HistoryRun], updated_at: str) -> ModelHistory:
        """These runs added (a re-run of the same run id and version replaces its row), oldest first."""
        replaced = {(r.run_id, r.version) for r in runs}
        kept = [r for r in self.runs if (r.run_id, r.version) not in replaced]
        merged = sorted([*kept, *runs], key=lambda r: (r.generated_at, r.version))[-MAX_RUNS:]
        return self.model_copy(update={"runs": merged, "updated_at": updated_at})


def history_run(report: VersionReport, max_metric_gap: float, report_html: str | None) -> HistoryRun:
    perf, est = report.performance, report.estimate
    return HistoryRun(
        run_id=report.run_id,
        generated_at=report.generated_at,
        window_start=report.window_start,
        window_end=report.window_end,
        version=report.version,
        champion=report.champion,
        status=report.status,
        prediction_count=report.prediction_count,
        label_count=report.labels.label_count,
        label_coverage=report.labels.label_coverage,
        primary_metric=perf.primary_metric,
        test_value=perf.test_value,
        production_value=perf.value,
        production_interval=[perf.ci_low, perf.ci_high]
        if perf.ci_low is not None and perf.ci_high is not None
        else None,
        estimated_value=est.value,
        metric_gap=perf.metric_gap,
        estimated_gap=est.estimated_gap,
        max_metric_gap=max_metric_gap,
        drift_share=report.drift.drift_share if report.drift else None,
        dataset_drift=report.drift.dataset_drift if report.drift else None,
        drifted_features=[f.feature for f in report.drift.features if f.drifted] if report.drift else [],
        prediction_psi=report.prediction_drift.psi if report.prediction_drift else None,
        alarms=[AlarmFlag.model_validate(a.model_dump()) for a in report.alarms],
        report_json=report.report_key,
        report_html=report_html,
    )


def shift_onsets(runs: Sequence[HistoryRun]) -> list[tuple[HistoryRun, str]]:
    """Champion runs where a shift began: the first drift flag or alarm condition after a clean run."""
    out = []
    clean = True
    for run in sorted((r for r in runs if r.champion), key=lambda r: r.generated_at):
        flagged = run.drift_flagged or bool(run.alarms_met)
        if flagged and clean:
            out.append((run, "drift flagged" if run.drift_flagged else f"alarm: {', '.join(run.alarms_met)}"))
        clean = not flagged
    return out


# -- HTML ------------------------------------------------------------------------------------------

_CSS = (
    "body{font-family:sans-serif;margin:24px auto;color:#1f2328;max-width:1120px;padding:0 12px}"
    "h1{font-size:22px}h2{font-size:17px;margin-top:26px;border-bottom:1px solid #d0d7de;padding-bottom:4px}"
    "table{border-collapse:collapse;font-size:12px;margin:8px 0}"
    "td,th{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".alarm{color:#d1242f;font-weight:bold}.note{color:#57606a;font-size:13px}"
    ".scroll{max-height:520px;overflow:auto}svg.chart{display:block;margin:8px 0}"
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _n(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _relative(key: str | None, page_key: str) -> str | None:
    """The link from the page's key to another key of the same bucket."""
    if not key:
        return None
    depth = page_key.count("/")
    common = 0
    page_parts, key_parts = page_key.split("/")[:-1], key.split("/")
    while common < min(len(page_parts), len(key_parts) - 1) and page_parts[common] == key_parts[common]:
        common += 1
    return "../" * (depth - common) + "/".join(key_parts[common:])


def _performance_chart(champ: Sequence[HistoryRun], promotions: list[Marker], shift: list[Marker]) -> str:
    if not champ:
        return "<p class='note'>No champion run yet.</p>"
    metric = champ[-1].primary_metric
    prod = [(r.at, r.production_value) for r in champ if r.production_value is not None]
    band = [
        (r.at, r.production_interval[0], r.production_interval[1]) for r in champ if r.production_interval
    ]
    est = [(r.at, r.estimated_value) for r in champ if r.estimated_value is not None]
    test = [(r.at, r.test_value) for r in champ if r.test_value is not None]
    alarm_line = [
        (r.at, r.alarm_level if r.alarm_level is not None else r.test_value - r.max_metric_gap)
        for r in champ
        if r.test_value is not None
    ]
    above = any(
        r.alarm_level is not None and r.test_value is not None and r.alarm_level > r.test_value for r in champ
    )
    series = [
        Series(
            f"production {metric} (labelled)",
            [(t, v) for t, v in prod if v is not None],
            colour=PALETTE[0],
            band=band,
            band_name="production: 95% interval"
            if champ[-1].task == "regression"
            else "production: 95% bootstrap interval",
        ),
        Series(
            "estimate without labels",
            [(t, v) for t, v in est if v is not None],
            colour=PALETTE[1],
            dashed=True,
        ),
        Series(
            f"test-set {metric}",
            [(t, v) for t, v in test if v is not None],
            colour=PALETTE[2],
            step=True,
            dots=False,
        ),
        Series(
            "alarm above (test-set error plus the allowed increase)"
            if above
            else "alarm below (test-set value minus the allowed gap)",
            [(t, v) for t, v in alarm_line],
            colour=THRESHOLD_COLOUR,
            dashed=True,
            step=True,
            dots=False,
        ),
    ]
    alarms = [r.at for r in champ if any(a.metric == Metric.METRIC_GAP and a.breached for a in r.alarms)]
    return line_chart(
        series,
        title=f"{metric} of the serving version, run by run",
        markers=[*promotions, *shift],
        alarms=alarms,
        alarm_label="MetricGap condition met",
        y_label=metric,
        height=340,
    )


def _threshold_series(champ: Sequence[HistoryRun], metric: Metric, label: str) -> Series | None:
    pts = [(r.at, t) for r in champ if (t := r.threshold(metric)) is not None]
    if not pts:
        return None
    return Series(f"{label} {pts[-1][1]:g}", pts, colour=THRESHOLD_COLOUR, dashed=True, step=True, dots=False)


def _drift_charts(champ: Sequence[HistoryRun], promotions: list[Marker], shift: list[Marker]) -> str:
    share = [(r.at, r.drift_share) for r in champ if r.drift_share is not None]
    psi = [(r.at, r.prediction_psi) for r in champ if r.prediction_psi is not None]
    share_series: list[Series] = [
        Series("share of features drifted", [(t, v) for t, v in share if v is not None])
    ]
    psi_series: list[Series] = [Series("prediction PSI", [(t, v) for t, v in psi if v is not None])]
    if (s := _threshold_series(champ, Metric.DRIFT_SHARE, "dataset drift at")) is not None and share:
        share_series.append(s)
    if (s := _threshold_series(champ, Metric.PREDICTION_DRIFT, "alarm above")) is not None and psi:
        psi_series.append(s)
    share_alarms = [
        r.at for r in champ if any(a.metric == Metric.DRIFT_SHARE and a.breached for a in r.alarms)
    ]
    psi_alarms = [
        r.at for r in champ if any(a.metric == Metric.PREDICTION_DRIFT and a.breached for a in r.alarms)
    ]
    return line_chart(
        share_series,
        title="Data drift: share of tested features that drifted",
        markers=[*promotions, *shift],
        alarms=share_alarms,
        alarm_label="DataDrift condition met",
        y_label="share of features",
        y_floor=0.0,
    ) + line_chart(
        psi_series,
        title="Prediction drift: PSI of the predicted "
        f"{'values' if champ and champ[-1].task == 'regression' else 'probabilities'} against the test set",
        markers=[*promotions, *shift],
        alarms=psi_alarms,
        alarm_label="PredictionDrift condition met",
        y_label="PSI",
        y_floor=0.0,
    )


def _run_table(runs: Sequence[HistoryRun], page_key: str) -> str:
    head = (
        "<tr><th>run (UTC)</th><th>version</th><th>status</th><th>predictions</th><th>labels</th>"
        "<th>production</th><th>95% interval</th><th>test set</th><th>estimate</th><th>gap</th>"
        "<th>drift share</th><th>prediction PSI</th><th>alarm conditions met</th><th>report</th></tr>"
    )
    rows = []
    for r in sorted(runs, key=lambda r: (r.generated_at, r.version), reverse=True):
        link = _relative(r.report_html, page_key)
        interval = (
            f"{r.production_interval[0]:.3f}–{r.production_interval[1]:.3f}"
            if r.production_interval
            else "n/a"
        )
        met = ", ".join(r.alarms_met)
        rows.append(
            f"<tr><td>{_e(format_time(r.at))}</td><td>v{r.version}{' (champion)' if r.champion else ''}</td>"
            f"<td>{_e(r.status)}</td><td class='n'>{r.prediction_count}</td>"
            f"<td class='n'>{r.label_count}</td>"
            f"<td class='n'>{_n(r.production_value)}</td><td class='n'>{interval}</td>"
            f"<td class='n'>{_n(r.test_value)}</td><td class='n'>{_n(r.estimated_value)}</td>"
            f"<td class='n'>{_n(r.metric_gap)}</td><td class='n'>{_n(r.drift_share, 2)}</td>"
            f"<td class='n'>{_n(r.prediction_psi)}</td><td class='alarm'>{_e(met)}</td>"
            f"<td>{f'<a href={chr(34)}{_e(link)}{chr(34)}>open</a>' if link else ''}</td></tr>"
        )
    return f"<div class='scroll'><table>{head}{''.join(rows)}</table></div>"


def render_history_html(history: ModelHistory, page_key: str) -> str:
    """The history page: every run on a time axis, thresholds, intervals, alarms, promotions, shifts."""
    champ = sorted((r for r in history.runs if r.champion), key=lambda r: r.generated_at)
    # Promotions inside the runs' time span only: an old first promotion would squeeze the axis.
    span = (
        (min(parse_time(r.window_start) for r in history.runs), max(r.at for r in history.runs))
        if history.runs
        else None
    )
    promotions = [
        Marker(parse_time(p.at), f"{'rollback to' if p.action == 'rollback' else 'promoted'} v{p.to_version}")
        for p in history.promotions
        if p.from_version is not None and span is not None and span[0] <= parse_time(p.at) <= span[1]
    ]
    onsets = shift_onsets(history.runs)
    shift = [Marker(r.at, f"shift: {why}", colour=_SHIFT_COLOUR) for r, why in onsets]
    first_shift = (
        f"First sign of a shift: {_e(onsets[0][1])} at {_e(format_time(onsets[0][0].at))} "
        f"(v{onsets[0][0].version})."
        if onsets
        else "No drift flag or alarm condition in these runs."
    )
    latest = champ[-1] if champ else None
    written = format_time(parse_time(history.updated_at)) if history.updated_at else "–"
    summary = (
        f"<p>{len(history.runs)} report(s) from {_e(format_time(history.runs[0].at))} to "
        f"{_e(format_time(history.runs[-1].at))}; the serving version at the last run: "
        f"<b>v{latest.version if latest else '–'}</b>. {first_shift}</p>"
        if history.runs
        else "<p>No monitor run yet.</p>"
    )
    sections = [
        f"<h1>Monitoring history of {_e(history.model_name)}</h1>",
        summary,
        "<p class='note'>Each point is one monitor run of the serving version (the series the alarms watch). "
        "A red flag marks a run whose value met an alarm condition; CloudWatch raises the alarm when "
        "enough consecutive runs do. Production values appear once a window has the minimum number "
        "of labels; the estimate needs no labels. Times are UTC.</p>",
        "<h2>Performance</h2>",
        _performance_chart(champ, promotions, shift),
        "<h2>Drift</h2>",
        _drift_charts(champ, promotions, shift),
        "<h2>Every run</h2>",
        _run_table(history.runs, page_key),
        f"<p class='note'>Page written {_e(written)}.</p>",
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
        f"<title>{_e(history.model_name)}: monitoring history</title><style>{_CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>"
    )


# -- storage ---------------------------------------------------------------------------------------

# Concurrent monitor runs (a schedule and a manual run) each retry on the other's newer history.
WRITE_ATTEMPTS = 5


def read_history(s3: Any, bucket: str, model_name: str) -> ModelHistory | None:
    """The stored history of a model, or None before its first monitor run."""
    try:
        data = get_bytes(s3, bucket, history_keys(model_name)[0])
    except NotFoundError:
        return None
    return ModelHistory.model_validate_json(data)


def update_history(
    s3: Any, bucket: str, model_name: str, change: Callable[[ModelHistory], ModelHistory]
) -> tuple[str, str]:
    """Apply `change` to the stored history and write it back unless another run wrote in between.

    The JSON is written on the condition that its ETag is the one read (S3 conditional writes),
    so a concurrent run's rows are never overwritten: the loser reads again and reapplies its
    change. The page is rendered from what was written. Returns the keys (JSON, HTML).
    """
    json_key, html_key = history_keys(model_name)
    for _ in range(WRITE_ATTEMPTS):
        found = get_versioned(s3, bucket, json_key)
        current = ModelHistory.model_validate_json(found[0]) if found else ModelHistory(model_name=model_name)
        history = change(current)
        if put_if_unchanged(
            s3, bucket, json_key, history.model_dump_json().encode(), found[1] if found else None
        ):
            put_bytes(
                s3,
                bucket,
                html_key,
                render_history_html(history, html_key).encode(),
                "text/html; charset=utf-8",
            )
            return json_key, html_key
    raise ConflictError(
        f"the monitoring history of {model_name} kept changing during {WRITE_ATTEMPTS} attempts"
    )
