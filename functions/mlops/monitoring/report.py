"""The monitoring report of one version and window: JSON model, latest summary and a self-contained HTML page.

The HTML has inline SVG plots drawn here (no scripts, fonts or network), so it opens
from S3, an e-mail attachment or a laptop alike. Times are shown in one form, UTC.
"""

from __future__ import annotations

import html
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlops.cloud.storage import parse_time
from mlops.monitoring.drift import Band, DatasetDrift, DistributionPlot, FeatureDrift, PredictionDrift
from mlops.monitoring.performance import (
    FAIRNESS_MIN_POSITIVES,
    ConceptShiftCheck,
    Fairness,
    PerformanceEstimate,
    ProductionPerformance,
)
from mlops.monitoring.significance import GapSignificance
from mlops.shared.svgplot import PALETTE, THRESHOLD_COLOUR, format_time, nice_ticks, text_width, tick_label

# 2: the estimate's interval and gap threshold, and the concept-shift check.
REPORT_FORMAT = 2


class LabelStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label_count: int
    label_coverage: float | None
    # Feedback records received during the window, and those of them that matched none of the
    # window's predictions (labels of earlier predictions, or ids never logged).
    feedback_received: int
    unmatched_feedback: int


class AlarmCheck(BaseModel):
    """One alarm spec applied to this run's value (CloudWatch decides over several periods)."""

    model_config = ConfigDict(extra="forbid")

    alarm: str
    metric: str
    value: float | None
    threshold: float
    breached: bool | None
    severity: str


class VersionReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = REPORT_FORMAT
    model_name: str
    version: int
    champion: bool
    run_id: str
    generated_at: str
    window_start: str
    window_end: str
    status: str
    prediction_count: int
    labels: LabelStats
    drift: DatasetDrift | None
    prediction_drift: PredictionDrift | None
    performance: ProductionPerformance
    estimate: PerformanceEstimate
    concept_shift: ConceptShiftCheck | None = None
    fairness: Fairness | None
    alarms: list[AlarmCheck]
    # The test-set value of every metric, for the production-versus-test-set table.
    test_metrics: dict[str, float | None] = Field(default_factory=dict)
    report_key: str | None = None
    significance: GapSignificance | None = None

    def summary(self) -> dict[str, Any]:
        """The latest production figures of a version (what GET /model shows)."""
        perf, est = self.performance, self.estimate
        return {
            "model_name": self.model_name,
            "version": self.version,
            "generated_at": self.generated_at,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "status": self.status,
            "prediction_count": self.prediction_count,
            "label_count": self.labels.label_count,
            "label_coverage": self.labels.label_coverage,
            "primary_metric": perf.primary_metric,
            "test_metric": perf.test_value,
            "production_metric": perf.value,
            "production_interval": [perf.ci_low, perf.ci_high] if perf.ci_low is not None else None,
            "metric_gap": perf.metric_gap,
            "estimated_metric": est.value,
            "estimated_metric_gap": est.estimated_gap,
            "estimated_interval": [est.ci_low, est.ci_high] if est.ci_low is not None else None,
            "estimated_gap_threshold": est.gap_threshold,
            "concept_shift_suspected": self.concept_shift.suspected if self.concept_shift else None,
            "drift_share": self.drift.drift_share if self.drift else None,
            "dataset_drift": self.drift.dataset_drift if self.drift else None,
            "drifted_features": [f.feature for f in self.drift.features if f.drifted] if self.drift else [],
            "largest_feature_drift": self.drift.largest_drift if self.drift else None,
            "metric_gap_z": self.significance.z if self.significance else None,
            "prediction_drift": self.prediction_drift.psi if self.prediction_drift else None,
            "fairness_gap": self.fairness.gap if self.fairness else None,
            "alarms_breached": [a.alarm for a in self.alarms if a.breached],
            "report_key": self.report_key,
        }


# -- HTML ------------------------------------------------------------------------------------------

_REF_COLOUR = "#8c959f"
_CUR_COLOUR = PALETTE[0]
_TEST_COLOUR = PALETTE[2]
_ESTIMATE_COLOUR = PALETTE[3]
_WARN = "#9a6700"
_OK = "#1a7f37"
_MUTED = "#57606a"
_ROTATION = 40  # degrees of the bin labels that do not fit their bar


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.2g}"


def _time(text: str) -> str:
    return format_time(parse_time(text))


def _svg_open(width: float, height: float, label: str, font_size: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{_e(label)}" '
        f'font-family="sans-serif" font-size="{font_size}" class="chart"><title>{_e(label)}</title>'
    )


def distribution_svg(
    plot: DistributionPlot, title: str, x_label: str = "", width: int = 440, height: int = 190
) -> str:
    """Paired bars, reference (grey) and current (blue), one pair per bin or category.

    Bin labels are shown in full: horizontally when they fit under their bars, otherwise
    turned by 40 degrees with the margins grown to hold them.
    """
    n = max(1, len(plot.labels))
    font = 10
    widths = [text_width(label, font) for label in plot.labels] or [0.0]
    y_ticks = nice_ticks(0.0, max([*plot.reference, *plot.current, 0.01]) * 100, 4)
    y_text = [tick_label(v, y_ticks) + "%" for v in y_ticks]
    left, right = 30 + max(text_width(t, font) for t in y_text), 8.0
    slot = (width - left - right) / n
    rotate = max(widths) > slot - 4
    cos, sin = math.cos(math.radians(_ROTATION)), math.sin(math.radians(_ROTATION))
    if rotate:
        # The first labels reach furthest left of their bar: grow the left margin to hold them.
        for _ in range(2):
            reach = max(w * cos - (i + 0.5) * slot for i, w in enumerate(widths))
            left = max(left, reach + 4)
            slot = (width - left - right) / n
    label_h = (max(widths) * sin + font + 4) if rotate else font + 6
    top = 40
    inner_h = height - top - 30 - (14 if x_label else 0)
    height = int(top + inner_h + label_h + (20 if x_label else 6))
    base = top + inner_h
    peak = y_ticks[-1] / 100

    def sy(share: float) -> float:
        return base - inner_h * share / peak

    parts = [
        _svg_open(width, height, title, font),
        f'<text x="4" y="14" font-size="12" font-weight="bold">{_e(title)}</text>',
        f'<rect x="{left}" y="22" width="9" height="9" fill="{_REF_COLOUR}"/>'
        f'<text x="{left + 13}" y="30">reference (training data)</text>'
        f'<rect x="{left + 150}" y="22" width="9" height="9" fill="{_CUR_COLOUR}"/>'
        f'<text x="{left + 163}" y="30">this window</text>',
    ]
    for v, text in zip(y_ticks, y_text, strict=True):
        y = sy(v / 100)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#eaeef2"/>'
            f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{text}</text>'
        )
    parts.append(
        f'<text x="10" y="{top + inner_h / 2:.1f}" text-anchor="middle" fill="{_MUTED}" '
        f'transform="rotate(-90 10 {top + inner_h / 2:.1f})">share of rows</text>'
    )
    bar = max(1.0, slot * 0.38)
    for i, label in enumerate(plot.labels):
        x0 = left + i * slot + slot * 0.12
        for j, (share, colour) in enumerate(
            ((plot.reference[i], _REF_COLOUR), (plot.current[i], _CUR_COLOUR))
        ):
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{sy(share):.1f}" width="{bar:.1f}" '
                f'height="{base - sy(share):.1f}" fill="{colour}"><title>{_e(label)}: '
                f"{'reference' if j == 0 else 'this window'} {share:.1%}</title></rect>"
            )
        cx = left + i * slot + slot / 2
        if rotate:
            parts.append(
                f'<text x="{cx:.1f}" y="{base + 12}" text-anchor="end" '
                f'transform="rotate(-{_ROTATION} {cx:.1f} {base + 12})">{_e(label)}</text>'
            )
        else:
            parts.append(f'<text x="{cx:.1f}" y="{base + 13}" text-anchor="middle">{_e(label)}</text>')
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="#444"/>')
    if x_label:
        parts.append(
            f'<text x="{(left + width - right) / 2:.1f}" y="{height - 6}" text-anchor="middle" '
            f'fill="{_MUTED}">{_e(x_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def metric_svg(
    perf: ProductionPerformance, est: PerformanceEstimate, max_gap: float, width: int = 640
) -> str:
    """Test value, alarm line (test - max gap), production value with its interval, and the estimate.

    Lines are named in a legend row above the plot and values written in a column right of it,
    so no label is crossed by a line or drawn over another label.
    """
    alarm = perf.test_value - max_gap if perf.test_value is not None else None
    values = [
        v
        for v in (
            perf.test_value,
            perf.value,
            perf.ci_low,
            perf.ci_high,
            est.value,
            est.ci_low,
            est.ci_high,
            alarm,
        )
        if v is not None
    ]
    if not values:
        return "<p>No metric values yet.</p>"
    ticks = nice_ticks(min(values), max(values), 5)
    lo, hi = ticks[0], ticks[-1]
    rows: list[tuple[str, float | None, float | None, float | None, str]] = [
        ("test set", perf.test_value, None, None, _TEST_COLOUR),
        ("production (labelled)", perf.value, perf.ci_low, perf.ci_high, _CUR_COLOUR),
        ("estimate without labels", est.value, est.ci_low, est.ci_high, _ESTIMATE_COLOUR),
    ]
    font = 11
    value_text = [
        "not available"
        if v is None
        else (f"{v:.3f} ({a:.3f}–{b:.3f})" if a is not None and b is not None else f"{v:.3f}")
        for _, v, a, b, _ in rows
    ]
    left = 16 + max(text_width(label, font) for label, *_ in rows)
    right = 20 + max(text_width(t, font) for t in value_text)
    top, row_h = 40, 24
    bottom = top + row_h * len(rows)
    height = bottom + 44

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (width - left - right)

    legend = [("test-set value", _TEST_COLOUR, ""), ("production: 95% interval", _CUR_COLOUR, "")]
    if alarm is not None:
        legend.insert(
            1,
            (
                f"alarm below {alarm:.3f} (test set − {max_gap:g})",
                THRESHOLD_COLOUR,
                ' stroke-dasharray="4 3"',
            ),
        )
    parts = [_svg_open(width, height, "production versus test-set metric", font)]
    lx = 4.0
    for text, colour, dash in legend:
        parts.append(
            f'<line x1="{lx}" y1="14" x2="{lx + 16}" y2="14" stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text x="{lx + 20}" y="18">{_e(text)}</text>'
        )
        lx += 20 + text_width(text, font) + 16
    for t in ticks:
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{top - 8}" x2="{x(t):.1f}" y2="{bottom}" stroke="#eaeef2"/>'
            f'<text x="{x(t):.1f}" y="{bottom + 14}" text-anchor="middle">{tick_label(t, ticks)}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" stroke="#8c959f"/>'
        f'<text x="{(left + width - right) / 2:.1f}" y="{bottom + 32}" text-anchor="middle" fill="{_MUTED}">'
        f"{_e(perf.primary_metric)}</text>"
    )
    if perf.test_value is not None:
        parts.append(
            f'<line x1="{x(perf.test_value):.1f}" y1="{top - 8}" x2="{x(perf.test_value):.1f}" y2="{bottom}" '
            f'stroke="{_TEST_COLOUR}" stroke-width="2"/>'
        )
    if alarm is not None:
        parts.append(
            f'<line x1="{x(alarm):.1f}" y1="{top - 8}" x2="{x(alarm):.1f}" y2="{bottom}" '
            f'stroke="{THRESHOLD_COLOUR}" stroke-width="2" stroke-dasharray="4 3"/>'
        )
    for i, ((label, value, a, b, colour), text) in enumerate(zip(rows, value_text, strict=True)):
        y = top + i * row_h + row_h / 2 - 4
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{_e(label)}</text>')
        if a is not None and b is not None:
            parts.append(
                f'<line x1="{x(a):.1f}" y1="{y}" x2="{x(b):.1f}" y2="{y}" stroke="{colour}" '
                f'stroke-width="4" stroke-opacity="0.45"/>'
            )
        if value is not None:
            parts.append(
                f'<circle cx="{x(value):.1f}" cy="{y}" r="5" fill="{colour}"><title>{_e(label)}: '
                f"{value:.4f}</title></circle>"
            )
        parts.append(
            f'<text x="{width - right + 10}" y="{y + 4}" fill="{colour if value is not None else _MUTED}">'
            f"{_e(text)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def coverage_html(labels: LabelStats, min_labels: int, width: int = 640) -> str:
    """A bar of the labelled share, the label minimum marked, and its caption as text that wraps."""
    share = labels.label_coverage or 0.0
    bar_w = width - 20
    parts = [
        _svg_open(width, 28, "label coverage", 11),
        f'<rect x="10" y="6" width="{bar_w}" height="16" fill="#eaeef2" stroke="#d0d7de"/>'
        f'<rect x="10" y="6" width="{bar_w * min(1.0, share):.1f}" height="16" fill="{_CUR_COLOUR}"/></svg>',
        f"<p>{labels.label_count} of the window's predictions are labelled ({share:.1%}); "
        f"{min_labels} labels are needed for a production metric. Feedback received during the window: "
        f"{labels.feedback_received} record(s), {labels.unmatched_feedback} of them for none of this "
        "window's predictions (labels of earlier predictions, or prediction ids that were never logged).</p>",
    ]
    return "".join(parts)


def _band_colour(f: FeatureDrift) -> str:
    if f.drifted:
        return THRESHOLD_COLOUR
    return {Band.WARNING: _WARN, Band.STABLE: _OK}.get(f.band, _MUTED)


def _drift_table(drift: DatasetDrift) -> str:
    head = (
        "<tr><th>feature</th><th>kind</th><th>n</th><th>PSI</th><th>KS / χ²</th><th>p (Holm)</th>"
        "<th>Wasserstein (sd)</th><th>JS</th><th>missing Δ</th><th>unseen</th><th>decision</th>"
        "<th>why</th></tr>"
    )
    rows = []
    for f in sorted(drift.features, key=lambda f: (not f.drifted, not f.tested, -(f.psi or 0))):
        if not f.tested:
            # Too few values for a statistic to mean anything: show none rather than a wild number.
            stats = "<td>–</td>" * 7
        else:
            test_stat = _num(f.ks_statistic) if f.kind == "numeric" else _num(f.chi_square, 1)
            stats = (
                f"<td>{_num(f.psi)}</td><td>{test_stat}</td><td>{_p(f.p_value_adjusted)}</td>"
                f"<td>{_num(f.wasserstein_normalized)}</td><td>{_num(f.jensen_shannon)}</td>"
                f"<td>{f.missing_rate_change:+.3f}</td>"
                f"<td>{'' if f.unseen_share is None else f'{f.unseen_share:.1%}'}</td>"
            )
        decision = "DRIFT" if f.drifted else f.band.value
        rows.append(
            f"<tr><td>{_e(f.feature)}</td><td>{f.kind}</td><td>{f.count}</td>{stats}"
            f'<td style="color:{_band_colour(f)};font-weight:bold">{decision}</td>'
            f"<td>{_e(f.reason)}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _fairness_table(fair: Fairness) -> str:
    out = []
    for attr in fair.attributes:
        rows = "".join(
            f"<tr><td>{_e(g)}</td><td>{f.predictions}</td><td>{f.selection_rate:.1%}</td><td>{f.labelled}</td>"
            f"<td>{f.positives}</td>"
            f"<td>{'n/a*' if f.true_positive_rate is None else f'{f.true_positive_rate:.1%}'}</td></tr>"
            for g, f in attr.groups.items()
        )
        out.append(
            f"<h3>{_e(attr.attribute)}</h3><p>selection-rate gap {_num(attr.selection_rate_gap)}, "
            f"true-positive-rate gap {_num(attr.true_positive_rate_gap)}</p>"
            "<table><tr><th>group</th><th>predictions</th><th>selection rate</th><th>labelled</th>"
            f"<th>labelled positives</th><th>true-positive rate</th></tr>{rows}</table>"
        )
    if not out:
        return "<p>No sensitive attributes in the spec.</p>"
    out.append(
        f"<p class='note'>* n/a: the group has fewer than {FAIRNESS_MIN_POSITIVES} labelled positives "
        "in this window; a true-positive rate from fewer moves by more than 0.05 by chance alone, "
        "so it is neither shown nor counted in the gap. Groups under 100 predictions are left out of "
        "the gaps too.</p>"
    )
    return "".join(out)


def _metrics_table(report: VersionReport) -> str:
    perf, est = report.performance, report.estimate
    names = list(dict.fromkeys([*perf.metrics, *(k for k in report.test_metrics if k in est.metrics)]))
    if not names:
        return ""
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td>{_num(perf.metrics.get(k))}</td><td>{_num(report.test_metrics.get(k))}</td>"
        f"<td>{_num(est.metrics.get(k))}</td></tr>"
        for k in names
    )
    return (
        "<table><tr><th>metric</th><th>production (labelled rows of this window)</th><th>test set</th>"
        f"<th>estimate without labels</th></tr>{rows}</table>"
        "<p class='note'>– : not available (no labels yet, one class only, or no test-set figure "
        "recorded).</p>"
    )


def _estimate_html(report: VersionReport) -> str:
    """What the label-free estimate says, its limit, and whether labels contradict it."""
    est, check = report.estimate, report.concept_shift
    parts = [
        f"<p>Estimate without labels: {_num(est.value)} [{_num(est.ci_low)}, {_num(est.ci_high)}] "
        f"from {est.count} predictions, with scores calibrated on the test set (the model's own "
        f"test-set calibration error is {_num(est.calibration_error)}). Estimated gap "
        f"{_num(est.estimated_gap)} against a limit of {_num(est.gap_threshold)}"
        f"{' (' + _e(est.threshold_source) + ')' if est.threshold_source else ''}. "
        "Estimation follows changes in the inputs only: it cannot see a change in how inputs relate "
        "to outcomes (concept shift); labels can.</p>"
    ]
    if check is not None:
        colour = THRESHOLD_COLOUR if check.suspected else _OK
        title = "Concept shift suspected" if check.suspected else "Labels agree with the estimate"
        parts.append(
            f"<p style='color:{colour}'><b>{title}</b>: realized {_num(check.realized)} "
            f"[{_num(check.realized_low)}, {_num(check.realized_high)}] against estimated "
            f"{_num(check.estimated)} [{_num(check.estimated_low)}, {_num(check.estimated_high)}] on the "
            f"same {check.label_count} labelled predictions. {_e(check.note)}.</p>"
        )
    return "".join(parts)


_CSS = (
    "body{font-family:sans-serif;margin:24px auto;color:#1f2328;max-width:1100px;padding:0 12px}"
    "table{border-collapse:collapse;font-size:12px;margin:8px 0}"
    "td,th{border:1px solid #d0d7de;padding:3px 6px;text-align:left}th{background:#f6f8fa}"
    ".cards{display:flex;flex-wrap:wrap;gap:12px}"
    ".card{border:1px solid #d0d7de;padding:8px 12px;border-radius:4px}.note{color:#57606a;font-size:13px}"
    ".plots{display:flex;flex-wrap:wrap;gap:12px}.big{font-size:20px;font-weight:bold}"
    "svg.chart{display:block;margin:6px 0}"
)


def render_html(report: VersionReport, max_metric_gap: float) -> str:
    perf, est = report.performance, report.estimate
    breached = [a for a in report.alarms if a.breached]
    cards = [
        ("predictions", str(report.prediction_count)),
        ("labels", f"{report.labels.label_count} ({(report.labels.label_coverage or 0):.1%})"),
        (f"test {perf.primary_metric}", _num(perf.test_value)),
        (f"production {perf.primary_metric}", _num(perf.value)),
        ("metric gap", _num(perf.metric_gap)),
        ("estimated gap", _num(est.estimated_gap)),
        ("estimated gap limit", _num(est.gap_threshold)),
        ("drifted features", f"{report.drift.drifted}/{report.drift.tested}" if report.drift else "–"),
        ("prediction PSI", _num(report.prediction_drift.psi if report.prediction_drift else None)),
        ("fairness gap", _num(report.fairness.gap if report.fairness else None)),
    ]
    card_html = "".join(
        f'<div class="card"><div>{_e(k)}</div><div class="big">{_e(v)}</div></div>' for k, v in cards
    )
    breached_names = _e(", ".join(a.alarm for a in breached))
    alarm_html = (
        f"<p style='color:{THRESHOLD_COLOUR};font-weight:bold'>Alarm conditions met this run: "
        f"{breached_names}</p>"
        if breached
        else f"<p style='color:{_OK}'>No alarm condition met this run.</p>"
    )
    sections = [
        f"<h1>{_e(report.model_name)} v{report.version}{' (champion)' if report.champion else ''}</h1>",
        f"<p>Window {_e(_time(report.window_start))} to {_e(_time(report.window_end))}; "
        f"run {_e(report.run_id)} at {_e(_time(report.generated_at))}; "
        f"status: <b>{_e(report.status)}</b></p>",
        f'<div class="cards">{card_html}</div>',
        alarm_html,
        f"<h2>Performance ({_e(perf.primary_metric)})</h2>",
        metric_svg(perf, est, max_metric_gap),
        f"<p>{_e(perf.note)}. Intervals are {int(perf.confidence * 100)}%.</p>",
        _estimate_html(report),
        _metrics_table(report),
        "<h2>Label coverage</h2>",
        coverage_html(report.labels, perf.min_labels),
    ]
    if report.drift is None or report.prediction_count == 0:
        sections.append(
            "<h2>Data drift</h2><p>No data: no prediction in this window, so no drift statistic.</p>"
        )
    else:
        drift = report.drift
        sections += [
            f"<h2>Data drift: {drift.drifted} of {drift.tested} features "
            f"(dataset drift at ≥ {drift.threshold:.0%}: "
            f"{ {True: 'YES', False: 'no', None: 'not decided'}[drift.dataset_drift] })</h2>",
            _drift_table(drift),
            '<div class="plots">',
            *[
                distribution_svg(
                    f.plot,
                    f"{f.feature}{' (DRIFT)' if f.drifted else ''}",
                    x_label="bins of " + f.feature if f.kind == "numeric" else "categories of " + f.feature,
                )
                for f in sorted(drift.features, key=lambda f: (not f.drifted, -(f.psi or 0)))
                if f.plot is not None and f.tested
            ],
            "</div>",
        ]
    if report.prediction_drift is not None and report.prediction_drift.plot is not None:
        sections += [
            f"<h2>Prediction drift: PSI {_num(report.prediction_drift.psi)}</h2>",
            distribution_svg(
                report.prediction_drift.plot, "predicted probability", x_label="bins of the test-set deciles"
            ),
        ]
    if report.fairness is not None:
        sections += [
            f"<h2>Fairness (largest gap {_num(report.fairness.gap)}"
            f"{': ' + _e(report.fairness.gap_of) if report.fairness.gap_of else ''})</h2>",
            _fairness_table(report.fairness),
        ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
        f"<title>{_e(report.model_name)} v{report.version} monitoring</title><style>{_CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>"
    )
